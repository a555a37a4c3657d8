"""Decode once: a file-backed data set's pixels kept in one uint8 array on disk, memory-mapped after.

A ``FileImageDataset`` decodes and resizes every image again each time it is read: every epoch of
training, every feature extraction. For sets whose decoded pixels fit the budget below, the first
load decodes all of them once, in a few worker processes, into ``cache_dir()/decoded/<key>.npy``
(uint8 N×C×S×S, written atomically) and every later load maps that file (``np.load(mmap_mode=...)``)
and serves it as an in-memory set (``DecodedImageDataset``), indexed in the caller's process with no
loader workers. The pixels are those of ``FileImageDataset.__getitem__``, which the pass calls item by
item, so a decoded set and its files give equal items; its ``transform_id`` and ``fingerprint()`` are
the file set's, so caches keyed on them (FID statistics, features, run ids) are shared.

The key is the data set's ``fingerprint()`` (content of the files, transform, subset, class or
attribute selection) and ``DECODE_VERSION``, never a path or a count: a file replaced by another of
the same name, or a change of size, channels or subset, is a new key. A file under a key that does
not hold the uint8 C-order array of the shape the key promises is refused with a ``DataError`` naming
it; it is never silently overwritten (delete it, or ``bench cache clear``, to decode again). Beside
each array, ``<key>.json`` says what it holds, for ``bench cache list``.

Modes (``load_dataset(data_cache=...)``, ``bench train --data-cache``):

- ``off``: decode per item, as a ``FileImageDataset``;
- ``on``: always decode once (a ``DataError`` when the cache folder's disk cannot hold the array);
- ``auto``: decode once when the array is at most ``RAM_SHARE`` (half) of the memory available when
  the data set is loaded and writing it leaves at least ``DISK_RESERVE`` (1 GiB) free on the cache
  folder's disk; otherwise per item, as ``off``. An array already in the cache is used in both modes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from dcgan.data.datasets import FileImageDataset, ImageDataset, TensorImageDataset
from dcgan.errors import DataError, one_line
from dcgan.fsutil import atomic_path, atomic_write_bytes, cache_dir, mark_used

DECODE_VERSION = 1  # bump when decoding or resizing changes the pixels: older arrays are then not found
DATA_CACHE_MODES = ("off", "auto", "on")
RAM_SHARE = 0.5  # auto: at most this share of the memory available at load time
DISK_RESERVE = 1 << 30  # auto: bytes left free on the cache folder's disk after writing
CHUNK = 256  # images a worker decodes per task


class DecodedImageDataset(TensorImageDataset):
    """A file-backed data set served from its decoded array: the file set's metadata, labels and
    identity; ``item_name`` and ``source_side`` still answer from its files."""

    def __init__(self, images: torch.Tensor, source: FileImageDataset, path: Path):
        super().__init__(images, source.labels, stored_side=None, name=source.name, split=source.split,
                         num_classes=source.num_classes, transform_id=source.transform_id, keep=source.keep,
                         data_fingerprint=lambda: source.data_fingerprint, class_names=source.class_names,
                         attributes=source.attributes, selection=source.selection)
        self.source = source
        self.path = path  # the array's file

    def item_name(self, i: int) -> str:
        return self.source.item_name(i)

    def source_side(self, i: int) -> int:
        return self.source.source_side(i)


def cached_path(data: ImageDataset) -> Path:
    """Where the decoded array of ``data`` lives, named by its content key."""
    key = hashlib.sha256(f"decoded-v{DECODE_VERSION}\0{data.fingerprint()}".encode()).hexdigest()[:32]
    return cache_dir() / "decoded" / f"{key}.npy"


def with_data_cache(data: ImageDataset, mode: str, workers: int) -> ImageDataset:
    """``data`` served from its decoded array when ``mode`` (see the module docstring) says so, decoding
    it first with ``workers`` processes (0: in this process) if needed; in-memory sets as they are."""
    check_data_cache(mode, workers)
    if mode == "off" or not isinstance(data, FileImageDataset):
        return data
    path = cached_path(data)
    shape = (len(data), data.channels, data.image_size, data.image_size)
    try:
        with _locked(path.parent):  # another process decoding the same set: wait, then use its array
            if not path.is_file():
                nbytes = int(np.prod(shape))
                why_not = over_budget(nbytes, path.parent)
                if mode == "auto" and why_not:
                    return _per_item(data, why_not)
                free = _disk_free(path.parent)
                if nbytes > free:
                    raise DataError(f"data cache on: the decoded images of {data.name} need {_size(nbytes)}, "
                                    f"{path.parent} has {_size(free)} free (use --data-cache off, or free space)")
                _decode(data, path, shape, workers)
    except OSError as e:  # the cache folder cannot be made or written (decoding errors are DataErrors)
        if mode == "on":
            raise DataError(f"data cache on: cannot write {path.parent} ({one_line(e)})") from None
        return _per_item(data, f"cannot write {path.parent} ({one_line(e)})")
    mark_used(path, path.with_suffix(".json"))
    return DecodedImageDataset(open_decoded(path, shape), data, path)


def _per_item(data: FileImageDataset, why: str) -> FileImageDataset:
    tqdm.write(f"data cache: {why}; decoding {data.name} per item instead", file=sys.stderr)
    return data


def check_data_cache(mode: str, workers: int) -> None:
    """One-line errors for a mode or a worker count out of range, before any file is read."""
    if mode not in DATA_CACHE_MODES:
        raise DataError(f"data cache {mode!r}: expected one of {', '.join(DATA_CACHE_MODES)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise DataError(f"decode workers {workers!r}: expected an integer >= 0")


def over_budget(nbytes: int, folder: Path) -> str:
    """Why ``auto`` would not cache an array of ``nbytes`` in ``folder`` ("" when it would)."""
    ram, free = available_memory(), _disk_free(folder)
    if nbytes > RAM_SHARE * ram:
        return f"{_size(nbytes)} of decoded images is over half the {_size(ram)} of memory available"
    if nbytes + DISK_RESERVE > free:
        return f"{_size(nbytes)} of decoded images would leave under {_size(DISK_RESERVE)} free in {folder}"
    return ""


def available_memory() -> int:
    """Bytes of memory available to a new process now: Linux's MemAvailable (page cache that can be
    dropped counts), else the free pages; 0 when the system says neither."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return 0


def open_decoded(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The decoded array at ``path`` as a uint8 tensor, mapped copy-on-write (``mmap_mode="c"``): reads
    come from the page cache, shared with every process mapping it, and the file is never written, while
    torch gets the writable array it expects (a read-only mapping would crash a process on any in-place
    write, where an in-memory set's copy would just change). Anything but a C-order uint8 ``shape`` array is
    refused."""
    try:
        array = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: decoded-image cache unreadable ({one_line(e)}); delete it to decode again") from None
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.shape != shape \
            or not array.flags.c_contiguous:
        found = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise DataError(f"{path}: decoded-image cache holds {found}, expected uint8 {shape} in C order; "
                        "delete it to decode again")
    return torch.from_numpy(array)


def _decode(data: FileImageDataset, path: Path, shape: tuple[int, ...], workers: int) -> None:
    """Decode every item of ``data`` in order into a new ``.npy`` at ``path`` (atomically), then its
    description beside it. Workers return each chunk's pixels; an undecodable file stops the pass with
    the item's own ``DataError`` (a one-line message naming the file)."""
    chunks = [range(s, min(s + CHUNK, len(data))) for s in range(0, len(data), CHUNK)]
    bar = tqdm(total=len(data), desc=f"decoding {data.name} once", unit="img", disable=None, dynamic_ncols=True)
    with atomic_path(path) as tmp, _pool(data, workers) as imap, bar:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        for chunk, pixels in zip(chunks, imap(_decode_chunk, chunks)):
            out[chunk.start: chunk.stop] = pixels
            bar.update(len(chunk))
        out.flush()
        del out
    about = {"dataset": data.name, "split": data.split, "shape": list(shape), "transform_id": data.transform_id,
             "subset": None if data.keep is None else len(data.keep), "selection": data.selection,
             "fingerprint": data.fingerprint(), "decode_version": DECODE_VERSION}
    with contextlib.suppress(OSError):  # a description is for people: the array serves without it
        atomic_write_bytes(path.with_suffix(".json"), json.dumps(about, sort_keys=True).encode())


_WORKER_DATA: FileImageDataset | None = None  # the data set a decoding worker reads


def _set_worker_data(data: FileImageDataset) -> None:
    global _WORKER_DATA
    _WORKER_DATA = data
    torch.set_num_threads(1)  # decoding is PIL's; the workers share the cores


def _decode_chunk(chunk: range) -> np.ndarray:
    return torch.stack([_WORKER_DATA[i][0] for i in chunk]).numpy()


@contextlib.contextmanager
def _pool(data: FileImageDataset, workers: int) -> Iterator:
    """An ordered ``imap`` over ``workers`` processes (over this process for 0)."""
    global _WORKER_DATA
    if workers == 0:
        previous, _WORKER_DATA = _WORKER_DATA, data
        try:
            yield map
        finally:
            _WORKER_DATA = previous
        return
    with multiprocessing.get_context().Pool(workers, initializer=_set_worker_data, initargs=(data,)) as pool:
        yield pool.imap


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` itself (no lock file to list or clean up)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _disk_free(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _size(n: float) -> str:
    """Bytes as people read them: ``100 B``, ``67.5 KiB``, ``1.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            break
        n /= 1024
    else:
        unit = "TiB"
    return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
