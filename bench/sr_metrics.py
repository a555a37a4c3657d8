"""PSNR and SSIM the way the super-resolution literature reports them, so our numbers sit beside its tables.

The convention (SRGAN, Ledig et al. 2017, section 3.1; EDSR; BasicSR's ``calculate_psnr`` and
``calculate_ssim`` with ``test_y_channel``) is:

1. both images as 8-bit pixels (an SR output is rounded to uint8 first, as a saved PNG holds it);
2. the luma channel Y of ITU-R BT.601 in MATLAB's ``rgb2ycbcr`` scaling, in [16, 235], left unrounded:
   ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for R, G, B in [0, 255]. A grey image is its own
   Y (no such data set in the SR tables; stated so that grey rows are not read as comparable to them);
3. a border of ``scale`` pixels cropped from every side (upsampling has no context there);
4. PSNR = 10 log10(255^2 / MSE) per image; SSIM (Wang et al. 2004) per image with an 11x11 Gaussian
   window of sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, over the positions where the window fits
   ("valid"), averaged over the map: the window of Wang et al.'s MATLAB code, BasicSR and
   scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
   data_range=255)``, which the tests check these against;
5. a set's number is the mean of its images' numbers (not the PSNR of the pooled MSE).

Everything is computed in float64, on the CPU: the images of an SR test set are few and small.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

Y_WEIGHTS = (65.481, 128.553, 24.966)  # ITU-R BT.601 for 8-bit R, G, B, MATLAB's rgb2ycbcr
Y_OFFSET = 16.0
PEAK = 255.0
SSIM_WINDOW = 11  # Wang et al. 2004: an 11x11 circular-symmetric Gaussian of sigma 1.5
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def luma(images_u8: torch.Tensor) -> torch.Tensor:
    """(N, H, W) float64 Y of uint8 images (N, 3, H, W) (MATLAB's scaling, see the module), or the
    channel of grey images (N, 1, H, W)."""
    x = images_u8.double()
    if x.shape[1] == 1:
        return x[:, 0]
    if x.shape[1] != 3:
        raise ValueError(f"images of {x.shape[1]} channels: expected 1 or 3")
    weights = torch.tensor(Y_WEIGHTS, dtype=torch.float64) / PEAK
    return Y_OFFSET + torch.einsum("nchw,c->nhw", x, weights)


def shave(y: torch.Tensor, border: int) -> torch.Tensor:
    """``y`` (..., H, W) without ``border`` pixels on every side."""
    return y[..., border:y.shape[-2] - border, border:y.shape[-1] - border] if border else y


def psnr(sr_u8: torch.Tensor, hr_u8: torch.Tensor, border: int) -> torch.Tensor:
    """Per-image PSNR in dB on Y with ``border`` cropped; inf for identical images."""
    a, b = (shave(luma(x), border) for x in _checked(sr_u8, hr_u8, border, 1))
    mse = (a - b).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(PEAK**2 / mse)


def _gaussian_window() -> torch.Tensor:
    r = torch.arange(SSIM_WINDOW, dtype=torch.float64) - SSIM_WINDOW // 2
    g = torch.exp(-r**2 / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(sr_u8: torch.Tensor, hr_u8: torch.Tensor, border: int) -> torch.Tensor:
    """Per-image SSIM on Y with ``border`` cropped (the module's window and constants)."""
    a, b = (shave(luma(x), border)[:, None] for x in _checked(sr_u8, hr_u8, border, SSIM_WINDOW))
    w = _gaussian_window()
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a**2
    var_b = F.conv2d(b * b, w) - mu_b**2
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    ssim_map = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return ssim_map.flatten(1).mean(1)


def smallest_side(border: int) -> int:
    """The smallest image side both metrics can measure with ``border`` cropped: SSIM's window must fit."""
    return SSIM_WINDOW + 2 * border


def _checked(sr_u8: torch.Tensor, hr_u8: torch.Tensor, border: int, least: int) -> tuple[torch.Tensor, torch.Tensor]:
    if sr_u8.dtype != torch.uint8 or hr_u8.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {sr_u8.dtype} and {hr_u8.dtype}")
    if sr_u8.shape != hr_u8.shape:
        raise ValueError(f"SR images {tuple(sr_u8.shape)} and HR images {tuple(hr_u8.shape)} differ in shape")
    if min(hr_u8.shape[-2:]) - 2 * border < least:
        raise ValueError(f"images of {hr_u8.shape[-2]}x{hr_u8.shape[-1]} pixels: with a border of {border} cropped, "
                         f"fewer than {least} remain a side")
    return sr_u8, hr_u8

