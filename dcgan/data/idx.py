"""MNIST and Fashion-MNIST: IDX files in torchvision's layout, read and downloaded with torchvision."""
from __future__ import annotations

import functools
from pathlib import Path

from dcgan.data.datasets import Arrays
from dcgan.data.files import default_root, not_found, run_download
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError, one_line


def _load_torchvision_idx(tv_name: str, name: str, root: Path | None, split: str, download: bool) -> Arrays:
    """MNIST-style IDX files in torchvision's layout, ``<root>/<tv_name>/raw/*-ubyte``."""
    import torchvision.datasets
    tv_class = getattr(torchvision.datasets, tv_name)
    root = default_root(root)
    raw = root / tv_name / "raw"
    missing = [raw / Path(f).stem for f, _ in tv_class.resources if not (raw / Path(f).stem).is_file()]
    if missing:
        if not download:
            others = len(missing) - 1
            more = f" (and the {others} other IDX file{'s' * (others > 1)})" if others else ""
            raise not_found(name, root, f"{missing[0]}{more}")
        run_download(name, root, lambda: tv_class(str(root), download=True))
    try:
        tv_set = tv_class(str(root), train=split == "train")
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError, OSError) as e:
        # torchvision checks the IDX header with asserts: a malformed file is bad input, not a bug
        raise DataError(f"{name}: cannot read the IDX files in {raw} ({one_line(e)})") from e
    if len(tv_set.data) != len(tv_set.targets):
        raise DataError(f"{name}: {raw} has {len(tv_set.data)} {split} images but {len(tv_set.targets)} labels")
    return Arrays(tv_set.data.unsqueeze(1), tv_set.targets.long())


register_dataset("mnist", splits=("train", "test"), channels=1, num_classes=10,
                 description="MNIST handwritten digits, 60k/10k 28x28 grey (torchvision layout, downloadable)")(
    functools.partial(_load_torchvision_idx, "MNIST", "mnist"))
register_dataset("fashion-mnist", splits=("train", "test"), channels=1, num_classes=10,
                 description="Fashion-MNIST clothes, 60k/10k 28x28 grey (torchvision layout, downloadable)")(
    functools.partial(_load_torchvision_idx, "FashionMNIST", "fashion-mnist"))
