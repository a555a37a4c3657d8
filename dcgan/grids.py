"""Sample grids: the pictures of a batch of images in [-1, 1] that training writes after each epoch and the
benchmark's pictures reuse (``bench.pictures`` lays its captions and numbers on the same tiles)."""
from __future__ import annotations

import math
import os

import torch

from dcgan.fsutil import atomic_path

GRID_PAD = 2  # pixels around and between the tiles of a sample grid


def grid_image(images: torch.Tensor, nrow: int | None = None):
    """Images in [-1, 1] as one RGB PIL image: ``nrow`` tiles a row (default: a square), ``GRID_PAD``
    black pixels around and between them, pixels rounded as torchvision's ``save_image`` rounds them."""
    from PIL import Image
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = make_grid(images.cpu() * 0.5 + 0.5, nrow=nrow, padding=GRID_PAD)
    return Image.fromarray(grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None) -> None:
    """Save images in [-1, 1] as one PNG grid (``grid_image``), atomically."""
    with atomic_path(path) as tmp:
        grid_image(images, nrow).save(tmp, format="PNG")
