"""Intra-class FID: each class's samples against that class's real images (Miyato & Koyama 2018).

FID of a whole sample can be good while the classes are wrong (a class drawn as another, two
classes swapped, one class's variety spread over all): intra-FID compares like with like. Protocol
(StudioGAN's iFID; docs/tasks/intra-fid.md):

1. A class-balanced sample: ``per_class`` images of every class (default: the real split's images
   over the number of classes, i.e. as many fake images a class as the class has real ones), image
   ``i`` at a z drawn from (the run's seed, i) and at class ``i mod classes`` (``GeneratorSamples``, exactly
   the sample ``fid`` draws for a conditional G at ``samples = per_class x classes``).
2. The real images: the data set's ``--split`` (train by default, as ``fid``'s real side), at the
   generator's size, 3 channels.
3. Inception pool3 features of both through ``bench.fidelity``, the real side under the name the
   ``fid`` task gives the same images: whichever of the two runs first extracts them, the other reads
   torch-fidelity's cache. Each side is extracted once; the classes are slices of its features.
4. Rows (model ``generator``, ``features`` the Inception convention): ``fid``, the whole sample
   against the whole split; ``fid_class_<c>``, class c's samples against class c's real images;
   ``intra_fid``, their mean over classes. Every FID is torch-fidelity's own computation.

FID is biased upwards at small counts and a class has a tenth of the images (for 10 classes) of the
whole: intra-FID sits above the FID of the same sample; compare either at equal counts only.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from bench.results import Measurement
from bench.tasks.base import TASKS, ConditionalTask, RunContext, Workload
from bench.tasks.fid import InceptionParams, checked_extractor, convention
from dcgan.checkpoint import fingerprint
from dcgan.errors import DataError
from dcgan.params import param


@dataclass(frozen=True)
class IntraFidParams(InceptionParams):
    per_class: int | None = param(None, "samples of each class; none: the split's images over the number of classes "
                                        "(StudioGAN's iFID: as many fake images a class as real ones)", low=2)


@TASKS.register("intra-fid")
class IntraFid(ConditionalTask):
    summary = "FID of each class's samples against that class's real images, and of the class-balanced whole sample"
    version = 2  # 2: sample i drawn at its own seed, (seed, i), not from one stream (bench.fidelity.GeneratorSamples)
    Params = IntraFidParams
    default_dataset = "cifar10"
    default_split = "train"  # the real images: fid's default real side, so its cached features serve both
    smoke = {"per_class": 4}
    section = "classes"
    headline = ("intra_fid", "fid")

    @classmethod
    def workload(cls, p: IntraFidParams, sizes: dict[str, int]) -> Workload:
        """The sample through G and Inception, the real split through Inception (once: then cached)."""
        real = sizes.get("train", 0)
        fakes = p.per_class * sizes.get("classes", 0) if p.per_class else real
        return Workload(g_images=fakes, inception_images=fakes + real)

    def run(self, ctx: RunContext, p: IntraFidParams) -> list[Measurement]:
        from bench import fidelity  # imports torch-fidelity: only runs of this task pay for it

        G, cfg = ctx.net("generator")
        K = G.num_classes
        extractor = checked_extractor(ctx, p)
        real = fidelity.ImagesOnly(ctx.split(ctx.split_name, cfg.image_size, 3))
        real_y = real.data.labels
        counts = torch.bincount(real_y, minlength=K)
        if counts.min() < 2:
            c = int(counts.argmin())
            raise DataError(f"class {c} has {int(counts[c])} image(s) in the {ctx.split_name} split of {ctx.dataset}"
                            f"{f' (--subset {ctx.subset})' if ctx.subset else ''}: a class's FID needs at least 2")
        per_class = p.per_class or len(real) // K
        weights = extractor.weights(p.inception_weights)
        options = dict(extractor=p.extractor, weights=weights, device=ctx.device,
                       batch_size=p.inception_batch_size, precision=ctx.precision)
        t0 = time.perf_counter()
        real_x, real_stats = fidelity.fid_features(
            real, fidelity.real_cache_name(real.data, p.extractor, weights, ctx.precision), **options)
        extracted = real.reads > 0
        fake = fidelity.GeneratorSamples(G, cfg, per_class * K, ctx.seed, ctx.device, ctx.batch_size, ctx.precision)
        fake_x, _ = fidelity.fid_features(fake, None, **options)
        common = {"image_size": cfg.image_size, "weights_sha256": fingerprint(weights),
                  "real_features": "extracted" if extracted else "cached",
                  "metric_seconds": round(time.perf_counter() - t0, 2)}
        per = [fidelity.frechet_distance(fake_x[fake.labels == c], real_x[real_y == c]) for c in range(K)]
        row = dict(split=ctx.split_name, model="generator", features=convention(extractor, ctx))
        return ([Measurement("fid", fidelity.frechet_distance(fake_x, real_stats), **row,
                             details={**common, "n_fake": len(fake), "n_real": len(real)}),
                 Measurement("intra_fid", statistics.fmean(per), **row,
                             details={**common, "n_fake": per_class, "classes": K})]
                + [Measurement(f"fid_class_{c}", value, **row,
                               details={**common, "n_fake": per_class, "n_real": int(counts[c])})
                   for c, value in enumerate(per)])
