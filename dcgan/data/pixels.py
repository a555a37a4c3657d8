"""The pixel pipeline shared by every data set: decoding, resize and centre crop, channel conversion.

Both flavours of data set (in memory and decoded per item) go through these functions, so that the
same source image gives the same pixels whichever flavour serves it; ``transform_id`` names the
pipeline, and changes whenever the pixels it produces would.
"""
from __future__ import annotations

import io

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from dcgan.errors import DataError, one_line

RESIZE_CHUNK = 4096  # images resized per call: bounds the float intermediate torchvision allocates


def transform_id(image_size: int, channels: int) -> str:
    return f"rs{image_size}-bilinear-aa-cc-c{channels}"


def resize_crop(image, size: int):
    """Resize so the short side is ``size`` (bilinear, antialiased), then centre-crop a square.

    Works on a PIL image or on a batch tensor N×C×H×W; a batch already at the size is returned as is.
    """
    if isinstance(image, torch.Tensor) and image.shape[-2:] == (size, size):
        return image
    resized = TF.resize(image, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
    return TF.center_crop(resized, size)


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch in chunks, so a large set never needs a float copy of itself."""
    if images.shape[-2:] == (size, size):
        return images
    return torch.cat([resize_crop(chunk, size) for chunk in images.split(RESIZE_CHUNK)])


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey -> RGB by repeating; RGB -> grey with PIL's "L" integer weights, so both flavours agree."""
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.repeat(1, 3, 1, 1)
    r, g, b = images.to(torch.int32).unbind(1)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).to(torch.uint8).unsqueeze(1)


def decode_image(source: str | io.BytesIO, where: str, mode: str) -> Image.Image:
    """Decode one image fully into ``mode``, so a broken file fails here, naming ``where``."""
    try:
        with Image.open(source) as image:
            return image.convert(mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"{where}: cannot decode image ({one_line(e)})") from e
