"""SRGAN's nets (Ledig et al. 2017, figure 4): the SRResNet generator and the VGG-style discriminator.

Pixel range: LR inputs, HR targets and G's outputs are all in [-1, 1], the suite's one convention
(``x / 127.5 - 1`` of uint8 pixels, a tanh on G's output like the DCGAN's G). The paper scales the
LR input to [0, 1] and the HR to [-1, 1]; an input range is an affine change that G's first
convolution absorbs (its weights halve, its bias shifts), so one range for every image keeps the
pixel path, the grids and any feature of D the same as the rest of the suite's. The tanh bounds
G's output to the HR range.

Initialisation: PyTorch's defaults (the paper names none). PReLU: one slope per channel (He et al.
2015's channel-wise form), starting at 0.25.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from dcgan.errors import ConfigError
from dcgan.nets import LEAK, FeatureTaps, expect_labels

DENSE = 1024  # width of D's hidden dense layer (paper)


class ResidualBlock(nn.Module):
    """x + (conv3x3-BN-PReLU-conv3x3-BN)(x): one of G's B residual blocks (k3n64s1 in the paper)."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SubPixel(nn.Sequential):
    """x2 upsampling (Shi et al. 2016): conv3x3 to 4x the width (k3n256s1 at width 64), PixelShuffle(2)
    (channel 4c + 2i + j of each pixel moves to channel c, sub-pixel (i, j)), PReLU."""

    def __init__(self, width: int):
        super().__init__(nn.Conv2d(width, 4 * width, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(width))


class SRResNet(nn.Module):
    """LR image (N, nc, h, h) in [-1, 1] -> SR image (N, nc, scale*h, scale*h) in [-1, 1].

    9x9 conv + PReLU; B residual blocks; conv3x3-BN plus a long skip from the first conv's output;
    log2(scale) sub-pixel x2 blocks; 9x9 conv to the image channels; tanh. Fully convolutional: any h.
    """

    num_classes = 0  # upsamples an image; draws no classes

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        w = cfg.ngf
        self.head = nn.Sequential(nn.Conv2d(cfg.nc, w, 9, 1, 4), nn.PReLU(w))  # w x h x h
        self.blocks = nn.Sequential(*[ResidualBlock(w) for _ in range(cfg.blocks)])
        self.trunk = nn.Sequential(nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w))
        self.upsample = nn.Sequential(*[SubPixel(w) for _ in range(int(math.log2(cfg.scale)))])  # w x sh x sh
        self.tail = nn.Conv2d(w, cfg.nc, 9, 1, 4)  # nc x sh x sh

    def forward(self, lr: torch.Tensor, *, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise ConfigError("this generator upsamples an image: it takes no class labels")
        h = self.head(lr)
        h = h + self.trunk(self.blocks(h))  # the long skip
        return torch.tanh(self.tail(self.upsample(h)))


def _d_plan(ndf: int) -> list[tuple[int, int]]:
    """(width, stride) of D's eight convolutions: 64 s1, then 64 s2, 128 s1, 128 s2, 256 s1, 256 s2,
    512 s1, 512 s2 at ndf 64 (the paper's k3n64s1 ... k3n512s2)."""
    widths = [ndf, ndf, 2 * ndf, 2 * ndf, 4 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]
    return [(w, 1 if i % 2 == 0 else 2) for i, w in enumerate(widths)]


class SRDiscriminator(FeatureTaps, nn.Module):
    """HR or SR patch (N, nc, S, S) in [-1, 1] -> logit (N,).

    conv3x3 + LeakyReLU(0.2), then seven conv3x3-BN-LeakyReLU blocks (strides 2, 1, 2, 1, 2, 1, 2: the
    side shrinks 16-fold), then the head. The paper's head, dense 1024 on the flattened last map, LeakyReLU,
    dense 1, fixes the input at 96 px (a 6x6x512 map); here the last map is first averaged over its
    positions, so one D judges any patch side (32, 64, 96 px ...) with the same weights. Its sigmoid is
    left to the loss (``BCEWithLogitsLoss``), as the DCGAN D's.

    ``forward_intermediates`` (``FeatureTaps``) returns the activation after each of the eight
    convolutions, named ``conv1`` ... ``conv8``, as the DCGAN D's ``conv1`` ... ``convK``.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        self._taps: dict[str, int] = {}
        self.feature_channels: dict[str, int] = {}
        cin = cfg.nc
        for i, (width, stride) in enumerate(_d_plan(cfg.ndf)):
            layers.append(nn.Conv2d(cin, width, 3, stride, 1, bias=i == 0))
            if i:  # no batch norm on the input layer
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(LEAK, inplace=True))
            self._taps[f"conv{i + 1}"] = len(layers) - 1
            self.feature_channels[f"conv{i + 1}"] = width
            cin = width
        self.main = nn.Sequential(*layers)  # (8 ndf) x S/16 x S/16
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # 8 ndf
                                  nn.Linear(cin, DENSE), nn.LeakyReLU(LEAK, inplace=True), nn.Linear(DENSE, 1))

    def forward(self, x: torch.Tensor, *, labels: torch.Tensor | None = None) -> torch.Tensor:
        expect_labels(self, labels, len(x))
        return self.head(self.main(x)).flatten()
