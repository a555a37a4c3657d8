"""Atomic file writes and the cache folder.

Every file this project writes that a user may rely on (checkpoints, cached arrays and features,
result CSVs, images) goes through ``atomic_path``: the content is written to a temporary file in the
same folder and moved into place with ``os.replace``, so a killed process never leaves a half-written
file behind under the real name.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    The caller writes the whole file to the yielded path. If the block raises, the temporary file
    is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def mark_used(*paths: str | os.PathLike) -> None:
    """Set the files' mtime to now: a cache entry's "last use", by which ``bench cache prune`` and the
    size cap remove the least recently used first (creation time would evict what every run reads).

    Best effort: a read-only or concurrently pruned cache stays usable.
    """
    for path in paths:
        with contextlib.suppress(OSError):
            os.utime(path)


def cache_dir() -> Path:
    """The folder for derived data (decoded arrays, features, weights).

    ``DCGAN_BENCH_CACHE`` overrides the default ``~/.cache/dcgan-bench``; never inside the package.
    """
    root = os.environ.get("DCGAN_BENCH_CACHE") or Path.home() / ".cache" / "dcgan-bench"
    return Path(root)
