"""Atomic file writes, writable output folders and the cache folder.

Every file this project writes that a user may rely on (checkpoints, cached arrays and features,
result CSVs, images) goes through ``atomic_path``: the content is written to a temporary file in the
same folder and moved into place with ``os.replace``, so a killed process never leaves a half-written
file behind under the real name.

A process killed while writing does leave its temporary file (``.NAME.HOST.PID.XXXXXXXX.tmp``), which
can be as large as a checkpoint. The next write of the same target removes it (and a training run
sweeps its whole folder when it starts, for targets that are never written again) when its writer is
gone: it was written on this host by a process id that no longer runs. That rule is exact: a dead
writer never finishes its file, while a file that is merely old may belong to a slow writer (a large
checkpoint on a slow disk) and is left alone, as are the files of other hosts sharing the folder,
whose processes cannot be checked from here. A recycled process id only delays the clean-up.
"""
from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Iterator

from dcgan.errors import ConfigError, one_line

_UMASK = os.umask(0)
os.umask(_UMASK)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    The caller writes the whole file to the yielded path. If the block raises, the temporary file
    is removed and ``path`` is left as it was. Temporary files of ``path`` left by dead writers are
    removed first (see the module's docstring).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphaned_temps(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the permissions open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_orphaned_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporary files in ``folder`` (of target ``name`` only, if given) whose writer, a
    process of this host, is gone; returns their paths."""
    target = re.escape(name) if name is not None else ".+"
    pattern = re.compile(rf"\.{target}\.{re.escape(_HOST)}\.(\d+)\.[^.]+\.tmp")
    removed = []
    if not os.path.isdir(folder):
        return removed
    with os.scandir(folder) as entries:
        for entry in entries:
            m = pattern.fullmatch(entry.name)
            if m and not _running(int(m[1])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OverflowError:  # not a process id at all
        return False
    return True


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


def writable_folder(path: str | os.PathLike, what: str) -> Path:
    """Create folder ``path`` if needed and make sure files can be written in it, before any work.

    A read-only place, a file in the way or a full disk is a ``ConfigError`` naming ``what`` (e.g.
    ``run folder``) instead of a traceback from the first write, possibly hours into a run.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path} is a file, expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        reason = e.strerror or one_line(e)
        if e.filename and Path(e.filename) != path:
            reason += f" at {e.filename}"
        raise ConfigError(f"{what} {path} is not writable ({reason})") from None
    return path


def cache_dir() -> Path:
    """The folder for derived data (decoded arrays, features, weights).

    ``DCGAN_BENCH_CACHE`` overrides the default ``~/.cache/dcgan-bench``; never inside the package.
    """
    root = os.environ.get("DCGAN_BENCH_CACHE") or Path.home() / ".cache" / "dcgan-bench"
    return Path(root)
