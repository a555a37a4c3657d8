"""Discriminator features as the paper used them, extracted once and cached on disk.

Paper, section 5.1: "we use the discriminator's convolutional features from all layers, maxpooling
each layers representation to produce a 4 x 4 spatial grid. These features are then flattened and
concatenated". ``LayerSpec`` names that choice as a string a user types, a cache key holds and a
CSV column shows: ``all/max4``, ``conv2+conv3/avg2``, ``all/max4/bn-train``.

``bn-train`` re-estimates every batch-norm layer's statistics over the training split before
extraction (a cumulative average over one pass, no gradient), as the authors' code did; the default
``running`` uses the statistics stored in the checkpoint.

A conditional discriminator whose projection or class head sits on top of label-free features
serves as well as a DCGAN's; one that takes the label at every layer (``features_take_labels``) has
no features of an image alone, and every use of its features is refused (``LayerSpec.resolve``).
An SRGAN's D (``dcgan.models.srgan_nets``) is read the same way: its eight convolutions, ``conv1`` ...
``conv8``; a map smaller than the grid (``conv8`` of a 32 px image is 2 x 2) is pooled to the grid by
repeating its cells, as ``adaptive_max_pool2d`` does, so every D of a config has one feature size.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bench.cache import cap_from_env, prune
from bench.shards import Data, Net
from dcgan.device import autocast
from dcgan.errors import ConfigError, NotApplicable
from dcgan.fsutil import atomic_path, atomic_write_bytes, cache_dir, mark_used
from dcgan.nets import FeatureTaps

FEATURES_VERSION = 1  # bump when extraction changes the numbers: old cache entries are then ignored
# Images per forward pass on a CPU, whatever the batch size asked: the fastest of 32-512 for every D
# measured (on the ImageNet-32 D, 256 ran 1.2x and 512 1.6x slower: activations out of cache); the
# features are the same at any batch size.
CPU_BATCH = 64
POOLS = ("max", "avg")
BN_MODES = ("running", "train")
_SPEC = re.compile(r"^(?P<layers>all|[a-z0-9_]+(\+[a-z0-9_]+)*)/(?P<pool>max|avg)(?P<grid>\d+)(/bn-(?P<bn>running|train))?$")


@dataclass(frozen=True)
class LayerSpec:
    layers: tuple[str, ...] = ()  # empty: every feature layer of D
    pool: str = "max"
    grid: int = 4
    bn: str = "running"

    def __post_init__(self) -> None:
        if self.pool not in POOLS or self.bn not in BN_MODES or self.grid < 1:
            raise ConfigError(f"bad layer spec {self!s}")

    @classmethod
    def parse(cls, text: str) -> "LayerSpec":
        m = _SPEC.match(text.strip())
        if not m:
            raise ConfigError(
                f"layer spec {text!r} not understood; expected LAYERS/POOLGRID[/bn-running|bn-train], "
                "e.g. all/max4 or conv1+conv3/avg2/bn-train")
        layers = () if m["layers"] == "all" else tuple(m["layers"].split("+"))
        return cls(layers, m["pool"], int(m["grid"]), m["bn"] or "running")

    def __str__(self) -> str:
        s = f"{'+'.join(self.layers) or 'all'}/{self.pool}{self.grid}"
        return s + ("/bn-train" if self.bn == "train" else "")

    def resolve(self, D: FeatureTaps) -> tuple[str, ...]:
        """The concrete layer names for ``D``; unknown names, or a D without features of an image alone,
        are a one-line error."""
        require_image_features(D)
        unknown = [n for n in self.layers if n not in D.layer_names]
        if unknown:
            raise ConfigError(f"unknown layer(s) {', '.join(unknown)} in spec '{self}'; "
                              f"this discriminator has {', '.join(D.layer_names)}")
        return self.layers or D.layer_names

    def dims(self, D: FeatureTaps) -> int:
        return sum(D.feature_channels[n] for n in self.resolve(D)) * self.grid ** 2


def require_image_features(D: FeatureTaps) -> None:
    """Refuse a discriminator whose feature maps depend on a class label as well as on the image: fed
    the true label they would hand a probe the answer, fed any other they describe another input."""
    if D.features_take_labels:
        raise NotApplicable("this discriminator takes the class label at every layer (conditioning concat), so its "
                            "features are no representation of an image alone (a projection or acgan D's are)")


def _pool(x: torch.Tensor, pool: str, grid: int) -> torch.Tensor:
    fn = F.adaptive_max_pool2d if pool == "max" else F.adaptive_avg_pool2d
    return fn(x.float(), grid).flatten(1)


def _batches(dataset, batch_size: int):
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    for x, y in loader:
        yield x, y


def _to_input(x_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return (x_u8.to(device).float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 0..255, rounded as torchvision's save_image does (so PNG samples of the
    same z give the same pixels)."""
    return (x.float() * 0.5 + 0.5).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)


@torch.no_grad()
def reestimate_batchnorm(D: FeatureTaps, dataset, device: torch.device, batch_size: int = 256,
                         precision: str = "fp32") -> None:
    """Replace D's batch-norm running statistics by their average over ``dataset`` (one pass through D's
    feature layers, which hold every batch norm of D)."""
    bns = [m for m in D.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: the exact mean over all batches
    D.train()
    for x, _ in tqdm(_batches(dataset, batch_size), total=-(-len(dataset) // batch_size),
                     desc="re-estimating batch norm", unit="batch", disable=None, leave=False):
        with autocast(device, precision):
            D.forward_intermediates(_to_input(x, device))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    D.eval()


@torch.no_grad()
def extract_features(D: FeatureTaps, dataset, spec: LayerSpec, device: torch.device,
                     batch_size: int = 256, precision: str = "fp32", out: np.ndarray | None = None) -> np.ndarray:
    """Pooled, flattened, concatenated activations of ``spec``'s layers: float32 (N, dims).

    Writes into ``out`` when given (e.g. a memory-mapped file), so the full matrix is never held twice.
    """
    if out is None:
        out = np.empty((len(dataset), spec.dims(D)), dtype=np.float32)
    row = 0
    for feats in feature_batches(D, dataset, spec, device, batch_size, precision):
        out[row: row + len(feats)] = feats
        row += len(feats)
    return out


@torch.no_grad()
def feature_batches(D: FeatureTaps, dataset, spec: LayerSpec, device: torch.device, batch_size: int = 256,
                    precision: str = "fp32"):
    """``extract_features`` a batch at a time: float32 (batch, dims) arrays, in order."""
    layers = spec.resolve(D)
    if torch.device(device).type == "cpu":
        batch_size = min(batch_size, CPU_BATCH)
    D = D.eval().to(device, memory_format=torch.channels_last)
    for x, _ in tqdm(_batches(dataset, batch_size), total=-(-len(dataset) // batch_size), desc="extracting features",
                     unit="batch", disable=None, leave=False):
        with autocast(device, precision):
            acts = D.forward_intermediates(_to_input(x, device), layers)
        yield torch.cat([_pool(acts[name], spec.pool, spec.grid) for name in layers], dim=1).cpu().numpy()


def pixel_features(data, out: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Raw pixels as features: each image of ``data`` scaled to [-1, 1] (as D sees it) and flattened."""
    row = 0
    for rows in pixel_batches(data, chunk):
        out[row: row + len(rows)] = rows
        row += len(rows)
    return out


def pixel_batches(data, chunk: int = 1024):
    """``pixel_features`` ``chunk`` images at a time."""
    for s in range(0, len(data), chunk):
        rows = [data[i][0] for i in range(s, min(s + chunk, len(data)))]
        yield (torch.stack(rows).float() / 127.5 - 1).flatten(1).numpy()


@dataclass
class FeatureJob:
    """D's features of a split (``feature_batches``; raw pixels when ``net`` is None) as a job of
    ``bench.shards``: every rank of a torchrun job rebuilds D from ``net`` and extracts its shard of
    the rows, in the batches one process would make (``unit``), so the matrix is one process's."""

    net: Net | None
    data: Data
    n: int
    spec: LayerSpec
    batch_size: int
    precision: str
    dtypes: ClassVar[dict] = {"x": np.float32}

    @property
    def unit(self) -> int:
        return self.batch_size

    @property
    def shippable(self) -> bool:
        return self.data.ref is not None

    def chunks(self, rows: range, device: torch.device, notes: dict):
        part = torch.utils.data.Subset(self.data.get(), rows)
        batches = (pixel_batches(part, self.batch_size) if self.net is None else
                   feature_batches(self.net.get(device), part, self.spec, device, self.batch_size, self.precision))
        return ({"x": x} for x in batches)


def _key_fields(fields: dict) -> dict:
    return {**fields, "features_version": FEATURES_VERSION}


def feature_key(**fields) -> str:
    """Cache key: a hash of everything that determines the feature values (never of names alone)."""
    blob = json.dumps(_key_fields(fields), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class FeatureCache:
    """Feature matrices on disk as ``<key>.npy`` (float32), written atomically; loads are memory-mapped.

    Beside each matrix, ``<key>.json`` holds the fields hashed into the key, so ``bench cache list``
    can say what an entry is. A hit refreshes the matrix's mtime (its "last use"); after each write
    the cache folder is pruned to ``$DCGAN_BENCH_CACHE_MAX`` (see ``bench.cache``), least recently used
    first, never the matrix just written. An entry that cannot be read, or holds another shape or
    dtype than asked for, is a miss: a warning names the file, and it is extracted again.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root else cache_dir() / "features"
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def get_or_extract(self, fields: dict, shape: tuple[int, int], fill) -> np.ndarray:
        """The cached matrix for the key of ``fields`` (see ``feature_key``), or ``fill(out)`` into a new
        memory-mapped file first."""
        path = self.path(feature_key(**fields))
        sidecar = path.with_suffix(".json")
        cached = self._load(path, tuple(shape))
        if cached is not None:
            self.hits += 1
            mark_used(path)
            if not sidecar.exists():  # an entry from before the descriptions
                self._describe(sidecar, fields)
            return cached
        self.misses += 1
        cap = cap_from_env()  # read now, so a bad value fails before a long extraction
        with atomic_path(path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            fill(out)
            out.flush()
            del out
        self._describe(sidecar, fields)
        features = np.load(path, mmap_mode="r")
        if cap is not None:
            prune(self.root.parent, cap, keep=(path, sidecar))
        return features

    @staticmethod
    def _describe(sidecar: Path, fields: dict) -> None:
        with contextlib.suppress(OSError):  # a description is for people: a read-only cache still serves
            atomic_write_bytes(sidecar, json.dumps(_key_fields(fields), sort_keys=True, default=str).encode())

    @staticmethod
    def _load(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
        """The matrix at ``path`` if it is there and readable as float32 ``shape``; a bad one is removed."""
        if not path.is_file():
            return None
        try:
            features = np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError) as e:  # truncated or foreign files
            problem = f"unreadable ({(str(e).strip().splitlines() or [type(e).__name__])[0]})"
        else:
            if features.dtype == np.float32 and features.shape == shape:
                return features
            problem = f"{features.dtype} {features.shape} where float32 {shape} was expected"
            del features
        warnings.warn(f"cached features {path}: {problem}; extracting them again", stacklevel=3)
        path.unlink(missing_ok=True)
        return None
