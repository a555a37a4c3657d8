"""File-system helpers shared by the loaders: default roots, image files, class folders, downloads,
and the "not found" messages that tell the user what was expected where."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch

from dcgan.errors import DataError, one_line
from dcgan.fsutil import cache_dir

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def default_root(root: Path | None, *parts: str) -> Path:
    """Downloadable data sets default to the cache folder, so `--download` works without a root."""
    return root if root is not None else cache_dir().joinpath("data", *parts)


def not_found(name: str, root: Path, expected: str, how: str = "pass --download or --data-root") -> DataError:
    return DataError(f"{name} not found under {root}: expected {expected}; {how}")


def run_download(name: str, root: Path, fetch: Callable[[], object],
                 errors: tuple[type[BaseException], ...] = ()) -> None:
    """Run a torchvision download, turning its network errors (and ``errors``) into one line."""
    try:
        fetch()
    except (RuntimeError, OSError, *errors) as e:
        raise DataError(f"could not download {name} to {root} ({one_line(e)})") from e


def image_files(folder: Path) -> list[str]:
    """All image files under ``folder``, recursively, sorted; hidden files (macOS '._x.jpg') skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [os.path.join(dirpath, f) for f in filenames
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def no_images(folder: Path) -> DataError:
    return DataError(f"no images found under {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")


def class_folder_names(split_dir: Path) -> list[str]:
    """The class folders of an image-folder split, sorted: the names of its labels 0, 1, ..."""
    return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def class_folders(split_dir: Path) -> tuple[list[str], torch.Tensor, list[str]]:
    """Paths and labels of an image-folder split: the label is the class folder's sorted index."""
    classes = class_folder_names(split_dir)
    paths, labels = [], []
    for k, cls in enumerate(classes):
        files = image_files(split_dir / cls)
        paths += files
        labels += [k] * len(files)
    if not paths:
        raise no_images(split_dir)
    return paths, torch.tensor(labels, dtype=torch.int64), classes
