"""Batch files of CIFAR-10 and downsampled ImageNet: pickled dicts (or .npz) of image rows and labels."""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np

from dcgan.errors import DataError, one_line


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
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
        raise DataError(f"{path}: cannot read batch file ({one_line(e)})") from e
    side = math.isqrt(data.shape[1] // 3) if data.ndim == 2 else 0
    if side == 0 or 3 * side * side != data.shape[1] or len(labels) != len(data):
        raise DataError(f"{path}: expected 'data' of N rows of 3*S*S bytes and N 'labels', "
                        f"got {data.shape} and {labels.shape}")
    return data.reshape(-1, 3, side, side), labels
