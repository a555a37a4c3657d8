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

from dcgan.errors import DCGANError
from dcgan.fsutil import atomic_path, writable_folder


class ResultsError(DCGANError):
    """A results file the suite cannot read or must not rewrite."""


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
    "params",  # the inputs as JSON: the task's parameters (this row's own where it has some) and precision
    "details",  # this row's outputs beside its value, as JSON: timings, per-C validation scores, counts
    "seconds",  # wall time of the whole run
    "device",
    "versions",  # dcgan-bench, torch, torchvision, scikit-learn, python as JSON
    "timestamp",  # UTC, ISO 8601
)


# the schema before the details column: read and migrated (bench.migrate), never written
V1_COLUMNS = tuple(c for c in RESULT_COLUMNS if c != "details")


@dataclass
class Measurement:
    """What a task returns: one number with the row fields that tell it apart from its siblings."""

    metric: str
    value: float
    draw: int = 0
    split: str = "test"
    model: str = "trained-d"
    features: str = ""
    details: dict = field(default_factory=dict)  # the row's details JSON: outputs beside the value
    params: dict = field(default_factory=dict)  # this row's own inputs, over the run's (e.g. dedup's radius)
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


def read_table(path: str | os.PathLike) -> tuple[list[str], list[dict]]:
    """(header, rows) of a results CSV, rows in the current schema; an older known schema is migrated.

    A file whose header is neither the suite's schema nor a known older one (columns missing or
    renamed, random bytes) is refused with a ResultsError naming it: rewriting it would lose rows.
    Columns the suite does not know, after its own, are kept (a user's notes).
    """
    path = Path(path)
    if not path.exists():
        return list(RESULT_COLUMNS), []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ResultsError(f"{path}: not a results table ({e})") from None
    for schema in (RESULT_COLUMNS, V1_COLUMNS):
        if tuple(header[:len(schema)]) == schema:
            break
    else:
        raise ResultsError(f"{path}: the header is not a results table's ({', '.join(RESULT_COLUMNS[:4])}, ...); "
                           "refusing to read or rewrite it")
    if schema is V1_COLUMNS:
        from bench.migrate import migrate_rows

        rows = migrate_rows(rows)
        header = list(RESULT_COLUMNS) + header[len(V1_COLUMNS):]
    return header, rows


def read_rows(path: str | os.PathLike) -> list[dict]:
    return read_table(path)[1]


def upsert(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Replace the rows of the run(s) in ``rows`` (by run_id) in the CSV at ``path``, atomically."""
    path = Path(path)
    run_ids = {r["run_id"] for r in rows}
    with _locked(path):
        header, old = read_table(path)
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=header, extrasaction="raise")
            w.writeheader()
            w.writerows({c: r.get(c, "") for c in header} for r in old if r.get("run_id") not in run_ids)
            w.writerows({c: r.get(c, "") for c in header} for r in rows)
    return path


def check_writable(path: str | os.PathLike) -> None:
    """Fail before any work when the results file could not be read back or replaced."""
    read_table(path)
    writable_folder(Path(path).parent, "results folder")
