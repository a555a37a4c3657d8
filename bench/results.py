"""Tidy result tables: one CSV per task in ``results/``, one row per (run, draw, metric).

Only ``bench.run`` writes here. A run's rows share a ``run_id`` (a hash of everything that
determines the numbers: task and version, checkpoint content, data set, split, params, seed,
subset), so a re-run replaces its own rows and leaves every other row alone. Writes hold an
exclusive lock on ``<csv>.lock`` and go through a temp file + rename: concurrent runs never
interleave and a killed run never leaves a half-written table.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from dcgan.fsutil import atomic_path

RESULT_COLUMNS = (
    "run_id",  # hash of the inputs below: rows of one run share it
    "task",  # registered task name, e.g. cifar10-svm
    "task_version",  # bumped when a task's protocol changes its numbers
    "dataset",
    "split",  # the split the metric is measured on
    "ckpt",  # checkpoint path as given
    "ckpt_sha256",  # content hash of the checkpoint (empty for checkpoint-free baselines)
    "model",  # what was measured: trained-d, random-d, raw-pixels, generator ...
    "features",  # feature spec string (e.g. conv1+conv2+conv3/max4), empty when not applicable
    "draw",  # index of a random draw (labelled subset, sample set); 0 when there is one
    "metric",
    "value",
    "seed",
    "subset",  # images used per split when limited, empty for all
    "params",  # the task's parameters as JSON
    "seconds",  # wall time of the whole run
    "device",
    "versions",  # dcgan-bench, torch, torchvision, scikit-learn, python as JSON
    "timestamp",  # UTC, ISO 8601
)


@dataclass
class Measurement:
    """What a task returns: one number with the row fields that tell it apart from its siblings."""

    metric: str
    value: float
    draw: int = 0
    split: str = "test"
    model: str = "trained-d"
    features: str = ""
    extra: dict = field(default_factory=dict)  # merged into the row's params JSON
    ckpt: Path | None = None  # the checkpoint measured when a run measures several (a run's ckpt/ folder)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_rows(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def upsert(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Replace the rows of the run(s) in ``rows`` (by run_id) in the CSV at ``path``, atomically."""
    path = Path(path)
    run_ids = {r["run_id"] for r in rows}
    with _locked(path):
        kept = [r for r in read_rows(path) if r.get("run_id") not in run_ids]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=RESULT_COLUMNS, extrasaction="raise")
            w.writeheader()
            w.writerows({c: r.get(c, "") for c in RESULT_COLUMNS} for r in kept)
            w.writerows(rows)
    return path
