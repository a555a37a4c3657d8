"""Low- and high-resolution pairs made on the fly from any data set's images: SRGAN's training data.

No data set of the registry is stored as pairs; as in the SRGAN paper (Ledig et al. 2017, section 3.2:
random 96x96 HR sub-images of ImageNet images, their LR made with a bicubic kernel, factor r = 4), the
pairs are made from single images:

- HR: a square crop of the data set's uint8 images (``crops``): random positions while training,
  the centre for a fixed set of images to look at;
- LR: the HR crop resized by 1/scale with ``bicubic`` and rounded to uint8, as an LR image saved to
  an 8-bit file holds it. Everything stays uint8 until the step turns it into floats, as the suite's
  images do.

``bicubic`` is ``torch.nn.functional.interpolate(mode="bicubic", antialias=True)``: Keys' cubic
kernel with a = -0.5, widened by the scale when shrinking so that it low-passes (PIL's resampling,
which torch matches). MATLAB's ``imresize``, the field's convention for making LR images (DIV2K's
bicubic tracks, the usual Set5/Set14 scripts), uses the same kernel, the same widening and the same
pixel centres; it differs at the border, where MATLAB mirrors the image and torch renormalises the
weights of the pixels inside (the kernel reaches two LR pixels, so the outermost two or so of each
edge differ slightly), and in rounding (MATLAB computes in double, torch in float32). LR images made
here therefore match MATLAB's in the interior, not bit for bit: PSNRs against published bicubic LR
sets are close, not equal.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, C, H, W) resized to ``size`` x ``size`` with the antialiased bicubic kernel
    (see the module), rounded to uint8."""
    out = F.interpolate(images_u8.float(), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def crops(images: torch.Tensor, size: int, corners: torch.Tensor) -> torch.Tensor:
    """The ``size`` x ``size`` crop of each image (N, C, H, W) whose top-left corner is ``corners``
    (N, 2: row, column), gathered in one indexing on the images' device."""
    n = images.shape[0]
    offsets = torch.arange(size, device=images.device)
    corners = corners.to(images.device)
    rows = (corners[:, 0, None] + offsets)[:, :, None]  # N x size x 1
    cols = (corners[:, 1, None] + offsets)[:, None, :]  # N x 1 x size
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # N x size x size x C -> N x C x size x size


def random_corners(n: int, image_size: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """N top-left corners (row, column) of ``size`` crops of ``image_size`` images, uniform over every
    position, drawn from ``generator`` (on the CPU: the same crops on any device)."""
    return torch.randint(0, image_size - size + 1, (n, 2), generator=generator)


def centre_corners(n: int, image_size: int, size: int) -> torch.Tensor:
    """N copies of the top-left corner of the centre ``size`` crop (rounded up and left, as torchvision's
    ``center_crop`` is)."""
    return torch.full((n, 2), (image_size - size) // 2)


def lr_hr_pairs(images: torch.Tensor, size: int, scale: int, corners: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) uint8 batches: the crops of ``images`` at ``corners`` and their bicubic 1/``scale``."""
    hr = crops(images, size, corners)
    return bicubic(hr, size // scale), hr
