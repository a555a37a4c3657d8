"""``bench.run()``: the one place that runs a task, adds provenance and writes its rows.

The path of one run: look the task up, build its Params (overrides checked against the fields),
make a RunContext (device, seed, data, checkpoint), call ``task.run(ctx, params)``, turn the
returned Measurements into rows carrying every provenance column, and upsert them into
``results/<task>.csv`` (a re-run replaces its own rows, keyed by a hash of its inputs: the task and
its parameters, the checkpoint's and the data's content). Files a run writes beside its rows go to
``results/<task>/<run_id>/``; a run that measured several checkpoints of one training run also gets a
plot of its metrics against the training step there, ``vs-step.png``.
A task that returns a ``NextStep`` (the user has to act first) writes no rows; its message is the
result's ``message``.

``run`` is ``plan`` (every check, and the ``run_id``) followed by ``execute`` (the work and the
write); callers that skip runs whose rows exist already (``bench evaluate``) call the two apart.
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
from bench.results import Measurement, check_writable, read_rows, upsert
from bench.tasks.base import TASKS, NextStep, RunContext, check_dataset, make_params
from dcgan.checkpoint import fingerprint
from dcgan.data import data_fingerprint
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


@dataclass
class PlannedRun:
    """A run checked and keyed but not yet done: ``plan`` builds it, ``execute`` does the work.

    ``run_id`` is known before any work, so a caller can see whether the run's rows are already in
    ``table`` (``has_rows``) and skip it: ``bench evaluate`` resumes that way.
    """

    task: str
    task_cls: type
    params: object
    params_dict: dict
    ctx: RunContext
    run_id: str
    table: Path
    recipe: str | None


def run_id(task: str, version: int, ckpt_sha256: str, dataset: str, data: list | str | None, params: dict,
           seed: int, subset: int | None) -> str:
    """The key of a run's rows: a hash of everything that determines its numbers. ``data``: the content
    fingerprints of the splits the run reads ([data set, split, fingerprint] each), or for a task that
    reads no data its (unused) data root."""
    return hashlib.sha256(json.dumps(
        {"task": task, "version": version, "ckpt": ckpt_sha256, "dataset": dataset,
         **({"data": data} if isinstance(data, list) else {"data_root": data}), "params": params, "seed": seed,
         "subset": subset},
        sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(task: str, *, ckpt: str | Path | None = None, dataset: str | None = None, data_root: str | None = None,
         split: str | None = None, real: str | None = None, fake: str | None = None, seed: int = 0,
         subset: int | None = None, device: str = "auto", precision: str = "fp32", batch_size: int = 256,
         overrides: dict | None = None, recipe: str | None = None, results_dir: str | Path = "results") -> PlannedRun:
    """Check a run's inputs (one-line errors before any work) and compute its ``run_id``."""
    task_cls = TASKS.get(task)
    _check_text({"--ckpt": ckpt, "--data-root": data_root, "--results": results_dir, "--real": real, "--fake": fake,
                 **{f"--set {k}": v for k, v in (overrides or {}).items()}})
    params = make_params(task_cls, overrides or {}, recipe)
    if real and not dataset:  # the real images name the data set of the rows
        kind, _, rest = real.partition(":")
        dataset = {"dataset": rest.partition(":")[0], "folder": "folder"}.get(kind)
    dataset = dataset or task_cls.default_dataset or ""
    if task_cls.reads_data and not dataset:
        raise ConfigError(f"task {task!r} needs --dataset")
    if dataset:
        check_dataset(dataset)
    if split is not None and task_cls.default_split is None:
        raise ConfigError(f"task {task!r} takes no --split (it reads the splits its protocol names)")
    if (real or fake) and not task_cls.takes_sources:
        raise ConfigError(f"task {task!r} takes no --real/--fake (only tasks comparing two image sources do)")
    ckpt = Path(ckpt) if ckpt else None
    if ckpt is not None and not ckpt.exists():
        raise CheckpointError(f"checkpoint {ckpt} does not exist")
    if task_cls.needs and ckpt is None:
        raise ConfigError(f"task {task!r} needs a {task_cls.needs} checkpoint: pass --ckpt")
    table = Path(results_dir) / f"{task}.csv"
    check_writable(table)  # a file it may not rewrite fails now, not after the work
    dev = resolve_device(device)
    ctx = RunContext(dataset=dataset, data_root=data_root, ckpt=ckpt, device=dev, seed=seed, subset=subset,
                     batch_size=batch_size, precision=precision, cache=FeatureCache(),
                     split_name=split or task_cls.default_split, real=real, fake=fake, takes=task_cls.takes)
    if task_cls.needs:
        ctx.net(task_cls.needs)  # a wrong or broken checkpoint fails before any work
    task_cls().check(ctx, params)  # and so does one the task does not apply to
    inputs = {"precision": precision, **({"split": ctx.split_name} if ctx.split_name else {}),
              **({"real": real} if real else {}), **({"fake": fake} if fake else {})}
    params_dict = {**dataclasses.asdict(params), **inputs}
    # the content of the data read, not where it lies: other files under the same root are another run
    data = ([[name, part, data_fingerprint(name, part, root=root)]
             for name, part, root in task_cls().reads(ctx, params)] if task_cls.reads_data else data_root)
    key = run_id(task, task_cls.version, ctx.ckpt_sha256, dataset, data, params_dict, seed, subset)
    ctx.artifacts = Path(results_dir) / task / key
    return PlannedRun(task, task_cls, params, params_dict, ctx, key, table, recipe)


def has_rows(planned: PlannedRun) -> bool:
    """Whether the run's rows are already in its table (a run that ended, not one that was interrupted)."""
    return any(r.get("run_id") == planned.run_id for r in read_rows(planned.table))


def execute(planned: PlannedRun) -> RunResult:
    """Do a planned run: the task's work, then its rows (with provenance) upserted into its table."""
    task, task_cls, ctx, key = planned.task, planned.task_cls, planned.ctx, planned.run_id
    seed_everything(ctx.seed)
    t0 = time.perf_counter()
    measurements = task_cls().run(ctx, planned.params)
    seconds = time.perf_counter() - t0
    if isinstance(measurements, NextStep):
        return RunResult(task, [], planned.table, seconds, ctx.cache.hits, ctx.cache.misses,
                         message=measurements.message)

    ckpt = ctx.ckpt
    common = {
        "run_id": key, "task": task, "task_version": task_cls.version, "dataset": ctx.dataset,
        "ckpt": str(ckpt) if ckpt else "", "ckpt_sha256": ctx.ckpt_sha256, "seed": ctx.seed,
        "subset": ctx.subset if ctx.subset is not None else "", "seconds": round(seconds, 2), "device": str(ctx.device),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    run_details = {"recipe": planned.recipe} if planned.recipe else {}
    rows = [{**common, **_checkpoint_columns(m), "split": m.split, "model": m.model, "features": m.features,
             "draw": m.draw, "metric": m.metric, "value": repr(float(m.value)),
             "params": json.dumps({**planned.params_dict, **m.params}, sort_keys=True, default=str),
             "details": json.dumps({**run_details, **m.details}, sort_keys=True, default=str)}
            for m in measurements]
    path = upsert(planned.table, rows)
    figure = None
    if len({m.ckpt for m in measurements if m.ckpt}) > 1:
        from bench.pictures import plot_vs_step

        figure = plot_vs_step(measurements, ctx.artifact("vs-step.png"), title=f"{task} on {ctx.dataset}: {ckpt}")
    return RunResult(task, rows, path, seconds, ctx.cache.hits, ctx.cache.misses, figure)


def run(task: str, **options) -> RunResult:
    """Run a task (``plan``'s keyword arguments) and write its rows."""
    return execute(plan(task, **options))


def _check_text(values: dict[str, object]) -> None:
    """Paths and values end up in UTF-8 result tables: one that is not text fails now, not after the work."""
    for flag, value in values.items():
        try:
            str(value).encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"{flag} {str(value).encode('utf-8', 'surrogateescape')!r}: expected a path or value "
                              "that is valid UTF-8") from None


def _checkpoint_columns(m: Measurement) -> dict:
    """A measurement of one of several checkpoints names its own (the run's --ckpt is their folder)."""
    return {"ckpt": str(m.ckpt), "ckpt_sha256": fingerprint(m.ckpt)} if m.ckpt else {}
