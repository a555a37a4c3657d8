"""Does the generator copy its training images? Nearest training neighbours of samples (paper, section 6).

The paper argues its samples are not memorised (smooth latent walks, section 6.1, and
de-duplicated data, section 4.1.1). The direct check: how close is each sample to its nearest
training image, compared with how close held-out real images are? A generator that copies has
samples much nearer to the training set than new real images are; one that does not gives a
distance distribution like the held-out images'.

1. ``n`` samples from the run's seed, rounded to 8-bit pixels as saved images are; ``n`` images of
   ``control`` (drawn with the seed) as the reference.
2. Two spaces: raw pixels (scaled to [-1, 1]) and the discriminator's features (``features``, the
   paper's max-pooled layers by default; the training split's come from the feature cache). The
   discriminator is ``d`` or, by default, the ``d.pt`` beside the generator file (a training run's
   export).
3. Exact L2 nearest neighbours in ``split`` with faiss (``IndexFlatL2``).

Rows, per space (``features``: ``pixels`` or the layer spec): quantiles and mean of the nearest
distance for ``generator`` and for ``<control>-images``, their ratio (model ``generator/<control>``)
and ``closer_than_control_q01``, the share of samples nearer to the training set than all but 1% of
the held-out images (about 0.01 when nothing is copied). Pictures: ``neighbours-<space>.png`` (a
sample, framed green, then its ``k`` nearest training images with their distances) and
``distances.png`` (both distributions, per space).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.features import LayerSpec, extract_features, pixel_features, to_uint8
from bench.results import Measurement
from bench.tasks.base import TASKS, RunContext, Task, Workload
from dcgan.checkpoint import fingerprint
from dcgan.errors import ConfigError
from dcgan.nets import sample_z
from dcgan.params import Params, param

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class MemorisationParams(Params):
    samples: int = param(1000, "generated samples, and held-out images as the reference", low=2)
    neighbours: int = param(5, "nearest training images shown per sample", low=1)
    show: int = param(8, "samples on the neighbour sheets", low=1)
    discriminator: str | None = param(None, "discriminator checkpoint for the feature space; none: d.pt beside "
                                            "--ckpt")
    features: str = param("all/max4", "D feature spec; the paper's representation (section 5.1): every layer "
                                      "max-pooled to 4x4")
    control: str = param("test", "real images not trained on: their distances are the reference")
    bins: int = param(50, "histogram bins of distances.png", low=1)


@TASKS.register("memorisation")
class Memorisation(Task):
    summary = "samples' nearest training images (pixels, D features) vs held-out images' (faiss, exact L2)"
    paper = "6.1"
    smoke = {"samples": 30, "neighbours": 2, "show": 2}
    also_needs = ("discriminator",)
    section = "learning"
    headline = ("closer_than_control_q01", "nn_distance_q50")
    pictures = {
        "neighbours-pixels.png": "each sample (green frame) beside its nearest training images in pixel space, with "
                                 "their distances: a copying generator shows a twin of a training image first",
        "neighbours-d.png": "the same search in the discriminator's feature space, where near means alike to D",
        "distances.png": "distance to the nearest training image, samples against held-out real images: samples "
                         "piled up left of the held-out images would be copies",
    }

    @classmethod
    def workload(cls, p: MemorisationParams, sizes: dict[str, int]) -> Workload:
        """Samples from G, D features of both splits and the samples, and exact searches in two spaces."""
        n_train, queries = sizes.get("train", 0), 2 * p.samples
        return Workload(g_images=p.samples, d_images=n_train + sizes.get("test", 0) + p.samples,
                        flops=2 * queries * n_train * (sizes.get("dims", 0) + sizes.get("pixels", 0)))
    needs = "generator"
    default_split = "train"  # the images searched
    Params = MemorisationParams

    def check(self, ctx: RunContext, p: MemorisationParams) -> None:
        """Its D must exist and have features of an image alone."""
        LayerSpec.parse(p.features).resolve(ctx.net("discriminator", _d_ckpt(ctx, p))[0])

    def run(self, ctx: RunContext, p: MemorisationParams) -> list[Measurement]:
        d_ckpt = _d_ckpt(ctx, p)
        _, gcfg = ctx.net("generator")
        D, dcfg = ctx.net("discriminator", d_ckpt)
        if (gcfg.image_size, gcfg.nc) != (dcfg.image_size, dcfg.nc):
            raise ConfigError(f"discriminator {d_ckpt} takes {dcfg.nc}x{dcfg.image_size}x{dcfg.image_size} "
                              f"images, the generator draws {gcfg.nc}x{gcfg.image_size}x{gcfg.image_size}")
        spec = LayerSpec.parse(p.features)
        train = ctx.split(ctx.split_name, gcfg.image_size, gcfg.nc)
        control = ctx.split(p.control, gcfg.image_size, gcfg.nc)
        picked = np.sort(np.random.default_rng(ctx.seed).choice(len(control), min(p.samples, len(control)), replace=False))

        samples = to_uint8(ctx.generate(sample_z(p.samples, gcfg, torch.Generator().manual_seed(ctx.seed))))
        fakes = torch.utils.data.TensorDataset(samples, torch.zeros(len(samples)))
        spaces = {  # short name: (features column, training split's, control split's, samples')
            "pixels": ("pixels", ctx.features("raw-pixels", ctx.split_name, spec, d_ckpt), ctx.features("raw-pixels", p.control, spec, d_ckpt),
                       pixel_features(fakes, np.empty((len(fakes), samples[0].numel()), np.float32))),
            "d": (str(spec), ctx.features("trained-d", ctx.split_name, spec, d_ckpt), ctx.features("trained-d", p.control, spec, d_ckpt),
                  extract_features(D, fakes, spec, ctx.device, ctx.batch_size, ctx.precision)),
        }
        extra = {"d_ckpt": str(d_ckpt), "d_sha256": fingerprint(d_ckpt), "n_train": len(train),
                 "n_control": len(picked)}
        out, nearest_of = [], {}
        for short, (column, train_x, control_x, sample_x) in spaces.items():
            dist, idx = nearest(train_x, np.concatenate([sample_x, control_x[picked]]), p.neighbours)
            fake, real = dist[:p.samples, 0], dist[p.samples:, 0]
            out += _rows(fake, real, column, ctx.split_name, p, extra)
            nearest_of[column] = (fake, real)
            _neighbour_sheet(samples[:p.show], dist[:p.show], idx[:p.show], train, ctx.artifact(f"neighbours-{short}.png"))
        _histograms(nearest_of, ctx.split_name, p, ctx.artifact("distances.png"))
        return out

    def reads(self, ctx: RunContext, p: MemorisationParams) -> list[tuple[str, str, str | None]]:
        return [(ctx.dataset, split, ctx.data_root) for split in (ctx.split_name, p.control)]


def _d_ckpt(ctx: RunContext, p: MemorisationParams) -> Path:
    """The discriminator whose feature space is searched: ``discriminator``, or the d.pt beside G."""
    d_ckpt = Path(p.discriminator) if p.discriminator else ctx.ckpt.parent / "d.pt"
    if not d_ckpt.is_file():
        raise ConfigError(f"memorisation compares in a discriminator's feature space: {d_ckpt} does not "
                          "exist; pass --set discriminator=PATH (a d.pt)")
    return d_ckpt


def nearest(base: np.ndarray, queries: np.ndarray, k: int, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Exact L2 distances (not squared) and indices of each query's ``k`` nearest rows of ``base``.

    ``base`` may be a memory-mapped cache file: it is copied into the index a chunk at a time.
    """
    import faiss

    index = faiss.IndexFlatL2(base.shape[1])
    for s in range(0, len(base), chunk):
        index.add(np.ascontiguousarray(base[s: s + chunk], dtype=np.float32))
    d2, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.sqrt(np.maximum(d2, 0)), idx


def _rows(fake: np.ndarray, real: np.ndarray, space: str, split: str, p: MemorisationParams,
          extra: dict) -> list[Measurement]:
    """Distance statistics of the samples and the control images (and their ratios), nearest distances given."""
    def stats(d: np.ndarray) -> dict[str, float]:
        return {"nn_distance_mean": d.mean(), **{f"nn_distance_q{round(q * 100):02d}": np.quantile(d, q)
                                                 for q in QUANTILES}}

    f, r = stats(fake), stats(real)
    ratio = {k: f[k] / r[k] if r[k] > 0 else float("nan") for k in f}
    closer = float((fake < np.quantile(real, 0.01)).mean())
    models = {"generator": {**f, "closer_than_control_q01": closer}, f"{p.control}-images": r,
              f"generator/{p.control}": ratio}
    return [Measurement(metric, float(v), split=split, model=model, features=space, details=extra)
            for model, values in models.items() for metric, v in values.items()]


def _neighbour_sheet(samples: torch.Tensor, dist: np.ndarray, idx: np.ndarray, train, path: Path) -> None:
    from bench.pictures import GREEN, contact_sheet

    rows = [[(s, f"sample {i}", GREEN), *((train[int(j)][0], f"#{j} {d:.2f}", None) for j, d in zip(js, ds))]
            for i, (s, js, ds) in enumerate(zip(samples, idx, dist))]
    contact_sheet(rows, path, tile=max(64, samples.shape[-1]))


def _histograms(found: dict[str, tuple[np.ndarray, np.ndarray]], split: str, p: MemorisationParams, path: Path) -> None:
    """Per space, the nearest-training-image distances of the samples and of the held-out images."""
    from bench.pictures import pyplot, save_figure

    fig, axes = pyplot().subplots(1, len(found), figsize=(4.5 * len(found), 3.4), squeeze=False)
    for ax, (space, (fake, real)) in zip(axes[0], found.items()):
        bins = np.linspace(0, max(fake.max(), real.max()), p.bins + 1)
        ax.hist(real, bins, alpha=0.55, label=f"{p.control} images (n={len(real)})")
        ax.hist(fake, bins, alpha=0.55, label=f"samples (n={len(fake)})")
        ax.set_xlabel(f"L2 distance to the nearest {split} image")
        ax.set_title(space)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
