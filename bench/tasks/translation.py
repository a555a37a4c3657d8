"""Translation among domains: does a StarGAN G move an image into the domain asked for, keep the rest of it,
and make images that look like that domain's? Beside the input left unchanged and the real images.

Protocol (docs/tasks/translation.md):

1. The data: the run's data set restricted to the G's domains (its family's ``data_options``: those classes,
   labelled in the G's order, or those attribute columns), at the G's size and channels. The inputs are
   the ``--split`` images (test; ``--subset`` of them when given); the domain classifier and the FID's
   reference images come from the train split (``--subset`` of it too), never from the inputs.
2. The translations (``bench.translation_metrics.Pairs``): every input into every target of its row of
   ``target_grid``: each domain (class kind, its own included), or its own attributes with one flipped
   at a time (attribute kind, the StarGAN paper's CelebA protocol); and each translation into another
   domain translated back into the input's own domain or attributes (the cycle).
3. The domain classifier: ``bench.classifier``'s small CNN and fixed recipe (``cas``'s constants), trained
   on the real train images of the domains (cross-entropy; for attributes, binary cross-entropy with one
   logit each), read from the cache folder when one was trained on the same images, recipe and seed.
4. The methods: ``stargan`` (the G), ``identity`` (the input unchanged) and, for accuracy, ``real`` (the
   real test images of each domain, the classifier's own accuracy: the ceiling).
5. Rows, a value each with the per-domain values in its details and in ``per_domain.csv``:
   ``accuracy`` (translations into another domain classified as their target: for attributes the flipped
   attribute, as the paper does); ``fid`` (each domain's translations from outside it against the real
   train images of that domain, then the mean over domains; only when every domain has ``fid_min_images``
   on both sides); ``reconstruction_l1`` (|x - G(G(x, c), c_x)| over the targets c other than the own
   c_x) and ``own_domain_l1`` (|x - G(x, c_x)|), in [-1, 1] pixels as the training's ``g_rec``.
6. ``translation.png``: ``shown`` inputs of each domain, a row each: the input (captioned with its domain),
   then its translation into each domain (each attribute flipped), the own domain's framed in green.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.classifier import ClassifierParams, classifier_for, forward_flops, images_of, predict
from bench.pictures import GREEN, contact_sheet
from bench.results import Measurement
from bench.tasks.base import TASKS, RunContext, Task, Workload
from bench.tasks.fid import InceptionParams, checked_extractor, convention
from bench.translation_metrics import L1_FEATURES, Pairs, fid_rows, translate_all
from dcgan.errors import ConfigError
from dcgan.fsutil import atomic_path
from dcgan.models import family_of
from dcgan.params import param

SHOWN_SIDE = 64  # translation.png shows each image at least this many pixels wide


@dataclass(frozen=True)
class TranslationParams(InceptionParams, ClassifierParams):
    fid_min_images: int = param(500, "FID rows when every domain has at least this many translated images and real "
                                     "reference images (FID is biased high at small counts; AFHQ's test split holds "
                                     "500 a domain)", low=2)
    shown: int = param(2, "inputs of each domain in translation.png, a row each", low=1, high=8)


@TASKS.register("translation")
class Translation(Task):
    summary = ("image-to-image translation: a domain classifier's accuracy on G(x, c), FID per target domain, "
               "reconstruction and own-domain L1, beside the input unchanged and real images")
    paper = "Choi et al. 2018, the classification-error protocol"
    Params = TranslationParams
    needs = "generator"
    takes = "image"
    default_split = "test"
    smoke = {"epochs": 2, "width": 8, "shown": 1}
    section = "translation"
    headline = ("accuracy", "fid", "reconstruction_l1", "own_domain_l1")
    pictures = {"translation.png": "a row per test image: the input, then its translation into each domain (each "
                                   "attribute flipped), its own domain's framed in green; a good translator changes "
                                   "what tells the domains apart and keeps the rest, and leaves an image in its own "
                                   "domain as it was"}

    @classmethod
    def workload(cls, p: TranslationParams, sizes: dict[str, int]) -> Workload:
        """Each input into every domain and back, the classifier trained on the train split (unless cached)
        and run on every translation, Inception on the translations, inputs and references (when measured).
        The domains are not known here: the data set's classes stand in for them."""
        n, train, K = sizes.get("test", 0), sizes.get("train", 0), max(2, sizes.get("classes") or 2)
        per_image = forward_flops(sizes.get("channels", 3), sizes.get("image_size", 32), p.width)
        fid = n * (K - 1) // K >= p.fid_min_images
        return Workload(g_images=2 * n * K, flops=per_image * (3 * p.epochs * train + n * (K + 1)),
                        inception_images=n * K + train if fid else 0)

    def check(self, ctx: RunContext, p: TranslationParams) -> None:
        """The inputs must be held out, and every domain must have images in both splits (loaded now: an
        unknown domain fails here, before any work)."""
        if ctx.split_name == "train":
            raise ConfigError("--split train: the domain classifier and the FID's reference images are the train "
                              "split's; translate held-out images (--split test)")
        for split in (ctx.split_name, "train"):
            Pairs.check_domains(_data(ctx, split), ctx.net("generator")[1], f"the {split} split of {ctx.dataset}"
                                + (f" (--subset {ctx.subset})" if ctx.subset else ""))

    def reads(self, ctx: RunContext, p: TranslationParams) -> list[tuple[str, str, str | None]]:
        return [(ctx.dataset, split, ctx.data_root) for split in (ctx.split_name, "train")]

    def run(self, ctx: RunContext, p: TranslationParams) -> list[Measurement]:
        G, cfg = ctx.net("generator")
        test, train = _data(ctx, ctx.split_name), _data(ctx, "train")
        extractor = checked_extractor(ctx, p)  # a precision it does not run at fails before any work
        classifier, info = classifier_for(train, images_of(train), train.labels, len(cfg.domains), p, ctx.seed,
                                          ctx.device)
        x, pairs = images_of(test), Pairs(test.labels, cfg)
        fakes, rec, own = translate_all(G, x, pairs, ctx)
        on_fakes = pairs.decisions(predict(classifier, fakes.flatten(0, 1), ctx.device).unflatten(0, fakes.shape[:2]))
        on_real = pairs.decisions(predict(classifier, x, ctx.device))
        fid, note = fid_rows(ctx, p, x, fakes, pairs, _data(ctx, "train", channels=3), convention(extractor, ctx))
        accuracy = {"images": len(x), "classifier_train_images": len(train), "domains": list(cfg.domains), **info,
                    **({"fid": note} if note else {})}
        K = len(cfg.domains)

        def row(metric: str, model: str, summary: tuple[float, dict], features: str, **details) -> Measurement:
            value, per = summary
            return Measurement(metric, value, split=ctx.split_name, model=model, features=features,
                               details={**per, **details})

        rows = [
            row("accuracy", "stargan", pairs.summary(pairs.translated_right(on_fakes), pairs.off), p.recipe(),
                **accuracy),
            row("accuracy", "identity", pairs.summary(pairs.translated_right(on_real[:, None]), pairs.off),
                p.recipe(), **accuracy),
            row("accuracy", "real", pairs.real_accuracy(on_real), p.recipe(), **accuracy),
            row("reconstruction_l1", "stargan", pairs.summary(rec, pairs.off), L1_FEATURES),
            row("own_domain_l1", "stargan", pairs.summary(own[:, None].expand(-1, K), pairs.own_member,
                                                          float(own.mean())), L1_FEATURES),
            *(row(metric, "identity", (0.0, {}), L1_FEATURES, note="the input unchanged: 0 by definition")
              for metric in ("reconstruction_l1", "own_domain_l1")),
            *fid]
        _write_per_domain(ctx.artifact("per_domain.csv"), rows, cfg.domains)
        _picture(ctx.artifact("translation.png"), x, fakes, pairs, p.shown)
        return rows


def _data(ctx: RunContext, split: str, channels: int | None = None):
    """``split`` of the run's data set restricted to the G's domains, at its size and channels (or ``channels``:
    Inception's three, grey repeated)."""
    cfg = ctx.net("generator")[1]
    return ctx.split(split, cfg.image_size, channels or cfg.nc, **family_of(cfg).data_options(cfg))


def _write_per_domain(path: Path, rows: list[Measurement], domains: tuple[str, ...]) -> None:
    """Every row's per-domain values, one line each: domain, method, metric, value, and the count behind it."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["domain", "method", "metric", "value", "n"])
        for m in rows:
            per, counts = m.details.get("per_domain", {}), m.details.get("n_per_domain", {})
            for name in domains:
                if name in per:
                    out.writerow([name, m.model, m.metric, f"{per[name]:.6g}", counts.get(name, "")])


def _picture(path: Path, x: torch.Tensor, fakes: torch.Tensor, pairs: Pairs, shown: int) -> None:
    """translation.png (module docstring, step 6)."""
    side = x.shape[-1]
    tile = side * max(1, -(-SHOWN_SIDE // side))
    width = max(4, tile // 6)  # characters of a caption under a tile
    rows = []
    for i in pairs.shown_inputs(shown):
        row = [(x[i], (pairs.own_name(i) or "input")[:width], None)]
        row += [(fakes[i, k], pairs.target_name(i, k)[:width], None if pairs.off[i, k] else GREEN)
                for k in range(fakes.shape[1])]
        rows.append(row)
    contact_sheet(rows, path, tile=tile, empty="no inputs")
