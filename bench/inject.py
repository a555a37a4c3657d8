"""Ground truth for near-duplicate search: a collection plus edited copies of some of its images.

``Injected`` serves a data set's images followed by ``k`` copies of k distinct images, each made by
one known edit (cycling through ``edits``, so every kind is equally represented), and records the
(source, copy) pairs. ``score`` measures found pairs against them. Edits act on the 32x32 uint8
crops the hashes see (for CIFAR-10, the images themselves), each drawn from the collection's seed.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch
from PIL import Image

from dcgan.errors import ConfigError
from dcgan.registry import Registry


def _jpeg(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(rng.integers(30, 71)))
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Down to 16-24 px and back up (bilinear both ways)."""
    side, small = a.shape[0], int(rng.integers(16, 25))
    down = Image.fromarray(a).resize((small, small), Image.BILINEAR)
    return np.asarray(down.resize((side, side), Image.BILINEAR))


def _shift(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Moved 1-3 px along a random axis and direction; the uncovered border repeats the edge pixels."""
    step = int(rng.integers(1, 4)) * int(rng.choice([-1, 1]))
    axis = int(rng.integers(0, 2))
    pad = [(0, 0)] * 3
    pad[axis] = (max(step, 0), max(-step, 0))
    padded = np.pad(a, pad, mode="edge")
    start = max(-step, 0)
    return np.take(padded, np.arange(start, start + a.shape[axis]), axis=axis)


def _crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-3 px cut off each side (amounts drawn per side), then resized back."""
    top, bottom, left, right = (int(v) for v in rng.integers(1, 4, size=4))
    h, w = a.shape[:2]
    cut = Image.fromarray(a[top: h - bottom, left: w - right])
    return np.asarray(cut.resize((w, h), Image.BILINEAR))


def _brightness(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    delta = int(rng.integers(10, 31)) * int(rng.choice([-1, 1]))
    return np.clip(a.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def _contrast(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scaled about the mean by 0.75-0.9 or 1.1-1.25."""
    factor = rng.uniform(0.75, 0.9) if rng.random() < 0.5 else rng.uniform(1.1, 1.25)
    mean = a.mean()
    return np.clip((a - mean) * factor + mean, 0, 255).round().astype(np.uint8)


EDITS: Registry[Callable[[np.ndarray, np.random.Generator], np.ndarray]] = Registry("edit")
EDITS.add("copy", lambda a, rng: a.copy())
EDITS.add("jpeg", _jpeg)  # re-compressed at quality 30-70
EDITS.add("resize", _resize)
EDITS.add("shift", _shift)
EDITS.add("crop", _crop)
EDITS.add("brightness", _brightness)  # +-10-30 grey levels
EDITS.add("contrast", _contrast)
EDIT_NAMES = ("copy", "jpeg", "resize", "shift", "crop", "brightness", "contrast")  # the order copies take them in


class Injected(torch.utils.data.Dataset):
    """``base``'s items, then one edited copy of each of ``k`` distinct base images (drawn from ``seed``)."""

    def __init__(self, base, k: int, edits: tuple[str, ...], seed: int):
        if not edits:
            raise ConfigError(f"no edits given; expected some of {', '.join(EDIT_NAMES)}")
        for e in edits:
            EDITS.get(e)  # an unknown name fails here, with a "did you mean"
        if not 0 < k <= len(base):
            raise ConfigError(f"inject={k}: must be between 1 and the collection's {len(base)} images")
        self.base, self.seed = base, seed
        self.sources = np.sort(np.random.default_rng(seed).choice(len(base), k, replace=False))
        self.edits = [edits[t % len(edits)] for t in range(k)]

    def __len__(self) -> int:
        return len(self.base) + len(self.sources)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if i < len(self.base):
            return self.base[i]
        t = i - len(self.base)
        image = self.base[int(self.sources[t])][0].permute(1, 2, 0).numpy()
        edited = EDITS.get(self.edits[t])(image, np.random.default_rng([self.seed, t]))
        return torch.from_numpy(np.array(edited)).permute(2, 0, 1), -1

    def item_name(self, i: int) -> str:
        if i < len(self.base):
            return self.base.item_name(i)
        t = i - len(self.base)
        return f"injected {t} ({self.edits[t]} of {self.base.item_name(int(self.sources[t]))})"

    def truth(self) -> dict[tuple[int, int], str]:
        """The injected pairs, as (source index, copy index) -> the edit that made the copy."""
        n = len(self.base)
        return {(int(s), n + t): edit for t, (s, edit) in enumerate(zip(self.sources, self.edits))}


def score(found: set[tuple[int, int]], truth: dict[tuple[int, int], str], n_base: int) -> dict[str, float]:
    """Precision on found pairs involving an injected image (index >= ``n_base``), recall of the
    injected pairs, F1, and the recall of each edit. Pairs are (lower, higher) index.

    A copy also matching an original that duplicates its source counts as a false positive here:
    such pairs need a look by eye (CIFAR-10 holds a few).
    """
    involved = {pair for pair in found if pair[1] >= n_base}
    hits = involved & truth.keys()
    precision = len(hits) / len(involved) if involved else float("nan")
    recall = len(hits) / len(truth) if truth else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    out = {"precision": precision, "recall": recall, "f1": f1, "pairs_with_injected": float(len(involved))}
    for edit in dict.fromkeys(truth.values()):
        wanted = [pair for pair, e in truth.items() if e == edit]
        out[f"recall_{edit}"] = sum(pair in hits for pair in wanted) / len(wanted)
    return out
