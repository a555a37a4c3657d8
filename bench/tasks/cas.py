"""Classification Accuracy Score (Ravuri & Vinyals 2019): can a classifier learn the classes from the samples?

A conditional generator is asked for ``per_class`` images of each class; the fixed classifier of
``bench.classifier`` is trained on them with the labels they were drawn at and scored on the real
test split. In the same table, the same classifier trained the same way on:

- ``per_class`` real training images of each class: the ceiling (model ``real``);
- optionally (``unconditional``) an unconditional generator's samples, labelled by that real-trained
  classifier and kept until each class has ``per_class`` of them (model ``unconditional-g``): what an
  unconditional model of the data gives when its samples are sorted into classes after the fact.

A generator whose label does not decide the class scores near chance (1 / classes), one drawing
faithful and varied images of each class near the ceiling. Rows per draw: ``accuracy`` on the whole
test split and ``accuracy_class_<c>`` on each class's test images, per model; ``features`` names the
classifier's recipe. Each draw is its own seed (``seed + draw``): the samples, the real images
picked, the classifier's initialisation and minibatch order.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.classifier import ClassifierParams, accuracies, forward_flops, images_of, predict, train_classifier
from bench.features import to_uint8
from bench.results import Measurement
from bench.tasks.base import TASKS, ConditionalTask, RunContext, Workload
from dcgan.checkpoint import fingerprint, load_net
from dcgan.errors import ConfigError, DataError
from dcgan.generate import balanced_labels, generate
from dcgan.nets import sample_z
from dcgan.params import param

CHUNK = 4096  # samples drawn at a time: float images of a whole training set never sit in memory at once


@dataclass(frozen=True)
class CasParams(ClassifierParams):
    per_class: int | None = param(None, "training images of each class, generated and real; none: as many as the "
                                        "real training split's smallest class has (Ravuri & Vinyals train on as many "
                                        "samples as the real training set holds)", low=1)
    draws: int = param(1, "training sets and classifiers per model, each from its own seed (seed + draw)", low=1)
    unconditional: str | None = param(None, "an unconditional generator (g.pt) to compare: its samples, labelled by "
                                            "the real-trained classifier, train the same classifier")
    draw_limit: int = param(10, "unconditional comparison: samples drawn at most, in multiples of per_class x "
                                "classes, to find per_class of each class", low=1)


@TASKS.register("cas")
class Cas(ConditionalTask):
    summary = ("Classification Accuracy Score: a fixed CNN trained on a conditional G's samples, tested on real "
               "images, beside the same CNN trained on real images")
    Params = CasParams
    default_dataset = "cifar10"
    smoke = {"per_class": 8, "epochs": 2, "width": 8}
    section = "classes"
    headline = ("accuracy",)

    def reads(self, ctx: RunContext, p: CasParams) -> list[tuple[str, str, str | None]]:
        return [(ctx.dataset, split, ctx.data_root) for split in ("train", "test")]

    @classmethod
    def workload(cls, p: CasParams, sizes: dict[str, int]) -> Workload:
        """Samples drawn, and every training set's passes through the classifier (a backward counts as two
        forwards), plus the test split's: two or three models a draw."""
        classes = sizes.get("classes") or 1
        n = (p.per_class or sizes.get("train", 0) // classes) * classes
        models = 3 if p.unconditional else 2
        per_image = forward_flops(sizes.get("channels", 3), sizes.get("image_size", 32), p.width)
        fakes = n * (1 + (p.draw_limit if p.unconditional else 0))
        return Workload(g_images=p.draws * fakes,
                        flops=p.draws * per_image * (3 * models * p.epochs * n + (models + 1) * sizes.get("test", 0)))

    def run(self, ctx: RunContext, p: CasParams) -> list[Measurement]:
        G, cfg = ctx.net("generator")
        K = G.num_classes
        baseline = _unconditional(ctx, p, cfg)  # checked before any work
        train = ctx.split("train", cfg.image_size, cfg.nc)
        test = ctx.split("test", cfg.image_size, cfg.nc)
        train_y, test_x, test_y = train.labels, images_of(test), test.labels
        counts = torch.bincount(train_y, minlength=K)
        per_class = p.per_class or int(counts.min())
        if counts.min() < per_class:
            c = int(counts.argmin())
            raise DataError(f"per_class={per_class}: class {c} has only {int(counts[c])} images in the train split of "
                            f"{ctx.dataset}" + (f" (--subset {ctx.subset})" if ctx.subset else ""))
        train_x = images_of(train)
        options = dict(**p.options(), device=ctx.device)
        out = []
        for draw in range(p.draws):
            seed = ctx.seed + draw
            picked = _pick(train_y, per_class, K, np.random.default_rng(seed))
            labels = balanced_labels(per_class * K, K)
            fakes = _samples(ctx, G, cfg, len(labels), torch.Generator().manual_seed(seed), labels)
            real = train_classifier(train_x[picked], train_y[picked], K, seed=seed, **options)
            trained = {"generator": (train_classifier(fakes, labels, K, seed=seed, **options), None, {}),
                       "real": (real, None, {})}
            if baseline is not None:  # sorted into classes by the classifier trained on real images
                x, y, extra = _sorted_samples(ctx, baseline, real, per_class, K, p.draw_limit, seed)
                trained["unconditional-g"] = (train_classifier(x, y, K, seed=seed, **options), baseline[2], extra)
            for model, (net, ckpt, extra) in trained.items():
                overall, per = accuracies(predict(net, test_x, ctx.device), test_y, K)
                details = {"per_class": per_class, "n_test": len(test_y), **extra}
                out += [Measurement(metric, value, draw=draw, model=model, features=p.recipe(), ckpt=ckpt,
                                    details=details)
                        for metric, value in [("accuracy", overall),
                                              *((f"accuracy_class_{c}", a) for c, a in enumerate(per))]]
        return out


def _unconditional(ctx: RunContext, p: CasParams, cfg) -> tuple | None:
    """The comparison's generator and its path, checked: unconditional, and drawing the run's kind of images."""
    if p.unconditional is None:
        return None
    path = Path(p.unconditional)
    if not path.is_file():
        raise ConfigError(f"unconditional={path}: no such generator checkpoint")
    G, ucfg, _ = load_net(path, "generator")
    if G.num_classes:
        raise ConfigError(f"unconditional={path} is a conditional generator: the comparison is an unconditional one")
    if (ucfg.image_size, ucfg.nc) != (cfg.image_size, cfg.nc):
        raise ConfigError(f"unconditional={path} draws {ucfg.nc}x{ucfg.image_size}x{ucfg.image_size} images, the "
                          f"generator measured {cfg.nc}x{cfg.image_size}x{cfg.image_size}")
    return G.to(ctx.device), ucfg, path


def _pick(labels: torch.Tensor, per_class: int, K: int, rng: np.random.Generator) -> torch.Tensor:
    """``per_class`` indices of each class's images, drawn with ``rng``, sorted."""
    y = labels.numpy()
    chosen = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(K)]
    return torch.from_numpy(np.sort(np.concatenate(chosen)))


def _samples(ctx: RunContext, G, cfg, n: int, g: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
    """``n`` uint8 samples of G, z drawn from ``g``, at ``labels`` (one a sample) for a conditional G."""
    z = sample_z(n, cfg, g)
    return torch.cat([to_uint8(generate(G, z[s: s + CHUNK], batch_size=ctx.batch_size, device=ctx.device,
                                        precision=ctx.precision,
                                        labels=None if labels is None else labels[s: s + CHUNK]))
                      for s in range(0, n, CHUNK)])


def _sorted_samples(ctx: RunContext, baseline: tuple, real_net, per_class: int, K: int, limit: int,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """An unconditional G's samples labelled by ``real_net``, the first ``per_class`` of each predicted class,
    drawn ``per_class x K`` at a time, at most ``limit`` times: (images, labels, details).

    A class the generator rarely draws may stay short of ``per_class``: the details say how many each has."""
    G, cfg, path = baseline
    g = torch.Generator().manual_seed(seed)
    kept_x, kept_y = [], []
    counts = torch.zeros(K, dtype=torch.int64)
    drawn = 0
    while drawn < limit * per_class * K and not (counts == per_class).all():
        x = _samples(ctx, G, cfg, per_class * K, g)
        y = predict(real_net, x, ctx.device)
        drawn += len(x)
        for c in range(K):
            members = torch.nonzero(y == c).flatten()[: per_class - int(counts[c])]
            kept_x.append(x[members])
            kept_y.append(y[members])
            counts[c] += len(members)
    details = {"unconditional_sha256": fingerprint(path), "samples_drawn": drawn, "class_counts": counts.tolist()}
    return torch.cat(kept_x), torch.cat(kept_y), details
