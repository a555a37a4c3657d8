"""FID, KID, IS and precision/recall by torch-fidelity, on our images, with a faster CPU Inception.

The metrics are torch-fidelity's own code (the steps of its ``calculate_metrics``, which agrees with
the original TensorFlow FID and KID to about 1e-6); this module decides what it runs on:

- inputs: torch Datasets of uint8 3xSxS images, as torch-fidelity takes them. ``GeneratorSamples``
  draws N images from a generator one batch at a time as the loader walks them, image i from its own
  seed (the same image whatever the batch or the process); ``ImagesOnly`` serves a data set's images.
- the feature extractor: one of ``bench.extractors.EXTRACTORS`` (torch-fidelity extractor classes,
  ``inception-v3`` its InceptionV3 with a faster CPU path), registered with torch-fidelity under a name
  that also carries the precision.
- the extraction: torch-fidelity's loop over the images, as an ``InceptionJob`` that the ranks of a
  torchrun job share (``bench.shards``); images made in memory (``Tensors``) are extracted by the
  process that holds them.
- the cache: torch-fidelity caches by whatever name it is given, so the real side's name is a hash
  of its content (the data set's ``fingerprint()``: its files' content fingerprint, the subset and the
  transform), the extractor, the weights' hash and the precision. The generated side is never cached.
"""
from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench import shards
from bench.extractors import torch_fidelity_name
from bench.features import feature_key, to_uint8
from bench.shards import Data, Net
from dcgan.checkpoint import fingerprint
from dcgan.config import DCGANConfig
from dcgan.data import ImageDataset
from dcgan.fsutil import cache_dir, mark_used
from dcgan.generate import default_labels, generate
from dcgan.nets import indexed_z
from dcgan.weights import WeightsError

CACHE_VERSION = 1  # bump when the real side's features would change under the same cache-key fields
ROW_NAMES = {  # torch-fidelity's result keys -> our metric names, one result row each
    "frechet_inception_distance": "fid",
    "kernel_inception_distance_mean": "kid", "kernel_inception_distance_std": "kid_std",
    "inception_score_mean": "is", "inception_score_std": "is_std",
    "precision": "precision", "recall": "recall", "f_score": "f_score",
}


# ---- inputs ------------------------------------------------------------------------------------------

class GeneratorSamples(torch.utils.data.Dataset):
    """``n`` images of generator ``G`` as torch-fidelity takes them: uint8 3xSxS, grey repeated to RGB.

    Sample i is drawn at its own z, ``indexed_z`` of (``seed``, i), and a conditional G's at class i mod
    its classes (class-balanced), so sample i is the same image whatever the batch size and whichever
    process of a torchrun job draws it. Images are made one batch at a time (``dcgan.generate``) as the
    loader walks the indices in order, so 50,000 samples never sit in memory at once.
    """

    def __init__(self, G: torch.nn.Module, cfg: DCGANConfig, n: int, seed: int, device: torch.device,
                 batch_size: int = 256, precision: str = "fp32"):
        self.G, self.cfg, self.n, self.seed = G, cfg, n, seed
        self.device, self.batch_size, self.precision = device, batch_size, precision
        self.labels = default_labels(G, n)
        self._batch: tuple[int, torch.Tensor | None] = (-1, None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> torch.Tensor:
        b = i // self.batch_size
        if self._batch[0] != b:
            self._batch = (b, self._make(b))
        return self._batch[1][i - b * self.batch_size]

    def _make(self, b: int) -> torch.Tensor:
        part = range(b * self.batch_size, min((b + 1) * self.batch_size, self.n))
        labels = None if self.labels is None else self.labels[part.start: part.stop]
        x = to_uint8(generate(self.G, indexed_z(part, self.cfg, self.seed), batch_size=self.batch_size,
                              device=self.device, precision=self.precision, labels=labels))
        return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x

    def job_ref(self) -> "SamplesRef":
        return SamplesRef(Net("generator", self.G), self.cfg, self.n, self.seed, self.batch_size, self.precision)


@dataclass
class SamplesRef:
    """``GeneratorSamples`` as a job carries them: the G and how to draw; ``unit``: G's batch."""

    G: Net
    cfg: DCGANConfig
    n: int
    seed: int
    batch_size: int
    precision: str
    shippable: ClassVar[bool] = True

    @property
    def unit(self) -> int:
        return self.batch_size

    def build(self, device: torch.device) -> GeneratorSamples:
        return GeneratorSamples(self.G.get(device), self.cfg, self.n, self.seed, device, self.batch_size,
                                self.precision)


class ImagesOnly(torch.utils.data.Dataset):
    """A data set's images without their labels, as torch-fidelity takes them.

    It counts reads: torch-fidelity reads the images only when it extracts their features, so a run
    can tell a cache hit from a miss (an extraction over the ranks counts as reading them all).
    """

    def __init__(self, data: ImageDataset):
        if data.channels != 3:
            raise ValueError(f"{data!r}: torch-fidelity needs 3 channels")
        self.data, self.reads = data, 0

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        self.reads += 1
        return self.data[i][0]

    def job_ref(self) -> "ImagesRef":
        return ImagesRef(Data(self.data))


@dataclass
class ImagesRef:
    """``ImagesOnly`` as a job carries them: the data set (rank 0 alone reads one not loaded through a
    ``DataRef``)."""

    data: Data
    unit: ClassVar[int] = 1

    @property
    def shippable(self) -> bool:
        return self.data.ref is not None

    def build(self, device: torch.device) -> ImagesOnly:
        return ImagesOnly(self.data.get())


class Tensors(torch.utils.data.Dataset):
    """uint8 images N x C x H x W in memory as torch-fidelity takes them (grey repeated to RGB): made
    images that are no data set (the sr task's SR and HR images)."""

    def __init__(self, images: torch.Tensor):
        self.images = images.repeat(1, 3, 1, 1) if images.shape[1] == 1 else images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


# ---- the metrics -------------------------------------------------------------------------------------

def real_cache_name(data: ImageDataset, extractor: str, weights: Path, precision: str) -> str:
    """torch-fidelity's cache name for the real side: a hash of everything its features depend on."""
    return "real-" + feature_key(kind="torch-fidelity", version=CACHE_VERSION, dataset=data.name, split=data.split,
                                 transform=data.transform_id, n=len(data), content=data.fingerprint(),
                                 extractor=extractor, weights=fingerprint(weights),
                                 precision=precision)


def calculate(fake: torch.utils.data.Dataset, real: ImagesOnly, real_name: str, *, metrics: tuple[str, ...],
              extractor: str, weights: Path, device: torch.device, batch_size: int, precision: str,
              seed: int, **options) -> dict[str, float]:
    """torch-fidelity's ``metrics`` of ``fake`` (its input1: generated) against ``real`` (input2), by our
    row names. ``options`` are torch-fidelity's own (kid_subsets, kid_subset_size, isc_splits, ...).

    The steps of torch-fidelity's ``calculate_metrics`` (its cache files, its metric functions, the
    same arguments), with the features extracted by ``features``, over the ranks of a torchrun job.
    One extractor serves every metric, so precision/recall use the Inception pool3 features too
    (torch-fidelity's default for them alone would be VGG-16).
    """
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached, fid_statistics_to_metric
    from torch_fidelity.metric_isc import isc_featuresdict_to_metric
    from torch_fidelity.metric_kid import kid_featuresdict_to_metric
    from torch_fidelity.metric_prc import prc_featuresdict_to_metric
    from torch_fidelity.utils import resolve_feature_layer_for_metric

    settings = {**_settings(extractor, weights, device, batch_size, precision, seed), **options,
                **{m: True for m in metrics}}
    layer = {m: resolve_feature_layer_for_metric(m, **settings) for m in metrics}
    layers = tuple(dict.fromkeys(layer.values()))
    net = feature_net(extractor, precision, layers, weights, device)
    found_fake = features(fake, None, layers, extractor=extractor, weights=weights, device=device,
                          batch_size=batch_size, precision=precision)
    found_real = features(real, real_name, layers, extractor=extractor, weights=weights, device=device,
                          batch_size=batch_size, precision=precision)
    values = {}
    if "isc" in metrics:
        values.update(isc_featuresdict_to_metric(found_fake, layer["isc"], **settings))
    if "fid" in metrics:
        stats = [fid_featuresdict_to_statistics_cached(found, name, net, layer["fid"], **settings)
                 for found, name in ((found_fake, None), (found_real, real_name))]
        values.update(fid_statistics_to_metric(*stats, settings["verbose"]))
    if "kid" in metrics:
        values.update(kid_featuresdict_to_metric(found_fake, found_real, layer["kid"], **settings))
    if "prc" in metrics:
        values.update(prc_featuresdict_to_metric(found_fake, found_real, layer["prc"], **settings))
    _mark_used(real_name)
    return {ROW_NAMES[k]: float(v) for k, v in values.items() if k in ROW_NAMES}


def fid_features(images: torch.utils.data.Dataset, name: str | None, *, extractor: str, weights: Path,
                 device: torch.device, batch_size: int, precision: str) -> tuple[torch.Tensor, dict | None]:
    """The features FID is computed on (Inception's pool3) of ``images``, N x d, and, for a cached set
    (``name``: ``real_cache_name``), its FID statistics.

    Through torch-fidelity's own cache under the name the ``fid`` task gives the same images, so a
    split whose features one task extracted is read from disk by the other (``ImagesOnly.reads``
    tells). ``name`` None: extracted and never cached (the generated side).
    """
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached
    from torch_fidelity.utils import resolve_feature_layer_for_metric

    settings = _settings(extractor, weights, device, batch_size, precision, seed=0)
    layer = resolve_feature_layer_for_metric("fid", **settings)
    found = features(images, name, (layer,), extractor=extractor, weights=weights, device=device,
                     batch_size=batch_size, precision=precision)
    stats = None
    if name is not None:
        net = feature_net(extractor, precision, (layer,), weights, device)
        stats = fid_featuresdict_to_statistics_cached(found, name, net, layer, **settings)
        _mark_used(name)
    return found[layer], stats


def features(images: torch.utils.data.Dataset, name: str | None, layers: tuple[str, ...], *, extractor: str,
             weights: Path, device: torch.device, batch_size: int, precision: str) -> dict[str, torch.Tensor]:
    """The extractor's ``layers`` of ``images`` (N x d each): from torch-fidelity's cache files of ``name``
    (None: never cached), else extracted as an ``InceptionJob``, over the ranks of a torchrun job (a
    cache hit costs them nothing); images that only this process holds (``Tensors``) are extracted here."""
    from torch_fidelity.utils import cache_lookup_group_recompute_all_on_any_miss, get_featuresdict_from_dataset

    net = feature_net(extractor, precision, layers, weights, device)

    def extract() -> dict[str, torch.Tensor]:
        if not hasattr(images, "job_ref"):
            return get_featuresdict_from_dataset(images, net, batch_size, device.type == "cuda", True, False)
        job = InceptionJob(images.job_ref(), len(images), extractor, precision, str(weights), fingerprint(weights),
                           layers, batch_size)
        got = shards.run(job, device).arrays
        if isinstance(images, ImagesOnly):
            images.reads += len(images)
        return {k: torch.from_numpy(got[k]) for k in layers}

    if name is None:
        return extract()
    return cache_lookup_group_recompute_all_on_any_miss(
        f"{name}-{net.get_name()}-features-", list(layers), extract,
        **_settings(extractor, weights, device, batch_size, precision, seed=0))


@functools.lru_cache(maxsize=2)
def _feature_net(extractor: str, precision: str, layers: tuple[str, ...], weights: str, sha256: str, cuda: bool):
    from torch_fidelity.utils import create_feature_extractor

    return create_feature_extractor(torch_fidelity_name(extractor, precision), list(layers), cuda=cuda,
                                    feature_extractor_weights_path=weights, verbose=False)


def feature_net(extractor: str, precision: str, layers: tuple[str, ...], weights: Path, device: torch.device):
    """torch-fidelity's extractor ``extractor`` at ``precision`` serving ``layers``, built once per weights
    content (the last two kept: a run asks for the same one for each of its inputs)."""
    return _feature_net(extractor, precision, tuple(layers), str(weights), fingerprint(weights),
                        device.type == "cuda")


@dataclass
class InceptionJob:
    """The extractor's ``layers`` of a set of images (a data set's, or a G's samples) as a job of
    ``bench.shards``: every rank builds the extractor from the same weights file (checked against rank
    0's hash), rebuilds the images, and passes its shard through torch-fidelity's own loop in the
    batches one process would make (``unit``: a multiple of the Inception batch and of G's)."""

    images: ImagesRef | SamplesRef
    n: int
    extractor: str
    precision: str
    weights: str
    weights_sha256: str
    layers: tuple[str, ...]
    batch_size: int

    @property
    def dtypes(self) -> dict:
        return {layer: np.float32 for layer in self.layers}

    @property
    def unit(self) -> int:
        return math.lcm(self.batch_size, self.images.unit)

    @property
    def shippable(self) -> bool:
        return self.images.shippable

    def chunks(self, rows: range, device: torch.device, notes: dict):
        from torch_fidelity.utils import get_featuresdict_from_dataset

        if fingerprint(self.weights) != self.weights_sha256:
            raise WeightsError(f"the feature extractor's weights {self.weights} are not rank 0's (their sha256 "
                               "differs): every node needs the same file at the same path")
        net = feature_net(self.extractor, self.precision, self.layers, Path(self.weights), device)
        images = self.images.build(device)
        for start in range(rows.start, rows.stop, self.unit):
            part = torch.utils.data.Subset(images, range(start, min(start + self.unit, rows.stop)))
            found = get_featuresdict_from_dataset(part, net, self.batch_size, device.type == "cuda", True, False)
            yield {k: found[k].numpy() for k in self.layers}


def frechet_distance(fake: torch.Tensor | dict, real: torch.Tensor | dict) -> float:
    """FID between two sets of features (N x d tensors) or their statistics, by torch-fidelity's own
    code: the numbers ``calculate`` gives for the same features."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats = [x if isinstance(x, dict) else fid_features_to_statistics(x) for x in (fake, real)]
    return float(fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"])


def _settings(extractor: str, weights: Path, device: torch.device, batch_size: int, precision: str,
              seed: int) -> dict:
    """torch-fidelity's keyword arguments for our extractor, cache and device.

    ``save_cpu_ram``: no loader worker processes (our images are in memory or made by G in this
    process) and precision/recall computed in parts, which gives the same numbers.
    """
    return dict(cache=True, cache_root=str(cache_dir() / "fidelity"),
                feature_extractor=torch_fidelity_name(extractor, precision),
                feature_extractor_weights_path=str(weights), cuda=device.type == "cuda", batch_size=batch_size,
                rng_seed=seed, save_cpu_ram=True, verbose=sys.stderr.isatty())


def _mark_used(name: str) -> None:
    """torch-fidelity read (or wrote) the cache files of ``name``: their last use, for ``bench cache``."""
    mark_used(*(cache_dir() / "fidelity").glob(f"{name}-*"))
