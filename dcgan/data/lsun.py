"""LSUN scenes: a ``<category>_<split>_lmdb`` of encoded images, or a folder of images; decoded per item."""
from __future__ import annotations

from pathlib import Path

from dcgan.data.datasets import Files
from dcgan.data.files import default_root, image_files, not_found
from dcgan.data.lmdb_env import lmdb_keys
from dcgan.data.registry import register_dataset
from dcgan.errors import DataError

LSUN_CATEGORY = "bedroom"  # the LSUN scene the DCGAN paper trains on; used when a root holds several


def _lsun_source(root: Path | None, split: str) -> tuple[Path | None, list[str]]:
    """(the split's lmdb folder, []) if one is found, else (None, the images of a folder)."""
    root = default_root(root, "lsun")
    lmdb_dir = root if (root / "data.mdb").is_file() else _pick_category_dir(root, f"_{split}_lmdb")
    if lmdb_dir is not None:
        return lmdb_dir, []
    folder = _pick_category_dir(root, f"_{split}") or (root if split == "train" and root.is_dir() else None)
    paths = image_files(folder) if folder is not None else []
    if not paths:
        raise not_found("lsun", root, f"{root / f'{LSUN_CATEGORY}_{split}_lmdb'} (LSUN lmdb) or a folder of "
                        f"images {root / f'{LSUN_CATEGORY}_{split}'}",
                        how="LSUN has no automatic download (see github.com/fyu/lsun); pass --data-root")
    return None, paths


def _lsun_files(root: Path | None, split: str) -> list:
    """The files ``_load_lsun`` reads: the lmdb's data file (its keys and images), or the folder's images."""
    lmdb_dir, paths = _lsun_source(root, split)
    return [lmdb_dir / "data.mdb"] if lmdb_dir is not None else paths


@register_dataset("lsun", splits=("train", "val"), channels=3, num_classes=None,
                  description=f"LSUN scenes ({LSUN_CATEGORY} by default): <category>_<split>_lmdb or a folder of images",
                  files=_lsun_files)
def _load_lsun(root: Path | None, split: str, download: bool) -> Files:
    """An LSUN lmdb (keys -> encoded images) if one is found for the split, else a folder of images.

    Keys are listed here rather than with torchvision's LSUN class, which writes a key cache next
    to the data (often a read-only place).
    """
    lmdb_dir, paths = _lsun_source(root, split)
    if lmdb_dir is not None:
        return Files(lmdb_keys(lmdb_dir), None, lmdb=lmdb_dir)
    return Files(paths, None)


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
