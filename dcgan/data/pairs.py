"""Low- and high-resolution pairs: made on the fly from any data set's images (SRGAN's training data),
and the whole-image pairs of an SR test set (``read_test_folder``).

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

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dcgan.data.files import image_files, no_images
from dcgan.data.pixels import decode_image
from dcgan.errors import ConfigError, DataError


def bicubic(images_u8: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """uint8 images (N, C, H, W) resized to ``size`` x ``size`` (or ``size`` = (height, width)) with
    the antialiased bicubic kernel (see the module), rounded to uint8. Upsampling too: torch's
    antialiased path keeps Keys' a = -0.5 (PIL's and MATLAB's) where its plain bicubic uses a = -0.75."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    out = F.interpolate(images_u8.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
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


def check_hr_source(data, image_size: int, what: str) -> None:
    """Refuse HR images that would be upscaled: ``data`` loaded at ``image_size`` must not exceed the
    short side its images are stored at (an SR model learns, and is judged on, the detail of real HR
    pixels; a resize upwards invents none). Looks at up to 8 images spread over the set (file-backed
    sets: their headers alone)."""
    n = len(data)
    smallest = min(data.source_side(i) for i in sorted({k * (n - 1) // 7 for k in range(8)}))
    if smallest < image_size:
        raise ConfigError(f"{what} {image_size}: data set {data.name!r} has images of {smallest} px (short side), "
                          f"which would be upscaled to be HR images; use {smallest} or less")


# ---- SR test sets: whole images at their own size --------------------------------------------------

@dataclass(frozen=True)
class TestPair:
    """One image of an SR test set: its name, the HR image and its LR, uint8 C x H x W, H and W of the HR
    ``scale`` times the LR's."""

    name: str
    hr: torch.Tensor
    lr: torch.Tensor


def mod_crop(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``image`` (..., H, W) without its last rows and columns past a multiple of ``scale`` (BasicSR's
    ``mod_crop``: the HR of an LR made by downsampling)."""
    h, w = image.shape[-2:]
    return image[..., :h - h % scale, :w - w % scale]


def make_pair(name: str, image: torch.Tensor, scale: int) -> TestPair:
    """The test pair of an HR image: mod-cropped, its LR made by ``bicubic`` (as in training)."""
    hr = mod_crop(image, scale)
    return TestPair(name, hr, bicubic(hr[None], (hr.shape[-2] // scale, hr.shape[-1] // scale))[0])


def read_test_folder(root: Path, scale: int, channels: int) -> list[TestPair]:
    """The test pairs of a folder at the images' own sizes (SR test sets are judged at full resolution).

    Two layouts: DIV2K's paired one, ``HR/<name>.png`` beside ``LR_bicubic/X<scale>/<name>x<scale>.png``
    (or ``<name>.png``), whose LR images are read as they are (MATLAB-made for DIV2K); or any folder of
    images, searched recursively, each the HR of an LR made here. Named by their path under ``root``."""
    hr_dir, lr_dir = root / "HR", root / "LR_bicubic" / f"X{scale}"
    mode = "L" if channels == 1 else "RGB"
    if not hr_dir.is_dir():
        return [make_pair(os.path.relpath(p, root), _read(Path(p), mode), scale) for p in _images(root)]
    if not lr_dir.is_dir():
        raise DataError(f"{root} holds HR/ but no LR_bicubic/X{scale}/: the paired layout is HR/<name>.png beside "
                        f"LR_bicubic/X{scale}/<name>x{scale}.png")
    lows = {}
    for p in map(Path, _images(lr_dir)):
        lows[p.stem[:-len(f"x{scale}")] if p.stem.endswith(f"x{scale}") else p.stem] = p
    pairs = []
    for p in map(Path, _images(hr_dir)):
        low = lows.pop(p.stem, None)
        if low is None:
            raise DataError(f"HR and LR folders of {root} do not pair up: HR/{p.name} has no LR_bicubic/X{scale}/"
                            f"{p.stem}x{scale}.png (or {p.stem}.png)")
        hr, lr = _read(p, mode), _read(low, mode)
        want = (lr.shape[-2] * scale, lr.shape[-1] * scale)
        if not (0 <= hr.shape[-2] - want[0] < scale and 0 <= hr.shape[-1] - want[1] < scale):
            raise DataError(f"{p} is {hr.shape[-2]}x{hr.shape[-1]}: expected {scale} x its LR's "
                            f"{lr.shape[-2]}x{lr.shape[-1]} = {want[0]}x{want[1]} (up to {scale - 1} more pixels, "
                            "cropped)")
        pairs.append(TestPair(f"HR/{p.name}", hr[:, :want[0], :want[1]], lr))
    if lows:
        extra = next(iter(lows.values()))
        raise DataError(f"HR and LR folders of {root} do not pair up: LR_bicubic/X{scale}/{extra.name} has no HR "
                        "image of its name")
    return pairs


def _images(folder: Path) -> list[str]:
    paths = image_files(folder)
    if not paths:
        raise no_images(folder)
    return paths


def _read(path: Path, mode: str) -> torch.Tensor:
    """uint8 C x H x W pixels of an image file, decoded in ``mode`` (L or RGB)."""
    image = torch.from_numpy(np.asarray(decode_image(str(path), str(path), mode)).copy())
    return image[None] if image.ndim == 2 else image.permute(2, 0, 1).contiguous()
