"""MNIST and Fashion-MNIST: IDX files in torchvision's layout, read and downloaded with torchvision."""
from __future__ import annotations

import functools
from pathlib import Path

from dcgan.data.datasets import Arrays
from dcgan.data.files import default_root, not_found, run_download
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError, one_line


def _idx_files(tv_name: str, name: str, root: Path | None, split: str) -> list[Path]:
    """The two IDX files (images, labels) torchvision reads for a split, ``<root>/<tv_name>/raw/*-ubyte``;
    a missing one of the four is an error, as torchvision checks all four."""
    raw = default_root(root) / tv_name / "raw"
    missing = _missing(tv_name, raw)
    if missing:
        others = len(missing) - 1
        more = f" (and the {others} other IDX file{'s' * (others > 1)})" if others else ""
        raise not_found(name, default_root(root), f"{missing[0]}{more}")
    prefix = "train" if split == "train" else "t10k"
    return [raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"]


def _missing(tv_name: str, raw: Path) -> list[Path]:
    import torchvision.datasets
    return [raw / Path(f).stem for f, _ in getattr(torchvision.datasets, tv_name).resources
            if not (raw / Path(f).stem).is_file()]


def _load_torchvision_idx(tv_name: str, name: str, root: Path | None, split: str, download: bool) -> Arrays:
    """MNIST-style IDX files in torchvision's layout, read by torchvision."""
    import torchvision.datasets
    tv_class = getattr(torchvision.datasets, tv_name)
    root = default_root(root)
    raw = root / tv_name / "raw"
    if download and _missing(tv_name, raw):
        run_download(name, root, lambda: tv_class(str(root), download=True))
    _idx_files(tv_name, name, root, split)  # what is still missing is an error
    try:
        tv_set = tv_class(str(root), train=split == "train")
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError, OSError) as e:
        # torchvision checks the IDX header with asserts: a malformed file is bad input, not a bug
        raise DataError(f"{name}: cannot read the IDX files in {raw} ({one_line(e)})") from e
    if len(tv_set.data) != len(tv_set.targets):
        raise DataError(f"{name}: {raw} has {len(tv_set.data)} {split} images but {len(tv_set.targets)} labels")
    return Arrays(tv_set.data.unsqueeze(1), tv_set.targets.long())


register_dataset("mnist", splits=("train", "test"), channels=1, num_classes=10, class_names=tuple("0123456789"),
                 description="MNIST handwritten digits, 60k/10k 28x28 grey (torchvision layout, downloadable)",
                 files=functools.partial(_idx_files, "MNIST", "mnist"))(
    functools.partial(_load_torchvision_idx, "MNIST", "mnist"))
register_dataset("fashion-mnist", splits=("train", "test"), channels=1, num_classes=10,
                 class_names=("T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                              "bag", "ankle boot"),
                 description="Fashion-MNIST clothes, 60k/10k 28x28 grey (torchvision layout, downloadable)",
                 files=functools.partial(_idx_files, "FashionMNIST", "fashion-mnist"))(
    functools.partial(_load_torchvision_idx, "FashionMNIST", "fashion-mnist"))
