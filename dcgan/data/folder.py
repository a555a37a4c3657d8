"""Any folder of images, searched recursively and decoded per item (unlabeled)."""
from __future__ import annotations

from pathlib import Path

from dcgan.data.datasets import Files
from dcgan.data.files import image_files, no_images
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError


def _folder_files(root: Path | None, split: str) -> list[str]:
    """Every image under the folder, recursively, sorted: the files ``_load_folder`` reads."""
    if root is None:
        raise DataError("data set 'folder' needs a folder of images: pass --data-root")
    if not root.is_dir():
        raise DataError(f"folder not found: {root}")
    paths = image_files(root)
    if not paths:
        raise no_images(root)
    return paths


@register_dataset("folder", splits=("train",), channels=3, num_classes=None,
                  description="any folder of images, searched recursively (--data-root); decoded per item",
                  files=_folder_files)
def _load_folder(root: Path | None, split: str, download: bool) -> Files:
    return Files(_folder_files(root, split), None)
