"""The table of data sets, ``load_dataset``, the one way to get any of them, and ``data_fingerprint``.

Each format module registers its loaders with ``register_dataset``; a loader only finds the data
(``(root or None, split, download) -> Arrays | Files``), and ``load_dataset`` checks the arguments,
subsets and builds the data set, so every data set takes the same options and fails the same way.

A data set read from files also registers ``files``, ``(root or None, split) -> paths``: the files its
loader reads for a split (labels files included), found without reading them, which its loader lists
the same way. ``data_fingerprint`` hashes their content (``dcgan.data.fingerprint``), so a caller can
know the identity of a split's data before loading it (a run's id is computed before the run).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from dcgan.data.datasets import Arrays, Files, ImageDataset
from dcgan.data.fingerprint import arrays_fingerprint, files_fingerprint
from dcgan.errors import DataError
from dcgan.registry import Registry

Loader = Callable[[Path | None, str, bool], "Arrays | Files"]
FileLister = Callable[[Path | None, str], "list[str | Path]"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: tuple[str, ...]
    channels: int  # native: 1 grey, 3 RGB
    num_classes: int | None  # None when unlabeled
    description: str  # one line for `bench list`
    loader: Loader = field(repr=False, compare=False)  # (root or None, split, download) -> Arrays | Files
    files: FileLister | None = field(default=None, repr=False, compare=False)  # None: generated, reads no files
    class_names: tuple[str, ...] = ()  # what label i means (captions of pictures); () when not known


DATASETS: Registry[DatasetSpec] = Registry("data set", error=DataError)


def register_dataset(name: str, *, splits: tuple[str, ...], channels: int, num_classes: int | None,
                     description: str, files: FileLister | None = None,
                     class_names: tuple[str, ...] = ()) -> Callable[[Loader], Loader]:
    """A decorator that registers ``loader`` as data set ``name``; returns the loader unchanged.

    ``files`` lists the files the loader reads for a split (every data set that reads files has one);
    ``class_names`` what each label means, one name a class, when the data set's labels are fixed."""
    if class_names and len(class_names) != num_classes:
        raise ValueError(f"data set {name!r}: {len(class_names)} class names for {num_classes} classes")

    def register(loader: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(name, splits, channels, num_classes, description, loader, files, class_names))
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
    spec = _checked_spec(name, split)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 (or None for the native {spec.channels}), got {channels!r}")
    found = spec.loader(_root(root), split, download)
    keep = subset_indices(len(found), subset, seed)
    return found.build(keep, channels, image_size, name=name, split=split, num_classes=spec.num_classes,
                       data_fingerprint=functools.partial(data_fingerprint, name, split, root=root))


def data_fingerprint(name: str, split: str = "train", *, root: str | os.PathLike | None = None) -> str:
    """The content fingerprint of one split of a data set, before any subset or transform.

    For a data set read from files, that of the files its loader reads (``files_fingerprint``: cached,
    so an unchanged root costs a ``stat`` per file); for a generated one, the hash of its images and
    labels. Missing files raise the ``DataError`` loading would.
    """
    spec = _checked_spec(name, split)
    if spec.files is None:
        return _generated_fingerprint(name, split, _root(root))
    return files_fingerprint(spec.files(_root(root), split))


@functools.lru_cache(maxsize=None)
def _generated_fingerprint(name: str, split: str, root: Path | None) -> str:
    found = get_spec(name).loader(root, split, False)
    return arrays_fingerprint(found.images, found.labels)


def _checked_spec(name: str, split: str) -> DatasetSpec:
    spec = get_spec(name)
    if split not in spec.splits:
        raise DataError(f"data set {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    return spec


def _root(root: str | os.PathLike | None) -> Path | None:
    return None if root is None else Path(root).expanduser()


def subset_indices(n: int, subset: int | None, seed: int) -> torch.Tensor | None:
    """The first ``subset`` of a seeded permutation, sorted; None when everything is kept."""
    if subset is None or subset >= n:
        return None
    if subset < 1:
        raise DataError(f"subset must be at least 1, got {subset}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:subset].sort().values
