"""Batch files of CIFAR-10 and downsampled ImageNet: pickled dicts (or .npz) of image rows and labels.

A pickle can name any importable callable and have it called while loading, so a crafted batch file
in a data root would run code with plain ``pickle.load``. These files hold nothing but a dict of
numpy arrays, lists, strings and bytes, so they are read with an unpickler that admits only the
globals those need and refuses every other one before importing it. ``.npz`` files are read without
pickled objects for the same reason.
"""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from dcgan.errors import DataError, one_line

# (module, name) of every global a batch pickle holds, as numpy 1 and numpy 2 write them (numpy 2
# moved numpy.core to numpy._core) and for every protocol: arrays are rebuilt by _reconstruct (or
# _frombuffer from protocol 5), numpy scalars by scalar, Python 3 bytes at protocol < 3 by
# _codecs.encode (empty bytes by bytes; Python 2 pickles name it __builtin__).
BATCH_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *((f"{core}.multiarray", name) for core in ("numpy.core", "numpy._core") for name in ("_reconstruct", "scalar")),
    *((f"{core}.numeric", "_frombuffer") for core in ("numpy.core", "numpy._core")),
    ("_codecs", "encode"), ("builtins", "bytes"), ("__builtin__", "bytes"),
})


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``BATCH_GLOBALS``; any other global is a DataError naming the file."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")  # the official files are Python 2 pickles
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in BATCH_GLOBALS:
            raise DataError(f"{self.path}: refusing to unpickle {module}.{name}; a batch file holds only "
                            "numpy arrays, lists, strings and bytes")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images N×3×S×S and labels from a batch file: a pickled dict (or .npz) of 'data' rows of
    3·S·S bytes in CHW order and 'labels', as CIFAR-10 and downsampled ImageNet ship them.

    The official files are Python 2 pickles (bytes or str keys depending on how they were written),
    hence latin1 and the key normalisation.
    """
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                batch = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as f:
                batch = BatchUnpickler(f, path).load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64).reshape(-1)
    except (OSError, EOFError, ImportError, pickle.UnpicklingError, AttributeError, KeyError, TypeError,
            ValueError) as e:
        raise DataError(f"{path}: cannot read batch file ({one_line(e)})") from e
    side = math.isqrt(data.shape[1] // 3) if data.ndim == 2 else 0
    if side == 0 or 3 * side * side != data.shape[1] or len(labels) != len(data):
        raise DataError(f"{path}: expected 'data' of N rows of 3*S*S bytes and N 'labels', "
                        f"got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, side, side), labels
