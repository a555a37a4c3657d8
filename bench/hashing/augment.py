"""Pixel edits a hash should ignore: translations (training shifts and the search's shift probes) and
brightness/contrast jitter. Images are uint8 or float pixel values, N x C x H x W; results are float."""
from __future__ import annotations

import torch


def moved(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Image k moved by ``offsets[k]`` = (rows, columns) px, the uncovered border repeating the edge
    pixels, as float pixel values (N x C x H x W): a pure translation, so whole pixel values stay whole."""
    n, c, h, w = images.shape
    m = int(offsets.abs().max()) if len(offsets) else 0
    padded = torch.nn.functional.pad(images.float(), (m, m, m, m), mode="replicate")
    start = m - offsets  # content moved down/right by s is read from s px above/left
    rows = (start[:, :1] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * m)
    cols = (start[:, 1:] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def translated(images: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Each image moved by -max_shift..max_shift px along each axis (drawn from ``g``), as ``moved``."""
    return moved(images, max_shift - torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=g))


def probe_offsets(k: int) -> list[tuple[int, int]]:
    """The 4k shifts a probed image is also hashed at: 1..k px up, down, left and right."""
    return [(s * d, 0) for d in range(1, k + 1) for s in (-1, 1)] + [(0, s * d) for d in range(1, k + 1) for s in (-1, 1)]


def jittered(images: torch.Tensor, jitter: float, g: torch.Generator) -> torch.Tensor:
    """Each image's contrast scaled about its mean by 1 +- jitter and its brightness moved by up to
    jitter * 128 levels (both drawn from ``g``), clipped to 0..255, as float pixel values."""
    n = len(images)
    x = images.float()
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + jitter * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
    brightness = 128 * jitter * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
    return ((x - mean) * contrast + mean + brightness).clamp(0, 255)
