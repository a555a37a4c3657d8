"""Generative quality: FID, KID, IS and precision/recall against a data set's real images, by torch-fidelity.

Protocol (the numbers papers report since Heusel et al. 2017):
1. Fake images (``--fake``): ``samples`` (50,000 by convention) from the generator (``--ckpt`` or
   ``ckpt:PATH``), sample i at a z drawn from (the run's seed, i), so that any batch size and any number
   of processes draw the same images; class-balanced for a conditional generator (class i mod K), uint8 RGB
   (grey expanded); or every image of a folder
   (``folder:PATH``), or a split of the data set (``dataset:NAME:SPLIT``: real against real).
2. Real images (``--real``, default ``dataset:<--dataset>:train``): a split or a folder, at the same
   size, 3 channels.
3. torch-fidelity's metrics on Inception-v3 pool3 features (IS on its logits, fake side only): FID;
   KID over 100 subsets of 1000; IS over 10 splits; precision/recall with k = 3, on the same
   Inception features (torch-fidelity would use VGG-16 for them alone), so that one network, and
   one weights file offline, serves all four.
4. One row per number (KID and IS with their std as ``kid_std``, ``is_std``); the convention
   (network, weights, resize) in the ``features`` column; the image counts in the params.

``--ckpt`` may be a training run's ``ckpt/`` folder: every epoch's generator is measured against the
same real features (extracted once, then cached), giving rows per checkpoint and a plot against the
training step. FID is biased upwards at small counts: compare numbers at equal counts only.
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from tqdm.auto import tqdm

from bench.results import Measurement
from bench.shards import DataRef
from bench.tasks.base import TASKS, Reference, RunContext, Task, Workload
from dcgan.checkpoint import epoch_checkpoints, fingerprint, load_net
from dcgan.data import load_dataset
from dcgan.errors import ConfigError
from dcgan.models import check_classes
from dcgan.params import Params, param

METRICS = ("fid", "kid", "isc", "prc")  # what a run can ask for: torch-fidelity's own flags


@dataclass(frozen=True)
class InceptionParams(Params):
    """The feature network of every task measured on Inception features (``fid``, ``intra-fid``): the
    same values give the same features, and the same cache files for the same real images."""

    extractor: str = param("inception-v3", "feature network: inception-v3 (our faster forward, same features) or "
                                           "torch-fidelity (its stock InceptionV3)")
    inception_batch_size: int = param(64, "images per Inception forward (torch-fidelity's default)", low=1)
    inception_weights: str | None = param(None, "weights file; none: $DCGAN_BENCH_INCEPTION_WEIGHTS, then "
                                                "`bench weights inception`'s, then torch-fidelity's download")


@dataclass(frozen=True)
class FidParams(InceptionParams):
    samples: int = param(50_000, "images drawn from a generator: the convention since Heusel et al. 2017", low=1)
    metrics: tuple[Literal[METRICS], ...] = param((), "which metrics; empty: all four (isc only if the weights "
                                                      "have logits)")
    image_size: int | None = param(None, "side both sources are compared at; none: the generator's, or the fake "
                                         "folder's first image's short side", low=1)
    kid_subsets: int = param(100, "KID subsets (torch-fidelity's, Binkowski et al. 2018)", low=1)
    kid_subset_size: int = param(1000, "images per KID subset", low=1)
    isc_splits: int = param(10, "Inception Score splits (Salimans et al. 2016)", low=1)
    prc_neighborhood: int = param(3, "k of precision/recall (Kynkaanniemi et al. 2019)", low=1)
    checkpoints: int | None = param(None, "of a training run's ckpt/ folder, measure this many evenly spaced "
                                          "epochs, the last always among them; none: every epoch", low=1)


@dataclass(frozen=True)
class Source:
    """One side of the comparison, as typed after ``--real`` / ``--fake``: ``dataset:NAME[:SPLIT]``,
    ``folder:PATH`` or ``ckpt:PATH`` (a generator, or a training run's ckpt/ folder)."""

    kind: str
    where: str = ""
    split: str = "train"

    @classmethod
    def parse(cls, text: str, flag: str) -> "Source":
        kind, _, rest = text.partition(":")
        if kind == "dataset" and rest:
            name, _, split = rest.partition(":")
            return cls(kind, name, split or "train")
        if kind in ("folder", "ckpt") and rest:
            return cls(kind, rest)
        raise ConfigError(f"{flag} {text!r}: expected dataset:NAME[:SPLIT], folder:PATH or ckpt:PATH")

    def __str__(self) -> str:
        return f"dataset:{self.where}:{self.split}" if self.kind == "dataset" else f"{self.kind}:{self.where}"


def sources(ctx: RunContext) -> tuple[Source, Source]:
    """(real, fake): ``--real`` (default: the run's data set, train split) and ``--fake`` (default: --ckpt)."""
    real = Source.parse(ctx.real, "--real") if ctx.real else Source("dataset", ctx.dataset, "train")
    if real.kind == "ckpt":
        raise ConfigError(f"--real {ctx.real}: the real side is images (dataset:NAME[:SPLIT] or folder:PATH)")
    if ctx.fake:
        fake = Source.parse(ctx.fake, "--fake")
    elif ctx.ckpt is not None:
        fake = Source("ckpt", str(ctx.ckpt))
    else:
        raise ConfigError("task 'fid' needs a generator: --ckpt g.pt (or a run's ckpt/ folder), or --fake "
                          "folder:PATH / dataset:NAME:SPLIT")
    for side in (real, fake):
        if side.kind == "dataset" and side.where != ctx.dataset:
            raise ConfigError(f"{side}: the data set must be the run's ({ctx.dataset}); its files come from "
                              "--data-root")
    if fake.kind == "ckpt" and ctx.ckpt is not None and Path(fake.where) != ctx.ckpt:
        raise ConfigError(f"--fake {fake} and --ckpt {ctx.ckpt} name two generators: give one")
    if fake.kind != "ckpt" and ctx.ckpt is not None:
        raise ConfigError(f"--fake {fake} compares images, not a checkpoint: drop --ckpt")
    return real, fake


@dataclass
class _Fake:
    """One set of fake images to measure: how to make it, how many, and what its rows say about it."""

    make: Callable[[], object]  # -> a torch Dataset of uint8 3xSxS images (generators load only when used)
    n: int
    ckpt: Path | None = None  # set when it is one of several checkpoints
    extra: dict = field(default_factory=dict)


@TASKS.register("fid")
class Fid(Task):
    summary = "FID, KID, IS, precision/recall of a generator, folder or split vs real images (torch-fidelity)"
    version = 2  # 2: sample i drawn at its own seed, (seed, i), not from one stream (bench.fidelity.GeneratorSamples)
    Params = FidParams
    default_dataset = "cifar10"
    needs = None  # a generator, a run's folder of them, or none (--fake folder/dataset): checked in run()
    takes_sources = True
    smoke = {"samples": 40, "metrics": ("fid", "prc")}
    section = "generation"
    headline = ("fid", "kid", "precision", "recall")
    pictures = {"vs-step.png": "each metric against the training step of the checkpoint: FID and KID should fall "
                               "as training goes on; precision is how many samples look real, recall how much of "
                               "the real images' variety the samples cover"}
    references = (
        Reference("cifar10", "is", 6.16, "DCGAN, 6.16 ± 0.07 (50k samples), as reported by Gulrajani et al. 2017 "
                                         "(WGAN-GP), Table 3"),
        Reference("cifar10", "is", 11.24, "real CIFAR-10 training images, 11.24 ± 0.12, Salimans et al. 2016 "
                                          "(Improved Techniques for Training GANs)"),
    )

    def check(self, ctx: RunContext, p: FidParams) -> None:
        """A --ckpt must hold generators of z (an SR generator draws no samples): its first one is loaded
        now, so that one is refused before any work (``bench evaluate`` skips the task with that note)."""
        if ctx.ckpt is not None:
            first = epoch_checkpoints(ctx.ckpt)[0][1] if ctx.ckpt.is_dir() else ctx.ckpt
            load_net(first, "generator")

    def run(self, ctx: RunContext, p: FidParams) -> list[Measurement]:
        from bench import fidelity  # imports torch-fidelity: only runs of this task pay for it
        from bench.weights import has_logits

        real_source, source = sources(ctx)
        extractor = checked_extractor(ctx, p)
        size, fakes = _fakes(ctx, p, source)  # the inputs are checked before the weights are looked for
        real = fidelity.ImagesOnly(_images(ctx, real_source, size))
        weights = extractor.weights(p.inception_weights)
        metrics = _choose_metrics(p.metrics, weights, has_logits(weights))
        _check_counts(p, metrics, min(f.n for f in fakes), len(real))
        real_name = fidelity.real_cache_name(real.data, p.extractor, weights, ctx.precision)
        features = convention(extractor, ctx)
        options = {k: getattr(p, k) for k in ("kid_subsets", "kid_subset_size", "isc_splits", "prc_neighborhood")}
        common = {"n_real": len(real), "image_size": size, "weights_sha256": fingerprint(weights)}
        out = []
        for fake in tqdm(fakes, desc="checkpoints", unit="ckpt", disable=True if len(fakes) == 1 else None):
            t0, reads = time.perf_counter(), real.reads
            values = fidelity.calculate(fake.make(), real, real_name, metrics=metrics, extractor=p.extractor,
                                        weights=weights, device=ctx.device, batch_size=p.inception_batch_size,
                                        precision=ctx.precision, seed=ctx.seed, **options)
            extracted = real.reads > reads
            seconds = time.perf_counter() - t0
            extra = {**common, "n_fake": fake.n, "real_features": "extracted" if extracted else "cached",
                     "metric_seconds": round(seconds, 2), **fake.extra}
            out += [Measurement(name, value, split=real_source.split if real_source.kind == "dataset" else "",
                                model="generator" if source.kind == "ckpt" else str(source), features=features, ckpt=fake.ckpt,
                                details=extra) for name, value in values.items()]
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items() if not k.endswith("_std"))
            tqdm.write(f"{fake.ckpt.name if fake.ckpt else source}: {shown} ({fake.n} fake vs {len(real)} real "
                       f"images, {seconds:.0f} s)", file=sys.stderr)
        return out

    def reads(self, ctx: RunContext, p: FidParams) -> list[tuple[str, str, str | None]]:
        """The image sources that are a data set's split or a folder (a generator reads no data), in the
        order ``run`` reads them (so a missing one is named as the run would name it)."""
        real, fake = sources(ctx)
        return [(ctx.dataset, side.split, ctx.data_root) if side.kind == "dataset" else ("folder", "train", side.where)
                for side in (fake, real) if side.kind != "ckpt"]


    @classmethod
    def workload(cls, p: FidParams, sizes: dict[str, int]) -> Workload:
        """Every measured checkpoint's samples through G and Inception, the real images once."""
        fakes = p.samples * min(sizes.get("checkpoints", 1), p.checkpoints or sizes.get("checkpoints", 1))
        return Workload(g_images=fakes, inception_images=fakes + sizes.get("train", 0))


def checked_extractor(ctx: RunContext, p: InceptionParams):
    """The registered extractor ``p`` names, refused at a precision it does not run at."""
    from bench.extractors import EXTRACTORS

    extractor = EXTRACTORS.get(p.extractor)
    if ctx.precision not in extractor.precisions:
        raise ConfigError(f"extractor {p.extractor!r} runs at {', '.join(extractor.precisions)} only, not "
                          f"--precision {ctx.precision}")
    return extractor


def convention(extractor, ctx: RunContext) -> str:
    """The ``features`` column of rows measured on ``extractor``'s features: FIDs compare only within one."""
    return extractor.convention + ("" if ctx.precision == "fp32" else f", {ctx.precision} autocast")


def _fakes(ctx: RunContext, p: FidParams, source: Source) -> tuple[int, list[_Fake]]:
    """The image size both sides are compared at, and the fake image sets to measure."""
    from bench.fidelity import ImagesOnly

    if source.kind == "ckpt":
        return _generators(ctx, p)
    if source.kind == "folder":
        # listing the folder decodes nothing: the first image's size is read off its header
        size = p.image_size or _short_side(load_dataset("folder", root=source.where, image_size=1).items[0])
    elif p.image_size is None:
        raise ConfigError(f"--fake {source} needs the image size both sides are compared at: --set image_size=N")
    else:
        size = p.image_size
    data = _images(ctx, source, size)
    return size, [_Fake(lambda: ImagesOnly(data), len(data))]


def _images(ctx: RunContext, source: Source, size: int):
    """The images of a dataset or folder source at ``size``, 3 channels."""
    if source.kind == "folder":
        return DataRef("folder", root=source.where, image_size=size, channels=3).load()  # a job's ranks read it too
    return ctx.split(source.split, size, 3)


def _generators(ctx: RunContext, p: FidParams) -> tuple[int, list[_Fake]]:
    """The run's generator, or every epoch's generator of a training run's ckpt/ folder (loaded in turn)."""
    several = ctx.ckpt.is_dir()
    fakes, sizes = [], set()
    for epoch, path in spaced(epoch_checkpoints(ctx.ckpt), p.checkpoints) if several else [(None, ctx.ckpt)]:
        G, cfg, blob = load_net(path, "generator")
        check_classes(G.num_classes, ctx.dataset, ctx.num_classes(), f"generator {path}")
        sizes.add(cfg.image_size)
        extra = {"epoch": epoch, "step": blob.get("meta", {}).get("step")} if several else {}
        fakes.append(_Fake(functools.partial(_samples, ctx, p, path), p.samples, path if several else None, extra))
    if len(sizes) > 1:
        raise ConfigError(f"the generators in {ctx.ckpt} make images of different sizes ({sorted(sizes)})")
    size = sizes.pop()
    if p.image_size not in (None, size):
        raise ConfigError(f"image_size={p.image_size}: the generator makes {size}x{size} images")
    return size, fakes


def spaced(items: list, n: int | None) -> list:
    """``n`` of ``items`` evenly spaced, the last always among them (all of them when ``n`` is None or
    not fewer): FID against the step over a long run at the cost of a few checkpoints."""
    if n is None or n >= len(items):
        return items
    step = len(items) / n
    return [items[len(items) - 1 - round(i * step)] for i in reversed(range(n))]


def _samples(ctx: RunContext, p: FidParams, path: Path):
    from bench.fidelity import GeneratorSamples

    G, cfg, _ = load_net(path, "generator")
    return GeneratorSamples(G.to(ctx.device), cfg, p.samples, ctx.seed, ctx.device, ctx.batch_size, ctx.precision)


def _choose_metrics(asked: tuple[str, ...], weights: Path, logits: bool) -> tuple[str, ...]:
    """The metrics to compute; IS only with a real classifier layer, never from placeholder weights."""
    from dcgan.weights import WeightsError

    if not asked:
        if not logits:
            tqdm.write(f"IS skipped: the weights {weights} have no logits layer", file=sys.stderr)
        return tuple(m for m in METRICS if m != "isc" or logits)
    if "isc" in asked and not logits:
        raise WeightsError(f"IS needs Inception's logits layer, which the weights {weights} lack (pool3-only "
                           "weights, e.g. from `bench weights inception`); drop isc from --set metrics or use "
                           "torch-fidelity's downloaded weights")
    return asked


def _check_counts(p: FidParams, metrics: tuple[str, ...], n_fake: int, n_real: int) -> None:
    """Refuse, before any work, counts a metric cannot use (torch-fidelity would fail after extraction)."""
    needs = {  # metric: (images needed on each side it uses, the parameter that sets it, those sides)
        "fid": (2, None, (n_fake, n_real)),
        "kid": (p.kid_subset_size, "kid_subset_size", (n_fake, n_real)),
        "isc": (p.isc_splits, "isc_splits", (n_fake,)),
        "prc": (p.prc_neighborhood + 1, "prc_neighborhood", (n_fake, n_real)),
    }
    for metric in metrics:
        need, knob, sides = needs[metric]
        if min(sides) < need:
            fix = f"lower --set {knob}, " if knob else ""
            raise ConfigError(f"{metric} needs at least {need} images on each side it uses, got {n_fake} fake and "
                              f"{n_real} real: {fix}use more images, or leave {metric} out of --set metrics")


def _short_side(path: str) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return min(image.size)
