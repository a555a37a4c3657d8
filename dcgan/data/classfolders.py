"""Class folders whose classes are found in the data (``class-folders``): AFHQ's layout, decoded per item.

``<root>/train/<class>/*`` and ``<root>/val/<class>/*`` (``test`` too, for sets split that way): AFHQ
(Choi et al. 2020: cat, dog, wild), StarGAN v2's CelebA-HQ (female, male), or any images sorted into
domains. Unlike ``imagenet``'s 1000, the classes are not fixed: the spec says ``num_classes=0`` (found
in the data), and a data set built has ``num_classes`` = the number of class folders and
``class_names`` = their names, sorted (label i is the i-th name).

Every split must have the train split's class folders, no more and no fewer, each with images. A
label then means the same class in every split, and a split's labels follow from its files' paths
alone, which its content fingerprint covers; an empty or a missing folder, which no path shows, would
shift the labels after it unseen. (Mapping another split's folders by name onto train's would allow a
split without some class, but its labels would then depend on train's folders, outside its fingerprint.)
"""
from __future__ import annotations

from pathlib import Path

import torch

from dcgan.data.datasets import Files
from dcgan.data.files import IMAGE_EXTENSIONS, class_folder_names, class_folders, not_found
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError

NAME = "class-folders"


def _split_class_folders(root: Path | None, split: str) -> tuple[list[str], torch.Tensor, list[str]]:
    """The split's image paths, labels and class names, checked against the train split's classes."""
    if root is None:
        raise DataError(f"data set {NAME!r} needs a folder of splits of class folders (train/<class>/*): "
                        "pass --data-root")
    split_dir = root / split
    if not split_dir.is_dir():
        raise not_found(NAME, root, f"{split_dir}/<class>/* (AFHQ's layout: train/cat/*.jpg, val/cat/*.jpg)",
                        how="pass --data-root")
    paths, labels, names = class_folders(split_dir)
    counts = torch.bincount(labels, minlength=len(names))
    if (counts == 0).any():
        empty = split_dir / names[int((counts == 0).nonzero()[0])]
        raise DataError(f"{empty}: class folder without images (looked for {', '.join(IMAGE_EXTENSIONS)}); "
                        "remove it or add its images")
    train_dir = root / "train"
    if split != "train" and train_dir.is_dir():
        train_names = class_folder_names(train_dir)
        if names != train_names:
            extra, missing = sorted(set(names) - set(train_names)), sorted(set(train_names) - set(names))
            differ = "; ".join([f"{split} has {', '.join(extra)}, which train lacks"] * bool(extra)
                               + [f"{split} lacks {', '.join(missing)}"] * bool(missing))
            raise DataError(f"{split_dir}: class folders differ from {train_dir}'s ({differ}): every split needs "
                            "the same classes, so that a label means the same class in each")
    return paths, labels, names


def _class_folder_files(root: Path | None, split: str) -> list[str]:
    """The images ``_load_class_folders`` reads; their class folders' names, in the paths, are the labels."""
    return _split_class_folders(root, split)[0]


@register_dataset(NAME, splits=("train", "val", "test"), channels=3, num_classes=0,
                  description="labelled class folders, classes found in the data (AFHQ): <root>/<split>/<class>/*",
                  files=_class_folder_files)
def _load_class_folders(root: Path | None, split: str, download: bool) -> Files:
    paths, labels, names = _split_class_folders(root, split)
    return Files(paths, labels, class_names=tuple(names))
