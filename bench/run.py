"""``bench.run()``: the one place that runs a task, adds provenance and writes its rows.

The path of one run: look the task up, build its Params (overrides checked against the fields),
make a RunContext (device, seed, data, checkpoint), call ``task.run(ctx, params)``, turn the
returned Measurements into rows carrying every provenance column, and upsert them into
``results/<task>.csv`` (a re-run replaces its own rows, keyed by a hash of its inputs). A run that
measured several checkpoints of one training run also gets a plot of its metrics against the
training step, ``results/<task>-<run_id>.png``. A task that returns a ``NextStep`` (the user has to
act first) writes no rows; its message is the result's ``message``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import bench.tasks  # noqa: F401  (registers every task)
from bench.features import FeatureCache
from bench.results import Measurement, upsert
from bench.tasks.base import TASKS, NextStep, RunContext, check_dataset, make_params
from dcgan.checkpoint import fingerprint
from dcgan.device import resolve_device, seed_everything
from dcgan.errors import CheckpointError, ConfigError


@dataclass
class RunResult:
    task: str
    rows: list[dict]
    path: Path
    seconds: float
    cache_hits: int
    cache_misses: int
    figure: Path | None = None  # metrics vs training step, when the run measured several checkpoints
    message: str = ""  # what to do next, when the task stopped for the user's input (a NextStep: no rows)


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("dcgan-bench", "torch", "torchvision", "torch-fidelity", "scikit-learn", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = ""
    return out


def run(task: str, *, ckpt: str | Path | None = None, dataset: str | None = None, data_root: str | None = None,
        seed: int = 0, subset: int | None = None, device: str = "auto", precision: str = "fp32",
        batch_size: int = 256, overrides: dict | None = None, results_dir: str | Path = "results") -> RunResult:
    task_cls = TASKS.get(task)
    params = make_params(task_cls, overrides or {})
    dataset = dataset or task_cls.default_dataset or ""
    if task_cls.reads_data and not dataset:
        raise ConfigError(f"task {task!r} needs --dataset")
    if dataset:
        check_dataset(dataset)
    ckpt = Path(ckpt) if ckpt else None
    if ckpt is not None and not ckpt.exists():
        raise CheckpointError(f"checkpoint {ckpt} does not exist")
    if task_cls.needs and ckpt is None:
        raise ConfigError(f"task {task!r} needs a {task_cls.needs} checkpoint: pass --ckpt")
    dev = resolve_device(device)
    seed_everything(seed)
    ctx = RunContext(dataset=dataset, data_root=data_root, ckpt=ckpt, device=dev, seed=seed, subset=subset,
                     batch_size=batch_size, precision=precision, cache=FeatureCache())
    if task_cls.needs:
        ctx.net(task_cls.needs)  # a wrong or broken checkpoint fails before any work
    params_dict = dataclasses.asdict(params)
    run_id = hashlib.sha256(json.dumps(
        {"task": task, "version": task_cls.version, "ckpt": ctx.ckpt_sha256, "dataset": dataset,
         "data_root": data_root, "params": params_dict, "seed": seed, "subset": subset, "precision": precision},
        sort_keys=True, default=str).encode()).hexdigest()[:16]
    ctx.outputs = Path(results_dir) / task / run_id
    ctx.figures = Path(results_dir) / "figures" / task / f"{ctx.ckpt_sha256[:12] or 'no-ckpt'}-{run_id}"

    t0 = time.perf_counter()
    measurements = task_cls().run(ctx, params)
    seconds = time.perf_counter() - t0
    table = Path(results_dir) / f"{task}.csv"
    if isinstance(measurements, NextStep):
        return RunResult(task, [], table, seconds, ctx.cache.hits, ctx.cache.misses, message=measurements.message)

    common = {
        "run_id": run_id, "task": task, "task_version": task_cls.version, "dataset": dataset,
        "ckpt": str(ckpt) if ckpt else "", "ckpt_sha256": ctx.ckpt_sha256, "seed": seed,
        "subset": subset if subset is not None else "", "seconds": round(seconds, 2), "device": str(dev),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    rows = [{**common, **_checkpoint_columns(m), "split": m.split, "model": m.model, "features": m.features,
             "draw": m.draw, "metric": m.metric, "value": repr(float(m.value)),
             "params": json.dumps({**params_dict, "precision": precision, **m.extra}, sort_keys=True, default=str)}
            for m in measurements]
    path = upsert(table, rows)
    figure = None
    if len({m.ckpt for m in measurements if m.ckpt}) > 1:
        from bench.pictures import plot_vs_step

        figure = plot_vs_step(measurements, Path(results_dir) / f"{task}-{run_id}.png",
                              title=f"{task} on {dataset}: {ckpt}")
    return RunResult(task, rows, path, seconds, ctx.cache.hits, ctx.cache.misses, figure)


def _checkpoint_columns(m: Measurement) -> dict:
    """A measurement of one of several checkpoints names its own (the run's --ckpt is their folder)."""
    return {"ckpt": str(m.ckpt), "ckpt_sha256": fingerprint(m.ckpt)} if m.ckpt else {}
