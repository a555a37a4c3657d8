"""Read-only lmdb environments (LSUN's format), one per file and process."""
from __future__ import annotations

import os
from pathlib import Path

from dcgan.errors import DataError, one_line

_LMDB_ENVS: dict[str, tuple[int, object]] = {}  # real path -> (pid, environment open in that process)


def lmdb_env(path: str | os.PathLike):
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
        raise DataError(f"{path}: cannot open lmdb ({one_line(e)})") from e


def lmdb_keys(path: Path) -> list[bytes]:
    with lmdb_env(path).begin(write=False) as txn:
        keys = list(txn.cursor().iternext(keys=True, values=False))
    if not keys:
        raise DataError(f"{path}: the lmdb holds no images")
    return keys
