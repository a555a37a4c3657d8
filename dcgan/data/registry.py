"""The table of data sets, ``load_dataset``, the one way to get any of them, and ``data_fingerprint``.

Each format module registers its loaders with ``register_dataset``; a loader only finds the data
(``(root or None, split, download) -> Arrays | Files``), and ``load_dataset`` checks the arguments,
subsets and builds the data set, so every data set takes the same options and fails the same way.

A data set's labels are classes (``num_classes``: a fixed count, or 0 for "labelled, the classes are found
in the data", e.g. the class folders of ``class-folders``, whose built data set's ``num_classes`` is the
count found), or per-image attributes (``attributes``, CelebA's), or none. ``classes=`` and ``attrs=``
choose some of them (``dcgan.data.selection``).

A data set read from files also registers ``files``, ``(root or None, split) -> paths``: the files its
loader reads for a split (labels files included), found without reading them, which its loader lists
the same way. ``data_fingerprint`` hashes their content (``dcgan.data.fingerprint``), so a caller can
know the identity of a split's data before loading it (a run's id is computed before the run).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from dcgan.data.datasets import Arrays, Files, ImageDataset
from dcgan.data.decoded import check_data_cache, with_data_cache
from dcgan.data.fingerprint import arrays_fingerprint, files_fingerprint
from dcgan.data.selection import Chosen, select_attributes, select_classes
from dcgan.errors import DataError
from dcgan.registry import Registry

Loader = Callable[[Path | None, str, bool], "Arrays | Files"]
FileLister = Callable[[Path | None, str], "list[str | Path]"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: tuple[str, ...]
    channels: int  # native: 1 grey, 3 RGB
    num_classes: int | None  # None when without class labels; 0 when labelled with classes found in the data
    description: str  # one line for `bench list`
    loader: Loader = field(repr=False, compare=False)  # (root or None, split, download) -> Arrays | Files
    files: FileLister | None = field(default=None, repr=False, compare=False)  # None: generated, reads no files
    class_names: tuple[str, ...] = ()  # what label i means (captions of pictures); () when not known
    attributes: tuple[str, ...] = ()  # the per-image attributes its files hold, in their order; () for none

    @property
    def classes_from_data(self) -> bool:
        """Labelled, with classes (how many, their names) that only the data says: see ``resolved_spec``."""
        return self.num_classes == 0


DATASETS: Registry[DatasetSpec] = Registry("data set", error=DataError)


def register_dataset(name: str, *, splits: tuple[str, ...], channels: int, num_classes: int | None,
                     description: str, files: FileLister | None = None, class_names: tuple[str, ...] = (),
                     attributes: tuple[str, ...] = ()) -> Callable[[Loader], Loader]:
    """A decorator that registers ``loader`` as data set ``name``; returns the loader unchanged.

    ``files`` lists the files the loader reads for a split (every data set that reads files has one);
    ``num_classes`` 0 says the classes are found in the data (the loader returns their ``class_names``);
    ``class_names`` what each label means, one name a class, when the data set's labels are fixed;
    ``attributes`` the names of per-image 0/1 attributes the loader returns as N×k labels (no classes then)."""
    if num_classes is not None and num_classes < 0:
        raise ValueError(f"data set {name!r}: num_classes must be None, 0 (found in the data) or a count, "
                         f"got {num_classes}")
    if class_names and len(class_names) != num_classes:
        raise ValueError(f"data set {name!r}: {len(class_names)} class names for {num_classes} classes")
    if attributes and num_classes is not None:
        raise ValueError(f"data set {name!r}: labels are classes or attributes, not both")

    def register(loader: Loader) -> Loader:
        DATASETS.add(name, DatasetSpec(name, splits, channels, num_classes, description, loader, files, class_names,
                                       attributes))
        return loader
    return register


dataset_names = DATASETS.names
get_spec = DATASETS.get


def load_dataset(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                 image_size: int = 32, channels: int | None = None, download: bool = False,
                 subset: int | None = None, seed: int = 0, classes: Sequence[str] | None = None,
                 attrs: Sequence[str] | None = None, data_cache: str = "off",
                 decode_workers: int = 2) -> ImageDataset:
    """Load one split of a registered data set at ``image_size`` pixels square.

    ``channels`` None keeps the native channels; ``subset`` keeps that many items drawn from
    ``seed`` (sorted, so the order on disk is kept); ``root`` None means the cache folder for data
    sets that can be downloaded. Every problem with the data raises ``DataError``.

    ``classes`` keeps the images of those classes (names as in ``class_names``, or decimal indices such
    as ``"3"``), relabelled 0..k-1 in the order given; ``attrs`` makes the labels those attribute columns
    (N×k of 0/1) of a data set with ``attributes``, which is unlabelled without it. Classes are selected
    first and ``subset`` drawn among their images: ``classes=("cat", "dog"), subset=1000`` is 1000 cats
    and dogs, what asking for both means (subsetting first would leave a share of 1000 that depends on
    how many classes the data set has and how balanced they are).

    ``data_cache`` (``off``, ``auto``, ``on``; ``dcgan.data.decoded``) serves a file-backed data set from
    its pixels decoded once into the cache folder (by ``decode_workers`` processes), memory-mapped, rather
    than decoding every item per read; in-memory data sets are served as they are.
    """
    spec = _checked_spec(name, split)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 (or None for the native {spec.channels}), got {channels!r}")
    _check_labels_asked(spec, classes, attrs)
    check_data_cache(data_cache, decode_workers)
    found = spec.loader(_root(root), split, download)
    class_names = spec.class_names or found.class_names
    num_classes = len(class_names) if spec.classes_from_data else spec.num_classes
    if spec.classes_from_data and not class_names:
        raise ValueError(f"data set {name!r} finds its classes in the data, but its loader returned no class names")
    chosen = Chosen(found, None, class_names, num_classes)
    if classes is not None:
        chosen = select_classes(spec, split, chosen, classes)
    if spec.attributes:
        chosen = select_attributes(spec, chosen, attrs)
    keep = subset_indices(len(chosen.found) if chosen.rows is None else len(chosen.rows), subset, seed)
    if chosen.rows is not None:
        keep = chosen.rows if keep is None else chosen.rows[keep]
    data = chosen.found.build(keep, channels, image_size, name=name, split=split, num_classes=chosen.num_classes,
                              class_names=chosen.class_names, attributes=chosen.attributes,
                              selection=chosen.selection,
                              data_fingerprint=functools.partial(data_fingerprint, name, split, root=root))
    return with_data_cache(data, data_cache, decode_workers)


def resolved_spec(name: str, root: str | os.PathLike | None = None) -> DatasetSpec:
    """``get_spec(name)``, with the classes of a data set that finds them in its data (``num_classes`` 0)
    filled in from its first split under ``root`` (its files are listed, not read): the spec that a model
    conditioned on its labels is configured and checked against. Other specs are returned as they are,
    without touching any file."""
    spec = get_spec(name)
    if not spec.classes_from_data:
        return spec
    found = spec.loader(_root(root), spec.splits[0], False)
    return dataclasses.replace(spec, num_classes=len(found.class_names), class_names=found.class_names)


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


def _check_labels_asked(spec: DatasetSpec, classes: Sequence[str] | None, attrs: Sequence[str] | None) -> None:
    """One-line errors, before any file is read, for ``classes`` or ``attrs`` the data set has no labels for."""
    if classes is not None and attrs is not None:
        raise DataError("give classes= (which classes) or attrs= (which attributes), not both")
    if classes is not None and spec.num_classes is None:
        hint = " (its labels are attributes: choose some with attrs=)" if spec.attributes else ""
        raise DataError(f"data set {spec.name!r} has no class labels{hint}: classes= needs a labelled data set")
    if attrs is not None and not spec.attributes:
        with_attributes = [n for n, s in DATASETS.items() if s.attributes]
        raise DataError(f"data set {spec.name!r} has no attributes: attrs= is for data sets with per-image "
                        f"attributes ({', '.join(with_attributes)})")


def _root(root: str | os.PathLike | None) -> Path | None:
    return None if root is None else Path(root).expanduser()


def subset_indices(n: int, subset: int | None, seed: int) -> torch.Tensor | None:
    """The first ``subset`` of a seeded permutation, sorted; None when everything is kept."""
    if subset is None or subset >= n:
        return None
    if subset < 1:
        raise DataError(f"subset must be at least 1, got {subset}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:subset].sort().values
