"""Packed binary codes and the pairs found between them: Hamming distance, the ``Pairs`` record.

Shared by the search (``search``) and by what is made of its results (``clusters``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Pairs(NamedTuple):
    """Found pairs as rows of ``codes``: i < j, at Hamming distance d, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    d: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def none(cls) -> "Pairs":
        empty = np.empty(0, dtype=np.int64)
        return cls(empty, empty, empty)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between packed codes (broadcasting over leading axes)."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(-1, dtype=np.int64)


def ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(a, b)`` for each (a, b), without a Python loop."""
    lengths = stops - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
