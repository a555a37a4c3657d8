"""CIFAR-10: the official python batches (downloadable), or an image-folder export decoded once.

The batches are read here (``dcgan.data.batches``) rather than by torchvision's CIFAR10 class, which
refuses any file whose md5 differs from the official one (a re-export, or a tiny test fixture) and
unpickles them without restriction; only its download URL and checksum are used.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from dcgan.data.batches import read_batch
from dcgan.data.datasets import Arrays
from dcgan.data.files import class_folders, default_root, not_found, run_download
from dcgan.data.fingerprint import files_fingerprint
from dcgan.data.pixels import decode_image
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError
from dcgan.fsutil import atomic_path, cache_dir, mark_used

_ARRAY_CACHE_VERSION = 1  # bump when the decoding of cached arrays changes


def _cifar10_files(root: Path | None, split: str) -> list:
    """The files ``_load_cifar10`` reads: the split's python batches (images and labels), or the images of
    an image-folder export (whose labels are the class folders' names, in the paths)."""
    root = default_root(root)
    if _is_image_folder(root, split):
        return class_folders(root / split)[0]
    return _batch_files(root, split)


def _is_image_folder(root: Path, split: str) -> bool:
    return not (root / "cifar-10-batches-py").is_dir() and (root / split).is_dir()


def _batch_files(root: Path, split: str) -> list[Path]:
    batches = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [batches / n for n in names if not (batches / n).is_file()]
    if missing:
        expected = (f"{missing[0]} (python batches)" if batches.is_dir() else
                    f"{batches}/data_batch_1 (python batches) or {root / split}/<class>/*.jpg (image-folder export)")
        raise not_found("cifar10", root, expected)
    return [batches / n for n in names]


@register_dataset("cifar10", splits=("train", "test"), channels=3, num_classes=10,
                  class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                               "truck"),
                  description="CIFAR-10, 50k/10k 32x32 RGB: python batches (downloadable) or a train/<class>/*.jpg export",
                  files=_cifar10_files)
def _load_cifar10(root: Path | None, split: str, download: bool) -> Arrays:
    """The official python batches if present, else an image-folder export, else a download."""
    root = default_root(root)
    if _is_image_folder(root, split):
        return _load_image_folder_arrays(root, split, num_classes=10)
    if not (root / "cifar-10-batches-py").is_dir() and download:
        from torchvision.datasets import CIFAR10
        from torchvision.datasets.utils import download_and_extract_archive
        run_download("cifar10", root, lambda: download_and_extract_archive(
            CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5))
    parts = [read_batch(path) for path in _batch_files(root, split)]
    images = torch.from_numpy(np.concatenate([images for images, _ in parts]))
    return Arrays(images, torch.from_numpy(np.concatenate([labels for _, labels in parts])))


def _load_image_folder_arrays(root: Path, split: str, num_classes: int) -> Arrays:
    """An image-folder export of a small data set, decoded once into memory and cached.

    Decoding 60k small JPEGs takes a while, so the decoded arrays (native size) are kept in the
    cache folder under a key of the files' content fingerprint (which covers the class folders'
    names, hence the labels): any change the fingerprint sees re-decodes.
    """
    split_dir = root / split
    paths, labels, classes = class_folders(split_dir)
    if len(classes) != num_classes:
        raise DataError(f"{split_dir}: expected {num_classes} class folders, found {len(classes)}")
    key = repr((_ARRAY_CACHE_VERSION, files_fingerprint(paths)))
    cached = cache_dir() / "arrays" / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"
    if cached.is_file():
        mark_used(cached)
        with np.load(cached, allow_pickle=False) as z:
            return Arrays(torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]), source="folder-")
    images = _decode_same_size(paths, split_dir)
    with atomic_path(cached) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, labels=labels.numpy())
    return Arrays(torch.from_numpy(images), labels, source="folder-")


def _decode_same_size(paths: list[str], where: Path) -> np.ndarray:
    """Decode RGB images that must all share the first one's size into one uint8 array N×3×H×W."""
    first = np.asarray(decode_image(paths[0], paths[0], "RGB"))
    images = np.empty((len(paths), *first.shape), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=f"decoding {where}", unit="img", disable=None)):
        pixels = np.asarray(decode_image(path, path, "RGB"))
        if pixels.shape != first.shape:
            raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, "
                            f"expected {first.shape[1]}x{first.shape[0]} like the rest of {where}")
        images[i] = pixels
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
