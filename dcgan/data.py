"""The data sets of the benchmarks: a registry of loaders and two flavours of image data set.

Every data set, whatever its format on disk, is served the same way: item ``i`` is a
``(uint8 tensor C×S×S, int label)`` pair (label -1 when unlabeled) at the image size and number of
channels the caller asked for. Scaling to [-1, 1] is left to the consumer, so that images stay
small (uint8) in memory and on the device.

- ``TensorImageDataset`` holds every image in memory, already resized. Small data sets (digits,
  synthetic, MNIST, Fashion-MNIST, CIFAR-10, SVHN, downsampled ImageNet) are loaded, subset and
  resized once, batched, so that training can index them on the device without a DataLoader.
- ``FileImageDataset`` decodes one file (or one lmdb record, ``LmdbImageDataset``) per item, for
  collections too big for RAM (folder, ImageNet, LSUN); it is picklable for DataLoader workers.

Loaders read the formats the data sets are distributed in. torchvision is used for MNIST-style IDX
files and for downloads; CIFAR-10 and SVHN files are read here because torchvision's classes refuse
any file whose md5 differs from the official one (a re-export, or a tiny test fixture).
"""
from __future__ import annotations

import colorsys
import difflib
import functools
import hashlib
import io
import math
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm import tqdm

from dcgan.errors import DataError
from dcgan.fsutil import atomic_path, cache_dir, mark_used

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
LSUN_CATEGORY = "bedroom"  # the LSUN scene the DCGAN paper trains on; used when a root holds several
_RESIZE_CHUNK = 4096  # images resized per call: bounds the float intermediate torchvision allocates
_ARRAY_CACHE_VERSION = 1  # bump when the decoding of cached arrays changes


# ---- the two data set flavours ------------------------------------------------------------------

class ImageDataset(torch.utils.data.Dataset):
    """Attributes shared by both flavours; ``transform_id`` names the pixel pipeline.

    ``transform_id`` changes whenever the pixels produced would change (size, channels, resize
    method, source format), so consumers can key caches of derived data (e.g. FID statistics) on
    ``(name, split, transform_id)``. The subset is not part of it.
    """

    def __init__(self, *, name: str, split: str, channels: int, image_size: int,
                 num_classes: int | None, labels: torch.Tensor | None, transform_id: str):
        self.name = name
        self.split = split
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.labels = labels
        self.transform_id = transform_id

    def _label(self, i: int) -> int:
        return -1 if self.labels is None else int(self.labels[i])

    def item_name(self, i: int) -> str:
        """What a user finds item ``i`` by (in error messages and reports): here its index."""
        return str(i)

    def fingerprint(self) -> str:
        """A sha256 that changes whenever the images served would change (files, subset, transform):
        the identity of this data in caches of numbers derived from its pixels (e.g. FID statistics)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"{self.channels}x{self.image_size}x{self.image_size}, {self.transform_id})")


class TensorImageDataset(ImageDataset):
    """All images in memory as one uint8 tensor N×C×S×S, at the final size and channels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, *, name: str, split: str,
                 num_classes: int | None, transform_id: str):
        super().__init__(name=name, split=split, channels=images.shape[1], image_size=images.shape[-1],
                         num_classes=num_classes, labels=labels, transform_id=transform_id)
        self.images = images

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], self._label(i)

    def fingerprint(self) -> str:
        """The hash of the pixels themselves: in memory, that is cheaper than any doubt about them."""
        h = hashlib.sha256(repr(tuple(self.images.shape)).encode())
        h.update(self.images.contiguous().numpy().data)
        return h.hexdigest()


def _file_identity(path: str | os.PathLike) -> bytes:
    """A file's absolute path, size and modification time: what a content fingerprint can afford to
    read when hashing the bytes would cost as much as decoding them."""
    st = os.stat(path)
    return f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode()


class FileImageDataset(ImageDataset):
    """Images decoded per item from files: converted to RGB or L, short side resized, centre-cropped.

    This is torchvision's DCGAN example pipeline (Resize + CenterCrop, antialiased), on collections
    too big to hold in memory. ``items`` are file paths (lmdb keys in ``LmdbImageDataset``).
    """

    def __init__(self, items: list, labels: torch.Tensor | None, *, name: str, split: str,
                 num_classes: int | None, image_size: int, channels: int):
        super().__init__(name=name, split=split, channels=channels, image_size=image_size,
                         num_classes=num_classes, labels=labels,
                         transform_id=f"pil-{_transform_id(image_size, channels)}")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        source, where = self._source(i)
        image = _decode_image(source, where, "L" if self.channels == 1 else "RGB")
        return TF.pil_to_tensor(_resize_crop(image, self.image_size)), self._label(i)

    def fingerprint(self) -> str:
        """The hash of every file's path, size and modification time, and the transform (decoding every
        file to hash its pixels would cost as much as using them)."""
        h = hashlib.sha256(self.transform_id.encode())
        for path in self.items:
            h.update(_file_identity(path))
        return h.hexdigest()

    def item_name(self, i: int) -> str:
        return str(self.items[i])

    def _source(self, i: int) -> tuple[str | io.BytesIO, str]:
        """What PIL opens for item ``i``, and how to name it in an error."""
        return self.items[i], self.item_name(i)


class LmdbImageDataset(FileImageDataset):
    """A FileImageDataset whose items are keys of an lmdb of encoded images (LSUN's format)."""

    def __init__(self, lmdb_path: str | os.PathLike, keys: list[bytes], **kwargs):
        super().__init__(keys, None, **kwargs)
        self.lmdb_path = str(lmdb_path)

    def fingerprint(self) -> str:
        """The hash of the lmdb's data file (path, size, modification time), the keys and the transform."""
        h = hashlib.sha256(self.transform_id.encode())
        h.update(_file_identity(Path(self.lmdb_path) / "data.mdb"))
        for key in self.items:
            h.update(key + b"\n")
        return h.hexdigest()

    def item_name(self, i: int) -> str:
        return f"{self.lmdb_path}[{self.items[i].decode(errors='replace')}]"

    def _source(self, i: int) -> tuple[io.BytesIO, str]:
        where = self.item_name(i)
        with _lmdb_env(self.lmdb_path).begin(write=False) as txn:
            value = txn.get(self.items[i])
        if value is None:
            raise DataError(f"{where}: key not found in the lmdb")
        return io.BytesIO(value), where


# ---- pixel helpers --------------------------------------------------------------------------------

def _transform_id(image_size: int, channels: int) -> str:
    return f"rs{image_size}-bilinear-aa-cc-c{channels}"


def _resize_crop(image, size: int):
    """Resize so the short side is ``size`` (bilinear, antialiased), then centre-crop a square.

    Works on a PIL image or on a batch tensor N×C×H×W; a batch already at the size is returned as is.
    """
    if isinstance(image, torch.Tensor) and image.shape[-2:] == (size, size):
        return image
    resized = TF.resize(image, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, size)


def _resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch in chunks, so a large set never needs a float copy of itself."""
    if images.shape[-2:] == (size, size):
        return images
    return torch.cat([_resize_crop(chunk, size) for chunk in images.split(_RESIZE_CHUNK)])


def _to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB by repeating; RGB -> grey with PIL's "L" integer weights, so both flavours agree."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.repeat(1, 3, 1, 1)
    r, g, b = images.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def _decode_image(source: str | io.BytesIO, where: str, mode: str) -> Image.Image:
    """Decode one image fully into ``mode``, so a broken file fails here, naming ``where``."""
    try:
        with Image.open(source) as image:
            return image.convert(mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{where}: cannot decode image ({_one_line(e)})") from e


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# ---- what loaders return --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Arrays:
    """An in-memory data set at its native size: uint8 images N×C×H×W and int64 labels."""
    images: torch.Tensor
    labels: torch.Tensor | None
    source: str = ""  # prefix for transform_id when a data set has several source formats

    def build(self, keep: torch.Tensor | None, channels: int | None, image_size: int, **meta) -> TensorImageDataset:
        images, labels = self.images, self.labels
        if keep is not None:
            images = images[keep]
            labels = None if labels is None else labels[keep]
        images = _resize_batch(_to_channels(images, channels or images.shape[1]), image_size)
        transform_id = self.source + _transform_id(image_size, images.shape[1])
        return TensorImageDataset(images.contiguous(), labels, transform_id=transform_id, **meta)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class _Files:
    """A lazy data set: image file paths (or lmdb keys when ``lmdb`` is set) and labels."""
    items: list
    labels: torch.Tensor | None
    lmdb: Path | None = None

    def build(self, keep: torch.Tensor | None, channels: int | None, image_size: int, **meta) -> FileImageDataset:
        items, labels = self.items, self.labels
        if keep is not None:
            items = [items[i] for i in keep.tolist()]
            labels = None if labels is None else labels[keep]
        kwargs = dict(image_size=image_size, channels=channels or 3, **meta)
        if self.lmdb is not None:
            return LmdbImageDataset(self.lmdb, items, **kwargs)
        return FileImageDataset(items, labels, **kwargs)

    def __len__(self) -> int:
        return len(self.items)


# ---- the registry ---------------------------------------------------------------------------------

Loader = Callable[[Path | None, str, bool], "_Arrays | _Files"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    splits: tuple[str, ...]
    channels: int  # native: 1 grey, 3 RGB
    num_classes: int | None  # None when unlabeled
    description: str  # one line for `bench list`
    loader: Loader = field(repr=False, compare=False)  # (root or None, split, download) -> _Arrays | _Files


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, *, splits: tuple[str, ...], channels: int, num_classes: int | None,
                     description: str) -> Callable[[Loader], Loader]:
    def register(loader: Loader) -> Loader:
        DATASETS[name] = DatasetSpec(name, splits, channels, num_classes, description, loader)
        return loader
    return register


def dataset_names() -> list[str]:
    return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
    if name in DATASETS:
        return DATASETS[name]
    close = difflib.get_close_matches(name, dataset_names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DataError(f"unknown data set {name!r}{hint}; known: {', '.join(dataset_names())}")


def load_dataset(name: str, split: str = "train", *, root: str | os.PathLike | None = None,
                 image_size: int = 32, channels: int | None = None, download: bool = False,
                 subset: int | None = None, seed: int = 0) -> ImageDataset:
    """Load one split of a registered data set at ``image_size`` pixels square.

    ``channels`` None keeps the native channels; ``subset`` keeps that many items drawn from
    ``seed`` (sorted, so the order on disk is kept); ``root`` None means the cache folder for data
    sets that can be downloaded. Every problem with the data raises ``DataError``.
    """
    spec = get_spec(name)
    if split not in spec.splits:
        raise DataError(f"data set {name!r} has no split {split!r}; splits: {', '.join(spec.splits)}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise DataError(f"image size must be a positive integer, got {image_size!r}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 (or None for the native {spec.channels}), got {channels!r}")
    found = spec.loader(None if root is None else Path(root).expanduser(), split, download)
    keep = _subset_indices(len(found), subset, seed)
    return found.build(keep, channels, image_size, name=name, split=split, num_classes=spec.num_classes)


def _subset_indices(n: int, subset: int | None, seed: int) -> torch.Tensor | None:
    """The first ``subset`` of a seeded permutation, sorted; None when everything is kept."""
    if subset is None or subset >= n:
        return None
    if subset < 1:
        raise DataError(f"subset must be at least 1, got {subset}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:subset].sort().values


# ---- file-system helpers shared by loaders ----------------------------------------------------------

def _default_root(root: Path | None, *parts: str) -> Path:
    """Downloadable data sets default to the cache folder, so `--download` works without a root."""
    return root if root is not None else cache_dir().joinpath("data", *parts)


def _not_found(name: str, root: Path, expected: str, how: str = "pass --download or --data-root") -> DataError:
    return DataError(f"{name} not found under {root}: expected {expected}; {how}")


def _download(name: str, root: Path, fetch: Callable[[], object]) -> None:
    """Run a torchvision download, turning its network errors into one line."""
    try:
        fetch()
    except (RuntimeError, OSError) as e:
        raise DataError(f"could not download {name} to {root} ({_one_line(e)})") from e


def _image_files(folder: Path) -> list[str]:
    """All image files under ``folder``, recursively, sorted; hidden files (macOS '._x.jpg') skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found += [os.path.join(dirpath, f) for f in filenames
                  if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)]
    return sorted(found)


def _no_images(folder: Path) -> DataError:
    return DataError(f"no images found under {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")


def _class_folders(split_dir: Path) -> tuple[list[str], torch.Tensor, list[str]]:
    """Paths and labels of an image-folder split: the label is the class folder's sorted index."""
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    paths, labels = [], []
    for k, cls in enumerate(classes):
        files = _image_files(split_dir / cls)
        paths += files
        labels += [k] * len(files)
    if not paths:
        raise _no_images(split_dir)
    return paths, torch.tensor(labels, dtype=torch.int64), classes


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images N×3×S×S and labels from a batch file: a pickled dict (or .npz) of 'data' rows of
    3·S·S bytes in CHW order and 'labels', as CIFAR-10 and downsampled ImageNet ship them.

    The official files are Python 2 pickles (bytes or str keys depending on how they were written),
    hence latin1 and the key normalisation.
    """
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                batch = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="latin1")
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64).reshape(-1)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: cannot read batch file ({_one_line(e)})") from e
    side = math.isqrt(data.shape[1] // 3) if data.ndim == 2 else 0
    if side == 0 or 3 * side * side != data.shape[1] or len(labels) != len(data):
        raise DataError(f"{path}: expected 'data' of N rows of 3*S*S bytes and N 'labels', "
                        f"got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, side, side), labels


# ---- the data sets ----------------------------------------------------------------------------------

@register_dataset("digits", splits=("train", "test"), channels=1, num_classes=10,
                  description="scikit-learn's 1,797 8x8 handwritten digits; needs no files (smoke tests)")
def _load_digits(root: Path | None, split: str, download: bool) -> _Arrays:
    """Every fifth image is test: a fixed split, as scikit-learn ships none."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    is_test = np.arange(len(images)) % 5 == 0
    keep = is_test if split == "test" else ~is_test
    return _Arrays(torch.from_numpy(images[keep][:, None]), torch.from_numpy(digits.target[keep]).long())


_SYNTHETIC_SIZES = {"train": 512, "test": 128}


def _synthetic_shape(k: int, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """The mask of class ``k``'s shape, given offsets from its centre."""
    r = np.hypot(dy, dx)
    box = np.maximum(abs(dy), abs(dx))
    return [
        r <= 6,                                         # disc
        box <= 5,                                       # square
        (abs(dy) <= 2) & (abs(dx) <= 10),               # horizontal bar
        (abs(dx) <= 2) & (abs(dy) <= 10),               # vertical bar
        (abs(dy - dx) <= 2) & (box <= 8),               # diagonal
        (r >= 4) & (r <= 7),                            # ring
        ((abs(dy) <= 1) | (abs(dx) <= 1)) & (box <= 7),  # cross
        (abs(dx) * 2 <= dy + 7) & (dy <= 6),            # triangle
        (box >= 5) & (box <= 7),                        # frame
        (np.hypot(dy, dx - 5) <= 3) | (np.hypot(dy, dx + 5) <= 3),  # two dots
    ][k]


@register_dataset("synthetic", splits=("train", "test"), channels=3, num_classes=10,
                  description="512/128 generated 32x32 RGB shapes in 10 classes; needs no files (tests)")
def _load_synthetic(root: Path | None, split: str, download: bool) -> _Arrays:
    """Ten coloured shapes, jittered in place, size and brightness, on dark noise.

    Each class has its own shape and hue, so a linear classifier on pixels separates them well
    above chance, yet a generator has real structure to learn. The seed is fixed per split: the
    data must not depend on the run's seed.
    """
    rng = np.random.default_rng([20160107, list(_SYNTHETIC_SIZES).index(split)])
    n = _SYNTHETIC_SIZES[split]
    labels = rng.permutation(np.arange(n) % 10)
    images = rng.integers(0, 48, size=(n, 32, 32, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:32, 0:32]
    for image, k in zip(images, labels):
        cy, cx = 16 + rng.integers(-3, 4, size=2)
        scale = rng.uniform(0.85, 1.15)
        mask = _synthetic_shape(k, (yy - cy) / scale, (xx - cx) / scale)
        colour = np.array(colorsys.hsv_to_rgb(k / 10, 0.8, 1.0)) * rng.uniform(170, 255)
        image[mask] = colour
    images = torch.from_numpy(images.round().astype(np.uint8)).permute(0, 3, 1, 2).contiguous()
    return _Arrays(images, torch.from_numpy(labels).long())


def _load_torchvision_idx(tv_name: str, name: str, root: Path | None, split: str, download: bool) -> _Arrays:
    """MNIST-style IDX files in torchvision's layout, ``<root>/<tv_name>/raw/*-ubyte``."""
    import torchvision.datasets
    tv_class = getattr(torchvision.datasets, tv_name)
    root = _default_root(root)
    raw = root / tv_name / "raw"
    missing = [raw / Path(f).stem for f, _ in tv_class.resources if not (raw / Path(f).stem).is_file()]
    if missing:
        if not download:
            others = len(missing) - 1
            more = f" (and the {others} other IDX file{'s' * (others > 1)})" if others else ""
            raise _not_found(name, root, f"{missing[0]}{more}")
        _download(name, root, lambda: tv_class(str(root), download=True))
    try:
        tv_set = tv_class(str(root), train=split == "train")
    except (AssertionError, RuntimeError, TypeError, ValueError, KeyError, OSError) as e:
        # torchvision checks the IDX header with asserts: a malformed file is bad input, not a bug
        raise DataError(f"{name}: cannot read the IDX files in {raw} ({_one_line(e)})") from e
    if len(tv_set.data) != len(tv_set.targets):
        raise DataError(f"{name}: {raw} has {len(tv_set.data)} {split} images but {len(tv_set.targets)} labels")
    return _Arrays(tv_set.data.unsqueeze(1), tv_set.targets.long())


register_dataset("mnist", splits=("train", "test"), channels=1, num_classes=10,
                 description="MNIST handwritten digits, 60k/10k 28x28 grey (torchvision layout, downloadable)")(
    functools.partial(_load_torchvision_idx, "MNIST", "mnist"))
register_dataset("fashion-mnist", splits=("train", "test"), channels=1, num_classes=10,
                 description="Fashion-MNIST clothes, 60k/10k 28x28 grey (torchvision layout, downloadable)")(
    functools.partial(_load_torchvision_idx, "FashionMNIST", "fashion-mnist"))


@register_dataset("cifar10", splits=("train", "test"), channels=3, num_classes=10,
                  description="CIFAR-10, 50k/10k 32x32 RGB: python batches (downloadable) or a train/<class>/*.jpg export")
def _load_cifar10(root: Path | None, split: str, download: bool) -> _Arrays:
    """The official python batches if present, else an image-folder export, else a download."""
    root = _default_root(root)
    if not (root / "cifar-10-batches-py").is_dir() and (root / split).is_dir():
        return _load_image_folder_arrays(root, split, num_classes=10)
    return _load_cifar10_batches(root, split, download)


def _load_cifar10_batches(root: Path, split: str, download: bool) -> _Arrays:
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_and_extract_archive
    batches = root / "cifar-10-batches-py"
    if not batches.is_dir() and download:
        _download("cifar10", root, lambda: download_and_extract_archive(
            CIFAR10.url, str(root), filename=CIFAR10.filename, md5=CIFAR10.tgz_md5))
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [batches / n for n in names if not (batches / n).is_file()]
    if missing:
        expected = (f"{missing[0]} (python batches)" if batches.is_dir() else
                    f"{batches}/data_batch_1 (python batches) or {root / split}/<class>/*.jpg (image-folder export)")
        raise _not_found("cifar10", root, expected)
    parts = [_read_batch(batches / n) for n in names]
    images = torch.from_numpy(np.concatenate([images for images, _ in parts]))
    return _Arrays(images, torch.from_numpy(np.concatenate([labels for _, labels in parts])))


def _load_image_folder_arrays(root: Path, split: str, num_classes: int) -> _Arrays:
    """An image-folder export of a small data set, decoded once into memory and cached.

    Decoding 60k small JPEGs takes a while, so the decoded arrays (native size) are kept in the
    cache folder under a key of the files' names, sizes and mtimes: any change re-decodes.
    """
    split_dir = root / split
    paths, labels, classes = _class_folders(split_dir)
    if len(classes) != num_classes:
        raise DataError(f"{split_dir}: expected {num_classes} class folders, found {len(classes)}")
    stats = sorted((os.path.relpath(p, split_dir), st.st_size, st.st_mtime_ns) for p, st in
                   ((p, os.stat(p)) for p in paths))
    key = repr((_ARRAY_CACHE_VERSION, str(root.resolve()), split, stats))
    cached = cache_dir() / "arrays" / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"
    if cached.is_file():
        mark_used(cached)
        with np.load(cached) as z:
            return _Arrays(torch.from_numpy(z["images"]), torch.from_numpy(z["labels"]), source="folder-")
    images = _decode_same_size(paths, split_dir)
    with atomic_path(cached) as tmp, open(tmp, "wb") as f:
        np.savez(f, images=images, labels=labels.numpy())
    return _Arrays(torch.from_numpy(images), labels, source="folder-")


def _decode_same_size(paths: list[str], where: Path) -> np.ndarray:
    """Decode RGB images that must all share the first one's size into one uint8 array N×3×H×W."""
    first = np.asarray(_decode_image(paths[0], paths[0], "RGB"))
    images = np.empty((len(paths), *first.shape), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=f"decoding {where}", unit="img", disable=None)):
        pixels = np.asarray(_decode_image(path, path, "RGB"))
        if pixels.shape != first.shape:
            raise DataError(f"{path}: image is {pixels.shape[1]}x{pixels.shape[0]}, "
                            f"expected {first.shape[1]}x{first.shape[0]} like the rest of {where}")
        images[i] = pixels
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


@register_dataset("svhn", splits=("train", "test", "extra"), channels=3, num_classes=10,
                  description="SVHN house-number digits, 73k/26k/531k 32x32 RGB (.mat files, downloadable)")
def _load_svhn(root: Path | None, split: str, download: bool) -> _Arrays:
    """``<root>/<split>_32x32.mat``: X is H×W×C×N, y is N×1 with 10 meaning the digit 0."""
    import scipy.io
    from torchvision.datasets import SVHN
    from torchvision.datasets.utils import download_url
    root = _default_root(root, "svhn")
    path = root / f"{split}_32x32.mat"
    if not path.is_file():
        if not download:
            raise _not_found("svhn", root, str(path))
        url, filename, md5 = SVHN.split_list[split]
        _download("svhn", root, lambda: download_url(url, str(root), filename, md5))
    try:
        mat = scipy.io.loadmat(path, variable_names=["X", "y"])
        x, y = mat["X"], mat["y"]
    except (OSError, ValueError, TypeError, KeyError, NotImplementedError) as e:
        raise DataError(f"{path}: cannot read SVHN .mat file ({_one_line(e)})") from e
    if x.ndim != 4 or x.shape[2] != 3 or y.size != x.shape[3]:
        raise DataError(f"{path}: expected X of shape HxWx3xN and N labels y, got {x.shape} and {y.shape}")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1)).astype(np.uint8))
    return _Arrays(images, torch.from_numpy(y.reshape(-1).astype(np.int64) % 10))


@register_dataset("lsun", splits=("train", "val"), channels=3, num_classes=None,
                  description=f"LSUN scenes ({LSUN_CATEGORY} by default): <category>_<split>_lmdb or a folder of images")
def _load_lsun(root: Path | None, split: str, download: bool) -> _Files:
    """An LSUN lmdb (keys -> encoded images) if one is found for the split, else a folder of images.

    Keys are listed here rather than with torchvision's LSUN class, which writes a key cache next
    to the data (often a read-only place).
    """
    root = _default_root(root, "lsun")
    lmdb_dir = root if (root / "data.mdb").is_file() else _pick_category_dir(root, f"_{split}_lmdb")
    if lmdb_dir is not None:
        return _Files(_lmdb_keys(lmdb_dir), None, lmdb=lmdb_dir)
    folder = _pick_category_dir(root, f"_{split}") or (root if split == "train" and root.is_dir() else None)
    paths = _image_files(folder) if folder is not None else []
    if not paths:
        raise _not_found("lsun", root, f"{root / f'{LSUN_CATEGORY}_{split}_lmdb'} (LSUN lmdb) or a folder of "
                         f"images {root / f'{LSUN_CATEGORY}_{split}'}",
                         how="LSUN has no automatic download (see github.com/fyu/lsun); pass --data-root")
    return _Files(paths, None)


def _pick_category_dir(root: Path, suffix: str) -> Path | None:
    """The folder ``<category><suffix>`` under root: LSUN_CATEGORY's if present, else the only one."""
    found = sorted(p for p in root.glob(f"*{suffix}") if p.is_dir()) if root.is_dir() else []
    preferred = root / f"{LSUN_CATEGORY}{suffix}"
    if preferred in found:
        return preferred
    if len(found) <= 1:
        return found[0] if found else None
    raise DataError(f"several LSUN categories under {root} ({', '.join(p.name for p in found)}) and no "
                    f"{preferred.name}; point --data-root at one of them")


_LMDB_ENVS: dict[str, tuple[int, object]] = {}  # real path -> (pid, environment open in that process)


def _lmdb_env(path: str | os.PathLike):
    """This process's read-only environment for the lmdb at ``path``, opened once.

    py-lmdb refuses to open one environment twice in a process, so every data set on the same lmdb
    shares one. A DataLoader worker forked after the parent opened it must not use the parent's:
    it closes its inherited copy (harmless without locks: only its own mapping goes) and opens its own.
    """
    path = os.path.realpath(path)
    pid, env = _LMDB_ENVS.get(path, (None, None))
    if pid != os.getpid():
        if env is not None:
            env.close()
        env = _open_lmdb(path)
        _LMDB_ENVS[path] = (os.getpid(), env)
    return env


def _open_lmdb(path: str):
    try:
        import lmdb
    except ImportError as e:
        raise DataError("reading an LSUN lmdb needs the 'lmdb' package (pip install lmdb)") from e
    try:
        return lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False)
    except lmdb.Error as e:
        raise DataError(f"{path}: cannot open lmdb ({_one_line(e)})") from e


def _lmdb_keys(path: Path) -> list[bytes]:
    with _lmdb_env(path).begin(write=False) as txn:
        keys = list(txn.cursor().iternext(keys=True, values=False))
    if not keys:
        raise DataError(f"{path}: the lmdb holds no images")
    return keys


@register_dataset("imagenet", splits=("train", "val"), channels=3, num_classes=1000,
                  description="ImageNet (or any class-folder set): <root>/train/<wnid>/*, <root>/val/<wnid>/*; decoded per item")
def _load_imagenet(root: Path | None, split: str, download: bool) -> _Files:
    """Class folders per split; a root holding class folders directly (no train/val) is the train split.

    Labels are the sorted index of the class folders present in the split.
    """
    root = _default_root(root, "imagenet")
    split_dir = root / split
    if (split == "train" and root.is_dir() and not split_dir.is_dir() and not (root / "val").is_dir()
            and any(p.is_dir() for p in root.iterdir())):
        split_dir = root
    if not split_dir.is_dir():
        raise _not_found("imagenet", root, f"{root / split}/<wnid>/*.JPEG", how="pass --data-root")
    paths, labels, _ = _class_folders(split_dir)
    return _Files(paths, labels)


@register_dataset("imagenet-downsampled", splits=("train", "val"), channels=3, num_classes=1000,
                  description="Downsampled ImageNet (Imagenet32/64, Chrabaszcz et al. 2017): train_data_batch_1..10, val_data")
def _load_imagenet_downsampled(root: Path | None, split: str, download: bool) -> _Arrays:
    """Batch files of CHW rows with labels 1..1000 (pickled, or .npz for Imagenet64)."""
    root = _default_root(root, "imagenet-downsampled")
    pattern = re.compile(r"train_data_batch_\d+(\.npz)?" if split == "train" else r"val_data(\.npz)?")
    files = sorted((p for p in root.iterdir() if pattern.fullmatch(p.name)) if root.is_dir() else [],
                   key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)])
    if not files:
        name = "train_data_batch_1" if split == "train" else "val_data"
        raise _not_found("imagenet-downsampled", root, f"{root / name} (or .npz; Imagenet32/64 from "
                         "image-net.org/download-images)", how="pass --data-root")
    parts = [_read_batch(p) for p in files]
    if len({images.shape[1:] for images, _ in parts}) > 1:
        raise DataError(f"{root}: batch files of different image sizes ({', '.join(p.name for p in files)})")
    labels = np.concatenate([labels for _, labels in parts]) - 1
    if labels.min() < 0:
        raise DataError(f"{root}: labels must be 1..1000, found {labels.min() + 1}")
    return _Arrays(torch.from_numpy(np.concatenate([images for images, _ in parts])), torch.from_numpy(labels))


@register_dataset("folder", splits=("train",), channels=3, num_classes=None,
                  description="any folder of images, searched recursively (--data-root); decoded per item")
def _load_folder(root: Path | None, split: str, download: bool) -> _Files:
    if root is None:
        raise DataError("data set 'folder' needs a folder of images: pass --data-root")
    if not root.is_dir():
        raise DataError(f"folder not found: {root}")
    paths = _image_files(root)
    if not paths:
        raise _no_images(root)
    return _Files(paths, None)
