"""The table of data sets and ``load_dataset``, the one way to get any of them.

Each format module registers its loaders with ``register_dataset``; a loader only finds the data
(``(root or None, split, download) -> Arrays | Files``), and ``load_dataset`` checks the arguments,
subsets and builds the data set, so every data set takes the same options and fails the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from dcgan.data.datasets import Arrays, Files, ImageDataset
from dcgan.errors import DataError
from dcgan.registry import Registry

Loader = Callable[[Path | None, str, bool], "Arrays | Files"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: tuple[str, ...]
    channels: int  # native: 1 grey, 3 RGB
    num_classes: int | None  # None when unlabeled
    description: str  # one line for `bench list`
    loader: Loader = field(repr=False, compare=False)  # (root or None, split, download) -> Arrays | Files


DATASETS: Registry[DatasetSpec] = Registry("data set", error=DataError)


def register_dataset(name: str, *, splits: tuple[str, ...], channels: int, num_classes: int | None,
                     description: str) -> Callable[[Loader], Loader]:
    """A decorator that registers ``loader`` as data set ``name``; returns the loader unchanged."""
    def register(loader: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(name, splits, channels, num_classes, description, loader))
        return loader
    return register


dataset_names = DATASETS.names
get_spec = DATASETS.get


def load_dataset(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                 image_size: int = 32, channels: int | None = None, download: bool = False,
                 subset: int | None = None, seed: int = 0) -> ImageDataset:
    """Load one split of a registered data set at ``image_size`` pixels square.

    ``channels`` None keeps the native channels; ``subset`` keeps that many items drawn from
    ``seed`` (sorted, so the order on disk is kept); ``root`` None means the cache folder for data
    sets that can be downloaded. Every problem with the data raises ``DataError``.
    """
    spec = get_spec(name)
    if split not in spec.splits:
        raise DataError(f"data set {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 (or None for the native {spec.channels}), got {channels!r}")
    found = spec.loader(None if root is None else Path(root).expanduser(), split, download)
    keep = subset_indices(len(found), subset, seed)
    return found.build(keep, channels, image_size, name=name, split=split, num_classes=spec.num_classes)


def subset_indices(n: int, subset: int | None, seed: int) -> torch.Tensor | None:
    """The first ``subset`` of a seeded permutation, sorted; None when everything is kept."""
    if subset is None or subset >= n:
        return None
    if subset < 1:
        raise DataError(f"subset must be at least 1, got {subset}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:subset].sort().values
