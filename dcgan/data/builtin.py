"""Data sets that need no files: scikit-learn's digits and generated coloured shapes (smoke tests)."""
from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch

from dcgan.data.datasets import Arrays
from dcgan.data.registry import register_dataset


@register_dataset("digits", splits=("train", "test"), channels=1, num_classes=10, class_names=tuple("0123456789"),
                  description="scikit-learn's 1,797 8x8 handwritten digits; needs no files (smoke tests)")
def _load_digits(root: Path | None, split: str, download: bool) -> Arrays:
    """Every fifth image is test: a fixed split, as scikit-learn ships none."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    is_test = np.arange(len(images)) % 5 == 0
    keep = is_test if split == "test" else ~is_test
    return Arrays(torch.from_numpy(images[keep][:, None]), torch.from_numpy(digits.target[keep]).long())


_SYNTHETIC_SIZES = {"train": 512, "test": 128}


def _synthetic_shape(k: int, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """The mask of class ``k``'s shape, given offsets from its centre."""
    r = np.hypot(dy, dx)
    box = np.maximum(abs(dy), abs(dx))
    return [
        r <= 6,                                         # disc
        box <= 5,                                       # square
        (abs(dy) <= 2) & (abs(dx) <= 10),               # horizontal bar
        (abs(dx) <= 2) & (abs(dy) <= 10),               # vertical bar
        (abs(dy - dx) <= 2) & (box <= 8),               # diagonal
        (r >= 4) & (r <= 7),                            # ring
        ((abs(dy) <= 1) | (abs(dx) <= 1)) & (box <= 7),  # cross
        (abs(dx) * 2 <= dy + 7) & (dy <= 6),            # triangle
        (box >= 5) & (box <= 7),                        # frame
        (np.hypot(dy, dx - 5) <= 3) | (np.hypot(dy, dx + 5) <= 3),  # two dots
    ][k]


@register_dataset("synthetic", splits=("train", "test"), channels=3, num_classes=10,
                  class_names=("disc", "square", "horizontal bar", "vertical bar", "diagonal", "ring", "cross",
                               "triangle", "frame", "two dots"),
                  description="512/128 generated 32x32 RGB shapes in 10 classes; needs no files (tests)")
def _load_synthetic(root: Path | None, split: str, download: bool) -> Arrays:
    """Ten coloured shapes, jittered in place, size and brightness, on dark noise.

    Each class has its own shape and hue, so a linear classifier on pixels separates them well
    above chance, yet a generator has real structure to learn. The seed is fixed per split: the
    data must not depend on the run's seed.
    """
    rng = np.random.default_rng([20160107, list(_SYNTHETIC_SIZES).index(split)])
    n = _SYNTHETIC_SIZES[split]
    labels = rng.permutation(np.arange(n) % 10)
    images = rng.integers(0, 48, size=(n, 32, 32, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:32, 0:32]
    for image, k in zip(images, labels):
        cy, cx = 16 + rng.integers(-3, 4, size=2)
        scale = rng.uniform(0.85, 1.15)
        mask = _synthetic_shape(k, (yy - cy) / scale, (xx - cx) / scale)
        colour = np.array(colorsys.hsv_to_rgb(k / 10, 0.8, 1.0)) * rng.uniform(170, 255)
        image[mask] = colour
    images = torch.from_numpy(images.round().astype(np.uint8)).permute(0, 3, 1, 2).contiguous()
    return Arrays(images, torch.from_numpy(labels).long())
