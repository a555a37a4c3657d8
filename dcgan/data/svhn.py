"""SVHN: the cropped-digit ``.mat`` files, read with scipy (torchvision's class refuses re-exports by md5)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dcgan.data.datasets import Arrays
from dcgan.data.files import default_root, not_found, run_download
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError, one_line


def _svhn_files(root: Path | None, split: str) -> list[Path]:
    """The one ``.mat`` file ``_load_svhn`` reads for a split: it holds the images and the labels."""
    path = default_root(root, "svhn") / f"{split}_32x32.mat"
    if not path.is_file():
        raise not_found("svhn", path.parent, str(path))
    return [path]


@register_dataset("svhn", splits=("train", "test", "extra"), channels=3, num_classes=10,
                  class_names=tuple("0123456789"),
                  description="SVHN house-number digits, 73k/26k/531k 32x32 RGB (.mat files, downloadable)",
                  files=_svhn_files)
def _load_svhn(root: Path | None, split: str, download: bool) -> Arrays:
    """``<root>/<split>_32x32.mat``: X is H×W×C×N, y is N×1 with 10 meaning the digit 0."""
    import scipy.io
    root = default_root(root, "svhn")
    if download and not (root / f"{split}_32x32.mat").is_file():
        from torchvision.datasets import SVHN
        from torchvision.datasets.utils import download_url
        url, filename, md5 = SVHN.split_list[split]
        run_download("svhn", root, lambda: download_url(url, str(root), filename, md5))
    path, = _svhn_files(root, split)
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
        x, y = mat["X"], mat["y"]
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError) as e:
        raise DataError(f"{path}: cannot read SVHN .mat file ({one_line(e)})") from e
    if x.ndim != 4 or x.shape[2] != 3 or y.size != x.shape[3]:
        raise DataError(f"{path}: expected X of shape HxWx3xN and N labels y, got {x.shape} and {y.shape}")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8))
    return Arrays(images, torch.from_numpy(y.reshape(-1).astype(np.int64) % 10))
