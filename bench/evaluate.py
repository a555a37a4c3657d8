"""``bench evaluate``: a suite of tasks run on one model, each through ``bench.run``, then its report card.

1. ``plan_steps``: each suite entry becomes a run of a registered task (a probe once per D layer
   with ``per_layer``, once per per-epoch D export with ``per_epoch``), or a note saying why it
   cannot run on what was given (a task needing a G when there is none, a data set that is not
   there, a task that does not apply to the model's family, e.g. a probe of a D that takes the label
   at every layer). Each run is planned by ``bench.run.plan``, so its ``run_id`` is known before any
   work and a run whose rows are in ``results/<task>.csv`` already is not done again: a second
   evaluate of the same model takes seconds, and one that was interrupted (Ctrl-C) goes on with the
   tasks not done.
2. ``estimate``: the time the remaining runs will take, from what each task declares it costs
   (``Task.workload``) and a few timed forward passes on this machine: this model's D and G, a
   matrix product, and Inception when a run needs it and its weights are here (priced by its
   arithmetic otherwise). The SVM's fits are priced by their arithmetic: an estimate.
3. ``run_steps``: the runs, one progress line each. A task that fails on a user error (the FID's
   Inception weights not available offline, say) is noted on the card, not an error of the whole
   evaluation.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from bench.run import PlannedRun, RunResult, execute, has_rows, plan
from bench.subject import Subject
from bench.suite import Entry, Suite
from bench.tasks.base import TASKS, Workload
from bench.tasks.fid import spaced
from dcgan.checkpoint import epoch_checkpoints, load_net
from dcgan.data import get_spec, load_dataset
from dcgan.errors import DCGANError, NotApplicable, one_line
from dcgan.generate import default_labels
from dcgan.models import family_of
from dcgan.weights import WeightsError

INCEPTION_MACS = 5.7e9  # multiply-adds of one Inception-v3 forward at 299 x 299 (Szegedy et al. 2016)
# without its weights to time it, the estimate prices an Inception image at three times its arithmetic: its
# convolutions ran at about a third of a large matrix product's flops on a 2-core AVX2 CPU (4 images/s
# against 148 GFLOP/s); on an AVX-512 one with native bf16, 20 images/s fp32 against 340 GFLOP/s
INCEPTION_SLOWDOWN = 3.0
INCEPTION_TIMED_ABOVE = 1000  # images: timing Inception takes seconds, worth it when its share is minutes


@dataclass
class Step:
    """One run of the battery: what it runs, and what became of it."""

    entry: Entry
    task: str  # the registered task it runs
    title: str  # the entry's label, and the layer of a per-layer probe or the epoch of a per-epoch one
    planned: PlannedRun | None = None
    status: str = "todo"  # todo, done (its rows were there), ran, skipped (cannot run here), failed
    note: str = ""  # why it was skipped or failed, or what the task asks the user to do
    seconds: float = 0.0
    estimate: float | None = None
    result: RunResult | None = None
    epoch: int | None = None  # the training epoch of the D a per-epoch probe reads

    @property
    def run_id(self) -> str:
        return self.planned.run_id if self.planned else ""

    @property
    def measured(self) -> bool:
        """Whether its rows are in its table (a task that stopped for the user's input wrote none)."""
        return self.status in ("done", "ran") and not self.note


def data_problem(subject: Subject) -> str:
    """Why the subject's data set cannot be read here ("" when it can)."""
    if not subject.dataset:
        return "no data set is known for these checkpoints: pass --dataset (and --data-root)"
    try:
        load_dataset(subject.dataset, "train", root=subject.data_root, image_size=subject.model.image_size,
                     channels=subject.model.nc, subset=1)
    except DCGANError as e:
        return one_line(e)
    return ""


def plan_steps(subject: Subject, suite: Suite, results_dir: str | Path, **run_options) -> list[Step]:
    """Every entry of ``suite`` as runs on ``subject`` (``run_options``: bench.run.plan's device, seed,
    precision, batch_size)."""
    no_data = data_problem(subject) if any(TASKS.get(e.task_for(subject.dataset)).reads_data
                                           for e in suite.entries) else ""
    steps = []
    for entry in suite.entries:
        task = entry.task_for(subject.dataset)
        cls = TASKS.get(task)
        title = entry.label or cls.name
        kinds = [k for k in (cls.needs or ("generator" if cls.takes_sources else None), *cls.also_needs) if k]
        missing = [k for k in kinds if not subject.has(k)]
        if missing:
            steps.append(Step(entry, task, title, status="skipped",
                              note=f"needs a {' and a '.join(missing)} checkpoint; none was given"))
            continue
        if cls.reads_data and no_data:
            steps.append(Step(entry, task, title, status="skipped", note=f"needs its data: {no_data}"))
            continue
        if entry.per_epoch and not subject.ckpt_dir:
            steps.append(Step(entry, task, title, status="skipped",
                              note="needs a training run's per-epoch exports (its ckpt/ folder); none was given"))
            continue
        for layer, (epoch, ckpt) in itertools.product(_layers(subject, entry), _epochs(subject, entry, cls)):
            overrides = entry.params_on(subject.dataset)
            if layer:
                overrides = {**overrides, "features": f"{layer}/{entry.per_layer}"}
            if "discriminator" in cls.also_needs and subject.d != subject.g.parent / "d.pt":
                overrides = {**overrides, "discriminator": str(subject.d)}  # not the d.pt it finds beside G
            which = layer or (f"epoch {epoch}" if epoch is not None else "")  # of a per-layer or per-epoch probe
            step = Step(entry, task, f"{title}: {which}" if which else title, epoch=epoch)
            try:
                step.planned = plan(task, ckpt=ckpt, dataset=subject.dataset or None,
                                    data_root=subject.data_root, subset=entry.subset, overrides=overrides,
                                    recipe=entry.recipe, results_dir=results_dir, **run_options)
                step.status = "done" if has_rows(step.planned) else "todo"
            except DCGANError as e:
                step.status, step.note = "skipped" if isinstance(e, NotApplicable) else "failed", one_line(e)
            steps.append(step)
    return steps


def _layers(subject: Subject, entry: Entry) -> list[str]:
    """The D layers a per-layer entry probes one by one (``[""]``: one run with the entry's features)."""
    if not entry.per_layer:
        return [""]
    return list(load_net(subject.path("discriminator"), "discriminator", takes=None)[0].layer_names)


def _epochs(subject: Subject, entry: Entry, cls) -> list[tuple[int | None, Path | None]]:
    """(epoch, checkpoint) of each run of an entry: the per-epoch D exports of the run with ``per_epoch``
    (all, or that many evenly spaced), else one run of the checkpoint the task reads."""
    if not entry.per_epoch:
        return [(None, _ckpt(subject, cls))]
    exports = epoch_checkpoints(subject.ckpt_dir, "discriminator")
    return exports if entry.per_epoch is True else spaced(exports, entry.per_epoch)


def _ckpt(subject: Subject, cls) -> Path | None:
    """The checkpoint a task reads: D or G as it needs, or for FID the run's every epoch when there are several."""
    if cls.needs == "discriminator":
        return subject.d
    if cls.needs is None and cls.takes_sources and len(subject.epochs) > 1:
        return subject.ckpt_dir
    return subject.g


# ---- the estimate -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Speed:
    """Seconds per image through this model's D and G and through Inception (None: not timed), and this
    machine's matrix-product flops per second."""

    d: float
    g: float
    flops: float
    inception: float | None = None

    def seconds(self, w: Workload) -> float:
        inception = self.inception or INCEPTION_SLOWDOWN * 2 * INCEPTION_MACS / self.flops
        return w.d_images * self.d + w.g_images * self.g + w.inception_images * inception + w.flops / self.flops

    def describe(self) -> str:
        inception = (f"Inception {1 / self.inception:.0f} images/s" if self.inception else
                     "Inception priced by its arithmetic")
        return (f"D {1e3 * self.d:.2f} ms and G {1e3 * self.g:.2f} ms an image, {inception}, {self.flops / 1e9:.0f} "
                "GFLOP/s in a matrix product; the SVM fits priced by their arithmetic, so a rough guide")


def _per_image(net, x, repeats: int, **inputs) -> float:
    """Seconds per image of ``net`` on the batch ``x`` (and keyword ``inputs``, a conditional net's labels):
    ``repeats`` timed passes after one untimed."""
    with torch.no_grad():
        net(x, **inputs)
        t0 = time.perf_counter()
        for _ in range(repeats):
            net(x, **inputs)
    return (time.perf_counter() - t0) / (repeats * len(x))


def time_inception(device: torch.device, precision: str, batch: int = 8, repeats: int = 2) -> float | None:
    """Seconds per image of the FID's Inception at ``precision`` (the fast forward the fid task runs), or
    None when its weights are not on this machine (timing must not start a download)."""
    from dcgan.weights import local_weights

    weights = local_weights()
    if weights is None:
        return None
    from torch_fidelity.utils import create_feature_extractor

    from bench.extractors import torch_fidelity_name

    net = create_feature_extractor(torch_fidelity_name("inception-v3", precision), ["2048"],
                                   cuda=device.type == "cuda", feature_extractor_weights_path=str(weights))
    images = torch.zeros(batch, 3, 32, 32, dtype=torch.uint8, device=device)  # resized to 299 inside, as samples are
    return _per_image(net, images, repeats)


def measure_speed(subject: Subject, device: torch.device, *, precision: str = "fp32", inception: bool = False,
                  batch: int = 64, repeats: int = 3) -> Speed:
    """A few timed passes (after one untimed) of the model's nets, of a 1024 x 1024 float32 product and,
    when ``inception``, of the FID's Inception."""
    def per_image(net, x, labels) -> float:
        return _per_image(net, x, repeats, labels=labels.to(device) if labels is not None else None)

    cfg = subject.model
    images = torch.zeros(batch, cfg.nc, cfg.image_size, cfg.image_size, device=device)
    D = load_net(subject.d, "discriminator", takes=None)[0].to(device) if subject.d else None
    G = load_net(subject.g, "generator", takes=None)[0].to(device) if subject.g else None
    d = per_image(D, images, default_labels(D, batch)) if D is not None else 0.0
    family = family_of(cfg)
    g = (per_image(G, family.example_input(cfg, batch).to(device), family.example_labels(G, batch))
         if G is not None else 0.0)
    a = np.ones((1024, 1024), np.float32)
    a @ a
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ a
    flops = 2 * 1024**3 * repeats / (time.perf_counter() - t0)
    return Speed(d, g, flops, time_inception(device, precision) if inception else None)


def sizes(subject: Subject, subset: int | None) -> dict[str, int]:
    """What a task's workload depends on: images per split, classes, image size, channels, feature and pixel
    dimensions, epochs."""
    out = {"checkpoints": max(1, len(subject.epochs))}
    cfg = subject.model
    out["pixels"] = cfg.nc * cfg.image_size**2
    out["channels"], out["image_size"] = cfg.nc, cfg.image_size
    D = load_net(subject.d, "discriminator", takes=None)[0] if subject.d else None
    if D is not None and not D.features_take_labels:  # a D without image features has no feature tasks to price
        from bench.features import LayerSpec

        out["dims"] = LayerSpec().dims(D)
    if subject.dataset:
        spec = get_spec(subject.dataset)
        out["classes"] = spec.num_classes or 0
        for split in spec.splits:
            try:
                data = load_dataset(subject.dataset, split, root=subject.data_root, image_size=cfg.image_size,
                                    channels=cfg.nc)
            except DCGANError:
                continue
            out[split] = min(len(data), subset) if subset else len(data)
            out["classes"] = data.num_classes or 0  # the spec's, or those found in the data (class-folders)
    return out


def workloads(steps: list[Step], subject: Subject) -> dict[int, Workload]:
    """What each step still to do declares it costs, by its position in ``steps`` (tasks declaring none left out)."""
    out, known = {}, {}
    for i, step in enumerate(steps):
        if step.status != "todo":
            continue
        subset = step.entry.subset
        if subset not in known:
            known[subset] = sizes(subject, subset)
        work = step.planned.task_cls.workload(step.planned.params, known[subset])
        if work:
            out[i] = work
    return out


def estimate(steps: list[Step], work: dict[int, Workload], speed: Speed) -> float:
    """Seconds the steps still to do will take at ``speed``; each step keeps its own estimate."""
    for i, step in enumerate(steps):
        step.estimate = speed.seconds(work[i]) if i in work else None
    return sum(step.estimate or 0.0 for step in steps)


# ---- running ----------------------------------------------------------------------------------------

def run_steps(steps: list[Step], echo: Callable[[str], None] = print) -> None:
    """Run the steps to do, one progress line each; a user error of one run is its note, not the end.

    Ctrl-C stops at once: the runs that ended have written their rows, the one under way writes none.
    """
    width = len(str(len(steps)))
    for i, step in enumerate(steps, 1):
        head = f"[{i:>{width}}/{len(steps)}] {step.task} ({step.title})" if step.title != step.task else \
            f"[{i:>{width}}/{len(steps)}] {step.task}"
        if step.status == "done":
            echo(f"{head}: rows already in {step.planned.table} (run {step.run_id}), nothing to do")
            continue
        if step.status != "todo":
            echo(f"{head}: {step.status}: {step.note}")
            continue
        guess = f", estimate {duration(step.estimate)}" if step.estimate is not None else ""
        echo(f"{head}: running{guess} ...")
        t0 = time.perf_counter()
        try:
            step.result = execute(step.planned)
        except DCGANError as e:
            # missing Inception weights are a missing download, not a broken run: the card says how to get them
            step.status = "skipped" if isinstance(e, WeightsError) else "failed"
            step.note = one_line(e)
            echo(f"{head}: {step.status}: {step.note}")
            continue
        finally:
            step.seconds = time.perf_counter() - t0
        step.status = "ran"
        step.note = step.result.message  # a task that asks the user for input first (no rows)
        echo(f"{head}: {len(step.result.rows)} rows -> {step.result.path} in {duration(step.seconds)}"
             + (f"; {step.note}" if step.note else ""))


def duration(seconds: float) -> str:
    """A duration as people read it: seconds, minutes or hours."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ---- the whole command ------------------------------------------------------------------------------

def evaluate(subject: Subject, suite: Suite, *, results_dir: str | Path = "results", out: str | Path | None = None,
             device: str = "auto", seed: int = 0, precision: str = "fp32", batch_size: int = 256,
             echo: Callable[[str], None] = print) -> tuple[Path, list[Step]]:
    """Plan, estimate and run ``suite`` on ``subject``, then write its report card; returns the page's path.

    KeyboardInterrupt propagates after a line saying what was kept: the card is not written then.
    """
    from bench.report.card import write_card
    from dcgan.device import resolve_device

    dev = resolve_device(device)
    steps = plan_steps(subject, suite, results_dir, device=str(dev), seed=seed, precision=precision,
                       batch_size=batch_size)
    todo = [s for s in steps if s.status == "todo"]
    done = sum(s.status == "done" for s in steps)
    echo(f"evaluating {subject.name} ({subject.dataset or 'no data set'}) with suite {suite.name}: {len(steps)} "
         f"runs, {done} already done, {len(todo)} to do")
    if todo:
        work = workloads(steps, subject)
        speed = measure_speed(subject, dev, precision=precision,
                              inception=sum(w.inception_images for w in work.values()) > INCEPTION_TIMED_ABOVE)
        total = estimate(steps, work, speed)
        echo(f"estimate: about {duration(total)} on {dev} (measured here: {speed.describe()})")
    try:
        run_steps(steps, echo)
    except KeyboardInterrupt:
        kept = sum(s.status in ("done", "ran") for s in steps)
        echo(f"interrupted: {kept} of {len(steps)} runs have their rows in {results_dir}; run the same bench "
             "evaluate again to continue with the rest")
        raise
    out = Path(out) if out else Path(results_dir) / "report" / subject.name
    page = write_card(subject, steps, suite, results_dir, out, str(dev))
    return page, steps
