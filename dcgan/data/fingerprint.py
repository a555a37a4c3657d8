"""Content fingerprints of the files a data set reads: the identity of its data in caches and run ids.

A data set's path and image count say nothing of what is in its files: a root whose images or labels
were replaced by others of the same count must not be served the features (or the run id) of the old
ones. Hashing every byte would cost about as much as decoding the images; trusting names and
modification times alone misses files that were replaced with their times kept (``tar x`` of another
archive, ``cp -p``, ``rsync -t``). The fingerprint of a list of files is the sha256, in the list's
order, of each file's

- path relative to the folder the files share (so class folders, which carry the labels of an
  image-folder split, are in it; the same files under another root give the same fingerprint),
- size and modification time (ns): any ordinary edit, copy or re-download changes one of them,
- sha256 of a sample of its bytes (``sample_spans``): the whole file up to 128 KiB, which is every
  image of CIFAR-10, MNIST-sized and most ImageNet images; of a larger file its first and last 64 KiB
  (headers, image sizes, and the label arrays MATLAB and pickled batch files put after the pixels)
  and 16 blocks of 4 KiB evenly spaced in between (a change of the pixel rows anywhere is likely to
  reach one). So a first fingerprint reads at most 192 KiB of each file.

Not detected: a change to a file larger than 128 KiB that keeps its size and modification time and
falls outside every sampled block. Nothing short of hashing every byte detects that.

A fingerprint is computed once per file set: it is kept in memory for the process and on disk under
``cache_dir()/fingerprints``, keyed by the list of (absolute path, size, mtime_ns, ctime_ns) of the
files, so that fingerprinting an unchanged root again costs one ``stat`` per file and reads no file
contents. The status-change time is in the key (not in the fingerprint) because, on POSIX systems,
every write and ``os.utime`` itself sets it and nothing sets it back: a file rewritten with its old
size and modification time is fingerprinted afresh rather than served the old fingerprint.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np
from tqdm import tqdm

from dcgan.errors import DataError, one_line
from dcgan.fsutil import atomic_write_bytes, cache_dir, mark_used

EDGE = 64 * 1024  # bytes hashed at each end of a file
BLOCK = 4 * 1024  # bytes of each evenly spaced block in between
BLOCKS = 16
FINGERPRINT_VERSION = 1  # bump when what a fingerprint covers changes: cached fingerprints are then ignored

_MEMO: dict[str, str] = {}  # stat key -> fingerprint, for this process


def sample_spans(size: int) -> list[tuple[int, int]]:
    """The (offset, length) spans of a file of ``size`` bytes that its fingerprint hashes."""
    if size <= 2 * EDGE:
        return [(0, size)]
    step = (size - 2 * EDGE - BLOCK) / (BLOCKS - 1)
    return [(0, EDGE), *((EDGE + round(k * step), BLOCK) for k in range(BLOCKS)), (size - EDGE, EDGE)]


def _sample_digest(path: str, size: int) -> bytes:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for offset, length in sample_spans(size):
                f.seek(offset)
                h.update(f.read(length))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from e
    return h.digest()


def _stat(path: str) -> tuple[str, int, int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({one_line(e)})") from e
    return path, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def files_fingerprint(paths: Sequence[str | os.PathLike]) -> str:
    """The content fingerprint of ``paths`` in this order (see the module docstring), from the cache when
    no file's path, size, modification or status-change time changed since it was computed."""
    stats = [_stat(os.path.abspath(p)) for p in paths]
    key = hashlib.sha256(json.dumps([FINGERPRINT_VERSION, EDGE, BLOCK, BLOCKS, stats]).encode()).hexdigest()
    if key in _MEMO:
        return _MEMO[key]
    cached = cache_dir() / "fingerprints" / key
    if cached.is_file():
        mark_used(cached)
        _MEMO[key] = cached.read_text().strip()
        return _MEMO[key]
    base = os.path.commonpath({os.path.dirname(path) for path, *_ in stats}) if stats else ""
    h = hashlib.sha256()
    for path, size, mtime_ns, _ in tqdm(stats, desc=f"fingerprinting {base}", unit="file", disable=None, leave=False):
        h.update(f"{os.path.relpath(path, base)}\0{size}\0{mtime_ns}\0".encode())
        h.update(_sample_digest(path, size))
    _MEMO[key] = h.hexdigest()
    atomic_write_bytes(cached, _MEMO[key].encode())
    return _MEMO[key]


def arrays_fingerprint(images, labels) -> str:
    """The sha256 of in-memory images and labels (tensors or arrays): the fingerprint of a data set that
    is generated rather than read from files, where hashing the pixels costs less than any doubt."""
    h = hashlib.sha256()
    for array in (images, labels):
        if array is not None:
            array = np.ascontiguousarray(array)
            h.update(f"{array.dtype}{array.shape}".encode())
            h.update(array.data)
    return h.hexdigest()
