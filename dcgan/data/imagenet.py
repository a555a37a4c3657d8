"""ImageNet: class folders decoded per item, and the downsampled batch files (Imagenet32/64) in memory."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from dcgan.data.batches import read_batch
from dcgan.data.datasets import Arrays, Files
from dcgan.data.files import class_folders, default_root, not_found
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError


def _imagenet_split_dir(root: Path | None, split: str) -> Path:
    """The split's folder of class folders; a root holding class folders directly (no train/val) is the
    train split."""
    root = default_root(root, "imagenet")
    split_dir = root / split
    if (split == "train" and root.is_dir() and not split_dir.is_dir() and not (root / "val").is_dir()
            and any(p.is_dir() for p in root.iterdir())):
        split_dir = root
    if not split_dir.is_dir():
        raise not_found("imagenet", root, f"{root / split}/<wnid>/*.JPEG", how="pass --data-root")
    return split_dir


def _imagenet_files(root: Path | None, split: str) -> list[str]:
    """The images ``_load_imagenet`` reads; their class folders' names, in the paths, are the labels."""
    return class_folders(_imagenet_split_dir(root, split))[0]


@register_dataset("imagenet", splits=("train", "val"), channels=3, num_classes=1000,
                  description="ImageNet (or any class-folder set): <root>/train/<wnid>/*, <root>/val/<wnid>/*; decoded per item",
                  files=_imagenet_files)
def _load_imagenet(root: Path | None, split: str, download: bool) -> Files:
    """Class folders per split; labels are the sorted index of the class folders present in the split,
    whose names (wnids) are the class names."""
    paths, labels, wnids = class_folders(_imagenet_split_dir(root, split))
    return Files(paths, labels, class_names=tuple(wnids))


def _downsampled_files(root: Path | None, split: str) -> list[Path]:
    """The batch files (images and labels) of a split, in their numbers' order."""
    root = default_root(root, "imagenet-downsampled")
    pattern = re.compile(r"train_data_batch_\d+(\.npz)?" if split == "train" else r"val_data(\.npz)?")
    files = sorted((p for p in root.iterdir() if pattern.fullmatch(p.name)) if root.is_dir() else [],
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    if not files:
        name = "train_data_batch_1" if split == "train" else "val_data"
        raise not_found("imagenet-downsampled", root, f"{root / name} (or .npz; Imagenet32/64 from "
                        "image-net.org/download-images)", how="pass --data-root")
    return files


@register_dataset("imagenet-downsampled", splits=("train", "val"), channels=3, num_classes=1000,
                  description="Downsampled ImageNet (Imagenet32/64, Chrabaszcz et al. 2017): train_data_batch_1..10, val_data",
                  files=_downsampled_files)
def _load_imagenet_downsampled(root: Path | None, split: str, download: bool) -> Arrays:
    """Batch files of CHW rows with labels 1..1000 (pickled, or .npz for Imagenet64)."""
    root = default_root(root, "imagenet-downsampled")
    files = _downsampled_files(root, split)
    parts = [read_batch(p) for p in files]
    if len({images.shape[1:] for images, _ in parts}) > 1:
        raise DataError(f"{root}: batch files of different image sizes ({', '.join(p.name for p in files)})")
    labels = np.concatenate([labels for _, labels in parts]) - 1
    if labels.min() < 0:
        raise DataError(f"{root}: labels must be 1..1000, found {labels.min() + 1}")
    return Arrays(torch.from_numpy(np.concatenate([images for images, _ in parts])), torch.from_numpy(labels))
