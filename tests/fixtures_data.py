"""Tiny data sets written in each data set's real on-disk format, for tests/test_data.py.

Every image is two-tone: its left half has one colour, its right half another (``colours``), so a
test can tell after decoding and resizing that the pixels survived, in the right place (a swapped
H/W turns left/right into top/bottom) and in the right channel order.
"""
from __future__ import annotations

import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.io
from PIL import Image

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class Fixture:
    """A data set written under ``root``: per split, the (label, left colour, right colour) of each
    item in the order the loader must return them (label -1 when unlabeled)."""
    root: Path
    channels: int
    items: dict[str, list[tuple[int, tuple[int, ...], tuple[int, ...]]]]


def colours(i: int, channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Item ``i``'s left and right colours: channels differ, left and right differ by 120."""
    left = tuple(20 + (i * 23 + c * 60) % 100 for c in range(channels))
    return left, tuple(v + 120 for v in left)


def two_tone(h: int, w: int, left: tuple[int, ...], right: tuple[int, ...]) -> np.ndarray:
    """An H×W×C uint8 image, ``left`` on columns [0, w/2), ``right`` on the rest."""
    image = np.empty((h, w, len(left)), dtype=np.uint8)
    image[:, : w // 2] = left
    image[:, w // 2:] = right
    return image


def encode(image: np.ndarray, fmt: str) -> bytes:
    pil = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    # quality 95 without chroma subsampling keeps the colour edge sharp enough for tight tolerances
    options = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    pil.save(buf, format=fmt, **options)
    return buf.getvalue()


def _items(labels: list[int], channels: int, start: int = 0):
    return [(label, *colours(start + i, channels)) for i, label in enumerate(labels)]


def _images(items, h: int, w: int) -> np.ndarray:
    """N×H×W×C two-tone images of ``items``."""
    return np.stack([two_tone(h, w, left, right) for _, left, right in items])


# ---- writers of each format -------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships it: magic 0x0000 0x08 (ubyte) ndim, big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_files(paths: list[Path], items, h: int, w: int) -> None:
    """Each item as an image file, in the format its suffix names."""
    for path, image in zip(paths, _images(items, h, w)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(image, Image.registered_extensions()[path.suffix.lower()]))


def write_pickled_batch(path: Path, items, side: int, *, bytes_keys: bool, label_offset: int = 0,
                        rows: np.ndarray | None = None) -> None:
    """A batch of rows of 3·S·S bytes in CHW order, pickled like CIFAR-10's and Imagenet32's files.

    ``rows`` (N×3×S×S uint8) replaces the two-tone images of ``items`` (whose labels are kept)."""
    if rows is None:
        rows = _images(items, side, side).transpose(0, 3, 1, 2)
    rows = np.ascontiguousarray(rows, dtype=np.uint8).reshape(len(items), -1)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    batch = {key("batch_label"): b"training batch", key("data"): rows,
             key("labels"): [label + label_offset for label, _, _ in items],
             key("filenames"): [f"{i:04d}.png".encode() for i in range(len(items))]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=2))


def python2_batch_pickle(rows: np.ndarray, labels: list[int]) -> bytes:
    """The bytes Python 2's cPickle (protocol 2) wrote for CIFAR-10's batch dicts, which Python 3 cannot
    write: keys and the array's raw bytes are Python 2 strs, the array is rebuilt by numpy 1's
    ``numpy.core.multiarray._reconstruct`` (``rows``: N×D uint8; labels < 65536)."""
    def s(b: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING: a Python 2 str
        return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<I", len(b)) + b

    def i(n: int) -> bytes:  # BININT1 / BININT2
        return b"K" + bytes([n]) if n < 256 else b"M" + struct.pack("<H", n)

    n, d = rows.shape
    dtype = (b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"  # dtype('u1', 0, 1), then its state:
             + b"(" + i(3) + s(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + i(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
             + b"(" + i(1) + i(n) + i(d) + b"\x86" + dtype + b"\x89" + s(np.ascontiguousarray(rows, np.uint8).tobytes())
             + b"tb")
    return (b"\x80\x02}(" + s(b"batch_label") + s(b"testing batch 1 of 1") + s(b"data") + array
            + s(b"labels") + b"](" + b"".join(i(label) for label in labels) + b"eu.")


def write_lmdb(path: Path, items, h: int, w: int) -> list[bytes]:
    """An LSUN-style lmdb: zero-padded keys -> JPEG bytes. Returns the keys in order."""
    import lmdb
    keys = [f"{i:06d}".encode() for i in range(len(items))]
    path.parent.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for key, image in zip(keys, _images(items, h, w)):
            txn.put(key, encode(image, "JPEG"))
    env.close()
    return keys


# ---- one maker per format: (root folder) -> Fixture -------------------------------------------------

def make_idx(tv_name: str) -> Callable[[Path], Fixture]:
    def make(root: Path) -> Fixture:
        items = {"train": _items([3, 1, 4, 1, 5, 9], 1), "test": _items([2, 7, 0], 1, start=6)}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            raw = root / tv_name / "raw"
            write_idx(raw / f"{prefix}-images-idx3-ubyte", _images(items[split], 28, 28)[..., 0])
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.array([lab for lab, _, _ in items[split]]))
        return Fixture(root, 1, items)
    return make


def make_cifar10_batches(root: Path) -> Fixture:
    batches = root / "cifar-10-batches-py"
    train = []
    for b in range(5):
        part = _items([b * 2 % 10, (b * 2 + 1) % 10], 3, start=2 * b)
        write_pickled_batch(batches / f"data_batch_{b + 1}", part, 32, bytes_keys=True)
        train += part
    test = _items([9, 0, 5], 3, start=10)
    write_pickled_batch(batches / "test_batch", test, 32, bytes_keys=True)
    (batches / "batches.meta").write_bytes(pickle.dumps({b"label_names": [c.encode() for c in CIFAR_CLASSES]}, 2))
    return Fixture(root, 3, {"train": train, "test": test})


def make_cifar10_jpg(root: Path) -> Fixture:
    """The image-folder export: one JPEG per class and split, class folders sorted = labels."""
    items = {}
    for s, split in enumerate(("train", "test")):
        items[split] = _items(list(range(10)), 3, start=10 * s)
        paths = [root / split / cls / f"{s:04d}.jpg" for cls in CIFAR_CLASSES]
        write_files(paths, items[split], 32, 32)
    return Fixture(root, 3, items)


def make_svhn(root: Path) -> Fixture:
    """MATLAB files with X of shape 32×32×3×N and y of shape N×1, labels 1..10 (10 is the digit 0)."""
    items = {"train": _items([10, 1, 2, 9], 3), "test": _items([5, 10], 3, start=4), "extra": _items([7], 3, start=6)}
    root.mkdir(parents=True, exist_ok=True)
    for split, split_items in items.items():
        x = _images(split_items, 32, 32).transpose(1, 2, 3, 0)
        y = np.array([[lab] for lab, _, _ in split_items], dtype=np.uint8)
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return Fixture(root, 3, {s: [(lab % 10, a, b) for lab, a, b in v] for s, v in items.items()})


def make_lsun_lmdb(root: Path) -> Fixture:
    """bedroom lmdbs for both splits, plus another category the loader must not pick."""
    items = {"train": _items([-1] * 5, 3), "val": _items([-1] * 2, 3, start=5)}
    for split, split_items in items.items():
        write_lmdb(root / f"bedroom_{split}_lmdb", split_items, 36, 48)
    write_lmdb(root / "kitchen_train_lmdb", _items([-1] * 3, 3, start=20), 36, 48)
    return Fixture(root, 3, items)


def make_lsun_folder(root: Path) -> Fixture:
    items = {"train": _items([-1] * 4, 3), "val": _items([-1] * 2, 3, start=4)}
    for split, split_items in items.items():
        write_files([root / f"bedroom_{split}" / f"{i:03d}.jpg" for i in range(len(split_items))],
                    split_items, 36, 48)
    return Fixture(root, 3, items)


def make_imagenet(root: Path) -> Fixture:
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG, non-square images (centre crop)."""
    wnids = ["n01440764", "n01443537", "n01484850"]
    items = {"train": _items([0, 0, 1, 2, 2], 3), "val": _items([0, 1, 2], 3, start=5)}
    for split, split_items in items.items():
        counters = {}
        paths = []
        for label, _, _ in split_items:
            counters[label] = counters.get(label, 0) + 1
            paths.append(root / split / wnids[label] / f"{wnids[label]}_{counters[label]:05d}.JPEG")
        write_files(paths, split_items, 40, 50)
    return Fixture(root, 3, items)


def make_imagenet_flat(root: Path) -> Fixture:
    """Class folders straight under root, like the shared 64 px sample: that is the train split."""
    items = _items([0, 1, 1], 3)
    paths = [root / "n01440764" / "a.png", root / "n01443537" / "b.png", root / "n01443537" / "c.png"]
    write_files(paths, items, 64, 64)
    return Fixture(root, 3, {"train": items})


def make_imagenet_downsampled(root: Path, npz: bool = False) -> Fixture:
    """Imagenet32-style batches (here 16 px): rows of CHW bytes, labels 1..1000."""
    items = {"train": _items([0, 999, 5, 7, 42], 3), "val": _items([1, 2], 3, start=5)}
    files = {"train_data_batch_1": items["train"][:2], "train_data_batch_2": items["train"][2:4],
             "train_data_batch_10": items["train"][4:], "val_data": items["val"]}
    root.mkdir(parents=True, exist_ok=True)
    for name, part in files.items():
        if npz:
            rows = _images(part, 16, 16).transpose(0, 3, 1, 2).reshape(len(part), -1)
            np.savez(root / f"{name}.npz", data=rows, labels=np.array([lab + 1 for lab, _, _ in part]))
        else:
            write_pickled_batch(root / name, part, 16, bytes_keys=False, label_offset=1)
    return Fixture(root, 3, items)


def make_folder(root: Path) -> Fixture:
    """PNGs (and one BMP) in nested folders, with a text file and a hidden macOS '._' file to skip."""
    paths = sorted([root / "a" / "b" / "x.png", root / "a" / "y.PNG", root / "c" / "z.bmp", root / "w.png"], key=str)
    items = _items([-1] * len(paths), 3)
    write_files(paths, items, 40, 48)
    (root / "notes.txt").write_text("not an image")
    (root / "a" / "._x.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    return Fixture(root, 3, {"train": items})


def make_class_folders(root: Path) -> Fixture:
    """AFHQ's layout: train/<class>/*.png and val/<class>/*.png, classes sorted = labels, non-square images."""
    classes = ["cat", "dog", "wild"]
    items = {"train": _items([0, 0, 1, 2, 2, 2], 3), "val": _items([0, 1, 2], 3, start=6)}
    for split, split_items in items.items():
        paths = [root / split / classes[label] / f"{split}_{i:03d}.png" for i, (label, _, _) in enumerate(split_items)]
        write_files(paths, split_items, 40, 50)
    return Fixture(root, 3, items)


# CelebA's 40 attribute names, in list_attr_celeba.txt's order (written out here, not taken from dcgan)
CELEBA_ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
                     "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
                     "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
                     "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
                     "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie "
                     "Young").split()
CELEBA_PARTITION = [0, 0, 1, 0, 2, 1, 0]  # image i + 1's split code: 0 train, 1 valid, 2 test


def celeba_attribute(i: int, j: int) -> int:
    """The value (-1 or 1) of attribute j of image i (0-based) in the CelebA fixture."""
    return 1 if (3 * i + 5 * j + i * j) % 7 < 3 else -1


def write_celeba_text(folder: Path, header: list[str] | None = None) -> None:
    """list_attr_celeba.txt and list_eval_partition.txt exactly as CelebA ships them: the count, the names
    (with the trailing space of the real file), then each image's values right-aligned in 2 columns."""
    n = len(CELEBA_PARTITION)
    names = " ".join(header or CELEBA_ATTRIBUTES)
    rows = [f"{i + 1:06d}.jpg " + " ".join(f"{celeba_attribute(i, j):2d}" for j in range(40)) for i in range(n)]
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{names} \n" + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {code}\n"
                                                            for i, code in enumerate(CELEBA_PARTITION)))


def make_celeba(root: Path) -> Fixture:
    """torchvision's layout, celeba/img_align_celeba/*.jpg of 178x218 and the two text files; the items
    of each split are unlabelled (attributes are read only with attrs=: ``celeba_attribute``)."""
    folder = root / "celeba"
    everything = _items([-1] * len(CELEBA_PARTITION), 3)
    paths = [folder / "img_align_celeba" / f"{i + 1:06d}.jpg" for i in range(len(everything))]
    write_files(paths, everything, 218, 178)
    write_celeba_text(folder)
    items = {split: [item for item, c in zip(everything, CELEBA_PARTITION) if c == code]
             for code, split in enumerate(("train", "valid", "test"))}
    return Fixture(root, 3, items)


# format id -> (data set name, maker); every registered data set has at least one
FORMATS: dict[str, tuple[str, Callable[[Path], Fixture]]] = {
    "mnist": ("mnist", make_idx("MNIST")),
    "fashion-mnist": ("fashion-mnist", make_idx("FashionMNIST")),
    "cifar10-batches": ("cifar10", make_cifar10_batches),
    "cifar10-jpg": ("cifar10", make_cifar10_jpg),
    "svhn": ("svhn", make_svhn),
    "lsun-lmdb": ("lsun", make_lsun_lmdb),
    "lsun-folder": ("lsun", make_lsun_folder),
    "imagenet": ("imagenet", make_imagenet),
    "imagenet-flat": ("imagenet", make_imagenet_flat),
    "imagenet-downsampled": ("imagenet-downsampled", make_imagenet_downsampled),
    "imagenet-downsampled-npz": ("imagenet-downsampled", lambda root: make_imagenet_downsampled(root, npz=True)),
    "folder": ("folder", make_folder),
    "class-folders": ("class-folders", make_class_folders),
    "celeba": ("celeba", make_celeba),
}
