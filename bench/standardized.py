"""Standardised rows of a feature matrix, used where the matrix lies instead of copied.

The linear probes standardise the features by the labelled rows' mean and std and fit on a subset of
the training rows. Done with copies, the 50,000 x 28672 float32 CIFAR-10 features (5.7 GB) were held
up to three times over: the memory-mapped cache file, the fancy-indexed rows, their standardised copy.
``Standardized`` holds none of that: it keeps the matrix (e.g. a read-only ``np.load(mmap_mode="r")``
of the cache file), the row indices and the moments, and computes the two products a solver needs,

    A W = X (W / std) - (mean / std) . W        A^T R = (X^T R - mean sum(R)) / std

with A = (X[rows] - mean) / std: the mean and scale are folded into the small matrices, so the
products run on X itself, in float32, through torch's matrix product (MKL here: on these thin
products 1.6-2x numpy's OpenBLAS, 14 GB/s, the memory's speed on this 2-core machine). Folding
rounds differently from multiplying a standardised float32 copy: on real 28672-d conv features both
errors are float32 rounding, the folded one about twice the other (relative to the product, 6e-6
against 3e-6); the probe's validation accuracies, chosen C and test accuracy came out identical.

Rows filling at least half of the span they cover (the all-label protocol: every training row but
5,000 held out) are multiplied as that span, with zeros for the rows left out (the products read
X as one block); sparser rows (a few labels per class) are gathered in blocks of ``GATHER_ROWS``.
The few row samples the solver does copy (``take``, ``column_blocks``) are standardised exactly as a
standardised copy of the rows would have been: the same float32 operations on the same numbers.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch

MOMENT_ROWS = 512  # rows per float64 block of ``moments``: 4096 ran 5x slower (blocks out of cache)
GATHER_ROWS = 1024  # rows gathered at a time from sparse rows: 117 MB of 28672-d float32


def check_float32(X) -> np.ndarray:
    """``X`` as an ndarray (a memory map stays one: no copy), refused unless float32 and 2-D."""
    X = np.asarray(X)
    if X.dtype != np.float32:
        raise TypeError(f"features must be float32, got {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"features must be a matrix (rows x features), got shape {X.shape}")
    return X


def standardize_(X: np.ndarray, mean: np.ndarray, std: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """(X - mean) / std in place, in row chunks (X must be a writable float32 array)."""
    for s in range(0, len(X), chunk):
        X[s: s + chunk] -= mean
        X[s: s + chunk] /= std
    return X


def moments(X: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std of ``X[rows]`` (all rows when None), read in blocks of ``MOMENT_ROWS``
    rows: float64 accumulators, float32 result; constant features get std 1."""
    X = check_float32(X)
    rows = _checked_rows(rows, len(X))
    n = len(X) if rows is None else len(rows)
    total = np.zeros(X.shape[1])
    total_sq = np.zeros(X.shape[1])
    for s in range(0, n, MOMENT_ROWS):
        block = np.asarray(X[s: s + MOMENT_ROWS] if rows is None else X[rows[s: s + MOMENT_ROWS]], dtype=np.float64)
        total += block.sum(0)
        total_sq += np.square(block, out=block).sum(0)
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0))
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _tensor(a: np.ndarray) -> torch.Tensor:
    """``a`` as a tensor sharing its memory; torch only reads it (a read-only memory map warns otherwise)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        return torch.from_numpy(a)


def _checked_rows(rows, n_all: int) -> np.ndarray | None:
    """Row indices as int64, strictly increasing and inside the matrix; None for every row."""
    if rows is None:
        return None
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or not len(rows):
        raise ValueError(f"rows must be a non-empty list of row indices, got shape {rows.shape}")
    if rows[0] < 0 or rows[-1] >= n_all or np.any(np.diff(rows) <= 0):
        raise ValueError(f"rows must be strictly increasing indices into the {n_all} rows of the features")
    return None if len(rows) == n_all else rows


class Standardized:
    """``(X[rows] - mean) / std`` (float32 ``X``, ``rows`` None for all, ``mean``/``std`` None for X as
    it is), never materialised: see the module's docstring."""

    def __init__(self, X, rows=None, mean: np.ndarray | None = None, std: np.ndarray | None = None):
        self.X = check_float32(X)
        n_all, d = self.X.shape
        self.rows = _checked_rows(rows, n_all)
        if (mean is None) != (std is None):
            raise ValueError("give both the mean and the std, or neither")
        if mean is not None:
            mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
            if mean.shape != (d,) or std.shape != (d,) or not np.all(std > 0):
                raise ValueError(f"mean and std must be {d} numbers each, std > 0")
        self.mean, self.std = mean, std
        self.shape = (n_all if self.rows is None else len(self.rows), d)
        self.size = self.shape[0] * d
        # dense rows: the span they cover, and their positions in it (None: the span is exactly them)
        self._span = self._positions = None
        if self.rows is None:
            self._span = self.X
        elif 2 * len(self.rows) >= self.rows[-1] + 1 - self.rows[0]:
            self._span = self.X[self.rows[0]: self.rows[-1] + 1]
            self._positions = self.rows - self.rows[0]

    def __len__(self) -> int:
        return self.shape[0]

    def scores(self, W: np.ndarray) -> np.ndarray:
        """``A W[:-1] + W[-1]`` in float64 (W: d+1 rows, the bias last), the product in float32."""
        W = np.asarray(W, np.float64)
        weights, bias = W[:-1], W[-1]
        if self.mean is not None:
            weights = weights / self.std.astype(np.float64)[:, None]
            bias = bias - self.mean.astype(np.float64) @ weights
        return self._product(weights.astype(np.float32)).astype(np.float64) + bias

    def _product(self, M: np.ndarray) -> np.ndarray:
        """``X[rows] M`` (float32)."""
        M = torch.from_numpy(M)
        if self._span is None:
            return np.concatenate([(torch.from_numpy(self.X[self.rows[s: s + GATHER_ROWS]]) @ M).numpy()
                                   for s in range(0, len(self), GATHER_ROWS)])
        out = (_tensor(self._span) @ M).numpy()
        return out if self._positions is None else out[self._positions]

    def transposed_product(self, R: np.ndarray) -> np.ndarray:
        """``A^T R`` in float64 (R: one float32 column per class), the product with X in float32."""
        R = np.ascontiguousarray(R, np.float32)
        if self._span is None:
            out = np.zeros((self.shape[1], R.shape[1]))
            for s in range(0, len(self), GATHER_ROWS):
                out += (torch.from_numpy(R[s: s + GATHER_ROWS]).T
                        @ torch.from_numpy(self.X[self.rows[s: s + GATHER_ROWS]])).numpy().T
        else:
            if self._positions is not None:
                padded = np.zeros((len(self._span), R.shape[1]), np.float32)
                padded[self._positions] = R
                R = padded
            # R^T X, not X^T R: 2x faster here
            out = (torch.from_numpy(R).T @ _tensor(self._span)).numpy().T.astype(np.float64)
        if self.mean is None:
            return out
        out -= self.mean.astype(np.float64)[:, None] * R.sum(0, dtype=np.float64)
        return out / self.std.astype(np.float64)[:, None]

    def take(self, positions: np.ndarray | None = None) -> np.ndarray:
        """A standardised float32 copy of the rows at ``positions`` (sorted; None: all of them)."""
        index = np.arange(len(self)) if positions is None else np.asarray(positions)
        block = self.X[index if self.rows is None else self.rows[index]]
        return block if self.mean is None else standardize_(block, self.mean, self.std)

    def column_blocks(self, chunk: int):
        """``(start, standardised float32 copy of A[:, start: start + chunk])`` for every column chunk."""
        for s in range(0, self.shape[1], chunk):
            block = self.X[:, s: s + chunk].copy() if self.rows is None else self.X[self.rows, s: s + chunk]
            if self.mean is not None:
                block -= self.mean[s: s + chunk]
                block /= self.std[s: s + chunk]
            yield s, block
