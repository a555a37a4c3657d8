"""CelebA (Liu et al. 2015) in torchvision's layout: aligned faces and their 40 binary attributes.

``<root>/celeba/`` (or a root holding these directly), as ``torchvision.datasets.CelebA`` downloads it:

- ``img_align_celeba/*.jpg``: 202,599 aligned faces of 178x218 pixels;
- ``list_eval_partition.txt``: ``000001.jpg 0`` per image, 0 train, 1 valid, 2 test;
- ``list_attr_celeba.txt``: line 1 the number of images, line 2 the 40 attribute names, then per image
  its file name and 40 values, -1 or 1, separated by one or more spaces.

Both text files are parsed as plain text (the values by numpy's ``loadtxt``): nothing in them is
evaluated. The attribute names must be ``CELEBA_ATTRIBUTES`` in order (the spec declares them, so a
file of other columns cannot be read as these). ``--download`` runs torchvision's own download (Google
Drive, through ``gdown``), a failure being one line.

Labels: none, unless ``load_dataset(..., attrs=(...))`` chooses attribute columns (StarGAN's five:
Black_Hair, Blond_Hair, Brown_Hair, Male, Young); they are then N×k, the file's -1/1 read as 0/1.

Pixels: the suite's pipeline resizes the short side (178) to the image size and centre-crops the long
side. StarGAN crops the centred 178x178 square first (source rows 20 to 198), then resizes it to 128
(``CenterCrop(178)``, ``Resize(128)``). Both keep the same centred square up to rounding: at 128 px,
torchvision resizes the 178x218 image to 128x156 (it truncates 218 * 128 / 178 = 156.8), whose centred
128 rows are source rows 19.6 to 198.4, so 178.9 source rows are squeezed into 128 instead of 178 (0.5%)
and the square's top and bottom edges are 0.4 source pixels (0.3 output pixels) off StarGAN's. At every
size from 8 to 512 px the truncation and the crop's rounding move an edge by less than one output pixel
(0.91 at most, at 80 px). The columns are the same.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch

from dcgan.data.datasets import Files
from dcgan.data.files import default_root, not_found, run_download
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError, one_line

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips",
    "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open",
    "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat",
    "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)
IMAGES, ATTRIBUTES, PARTITION = "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
SPLITS = {"train": "0", "valid": "1", "test": "2"}  # list_eval_partition.txt's codes


def _celeba_dir(root: Path | None) -> Path:
    """The folder holding CelebA's files: ``<root>/celeba`` as torchvision lays it out, or ``root``
    itself when it holds them; every file is checked there."""
    base = default_root(root)
    direct = any((base / name).exists() for name in (IMAGES, ATTRIBUTES, PARTITION))
    folder = base if direct and not (base / "celeba").is_dir() else base / "celeba"
    missing = [folder / name for name in (IMAGES, ATTRIBUTES, PARTITION) if not (folder / name).exists()]
    if missing:
        more = f" (and {', '.join(p.name for p in missing[1:])})" if missing[1:] else ""
        raise not_found("celeba", base, f"{missing[0]}{more}, torchvision's layout",
                        how="pass --download (torchvision's CelebA, from Google Drive: pip install gdown) "
                            "or --data-root")
    return folder


def _split_names(folder: Path, split: str) -> list[str]:
    """The file names of the split's images, in list_eval_partition.txt's order."""
    path = folder / PARTITION
    code, names = SPLITS[split], []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in SPLITS.values():
            raise DataError(f"{path}, line {n}: expected '<image> 0|1|2' (train, valid, test), got {line[:80]!r}")
        if fields[1] == code:
            names.append(fields[0])
    if not names:
        raise DataError(f"{path}: no image of split {split!r} (code {code})")
    return names


def _image_paths(folder: Path, names: list[str]) -> list[str]:
    prefix = os.path.join(folder, IMAGES, "")
    return [prefix + name for name in names]


def _read_attributes(path: Path) -> tuple[dict[str, int], np.ndarray]:
    """(image name -> row, the rows: N×40 int64 of 0/1) of list_attr_celeba.txt, its header checked."""
    count_line, header, body = (_read_text(path).split("\n", 2) + ["", ""])[:3]
    got = tuple(header.split())
    if got != CELEBA_ATTRIBUTES:
        diff = next((j for j, (a, b) in enumerate(zip(got, CELEBA_ATTRIBUTES)) if a != b), None)
        detail = (f"name {diff + 1} is {got[diff]!r} where {CELEBA_ATTRIBUTES[diff]!r} was expected"
                  if diff is not None else f"found {len(got)} names")
        raise DataError(f"{path}, line 2: expected CelebA's 40 attribute names in order; {detail}")
    rows = [(n, line.split(None, 1)) for n, line in enumerate(body.splitlines(), 3) if line.strip()]
    try:
        values = np.loadtxt(io.StringIO("\n".join(f[1] if len(f) == 2 else "-" for _, f in rows)), dtype=np.int8,
                            ndmin=2, comments=None)
    except ValueError:
        values = None
    if values is None or values.shape != (len(rows), 40) or not np.isin(values, (-1, 1)).all():
        _refuse_first_bad_row(path, rows)
    if not count_line.strip().isdecimal() or int(count_line) != len(rows):
        raise DataError(f"{path}, line 1: expected the number of images ({len(rows)}), got {count_line[:40]!r}")
    return {f[0]: i for i, (_, f) in enumerate(rows)}, (values.astype(np.int64) + 1) // 2


def _refuse_first_bad_row(path: Path, rows: list[tuple[int, list[str]]]) -> None:
    """The one-line error naming the first row that is not an image name and 40 values of -1 or 1."""
    for n, fields in rows:
        values = fields[1].split() if len(fields) == 2 else []
        if len(values) != 40:
            raise DataError(f"{path}, line {n}: expected an image name and 40 values, found {len(values)} values")
        bad = next((v for v in values if v not in ("-1", "1")), None)
        if bad is not None:
            raise DataError(f"{path}, line {n}: attribute values must be -1 or 1, found {bad!r}")
    raise DataError(f"{path}: cannot read the attribute values")


def _read_text(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from e


def _celeba_files(root: Path | None, split: str) -> list[str]:
    """The files ``_load_celeba`` reads for a split: its images, the partition that lists them and the
    attributes (the labels file last, as the other formats list theirs)."""
    folder = _celeba_dir(root)
    return [*_image_paths(folder, _split_names(folder, split)), str(folder / PARTITION), str(folder / ATTRIBUTES)]


def _gdown_errors() -> tuple[type[BaseException], ...]:
    """gdown's error for a file Google Drive will not serve (its daily quota), which is no RuntimeError."""
    try:
        from gdown.exceptions import FileURLRetrievalError
    except ImportError:
        return ()
    return (FileURLRetrievalError,)


@register_dataset("celeba", splits=tuple(SPLITS), channels=3, num_classes=None, attributes=CELEBA_ATTRIBUTES,
                  description="CelebA aligned faces, 163k/20k/20k 178x218, 40 attributes (attrs=); torchvision "
                              "layout, downloadable",
                  files=_celeba_files)
def _load_celeba(root: Path | None, split: str, download: bool) -> Files:
    """The split's images, with all 40 attributes as labels N×40 (``load_dataset`` keeps those asked for)."""
    base = default_root(root)
    if download:
        try:
            _celeba_dir(root)
        except DataError:
            from torchvision.datasets import CelebA
            run_download("celeba", base, lambda: CelebA(str(base), split=split, target_type="attr", download=True),
                         errors=_gdown_errors())
    folder = _celeba_dir(root)
    names = _split_names(folder, split)
    rows, values = _read_attributes(folder / ATTRIBUTES)
    missing = next((name for name in names if name not in rows), None)
    if missing is not None:
        raise DataError(f"{folder / ATTRIBUTES}: no attributes for {missing}, which {folder / PARTITION} lists")
    paths = _image_paths(folder, names)
    if not os.path.isfile(paths[0]):  # a wrong image folder fails here rather than at the first batch
        raise DataError(f"{paths[0]}: listed in {folder / PARTITION} but not found")
    return Files(paths, torch.from_numpy(values[[rows[name] for name in names]]), attributes=CELEBA_ATTRIBUTES)
