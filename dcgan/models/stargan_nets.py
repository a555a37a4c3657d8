"""StarGAN's nets (Choi et al., CVPR 2018, appendix A, table 4): the translator G and the PatchGAN D.

G: (image, target domain) -> image. The target domain vector c (one-hot for a class, 0/1 per attribute)
is tiled into constant maps and concatenated to the image; a 7x7 convolution, two stride-2 4x4
convolutions down, six residual blocks, two stride-2 4x4 transposed convolutions up, a 7x7 convolution
to the image's channels and tanh. Instance norm with a learnt gain and bias after every hidden
convolution, ReLU. One deviation from the authors' code: their instance norm also tracks running
statistics (``track_running_stats=True``), used if G is put in eval mode; ours always normalises with
the image's own statistics, so G gives the same output in training and eval mode and a translation
never depends on what other images were seen.

D: PatchGAN, stride-2 4x4 convolutions with LeakyReLU(0.01), the width doubling each time, until a
2x2 map (six convolutions at 128 px, as the paper; four at 32 px), then two heads on that trunk:
D_src, a 3x3 convolution to one real/fake score per patch (2x2 patches), and D_cls, a convolution
over the whole 2x2 map to the domain logits. No normalisation in D (the gradient penalty is per image).

Pixel range: images in [-1, 1], the suite's one convention. Weights: PyTorch's default init, as the
authors' code.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dcgan.errors import ConfigError
from dcgan.nets import FeatureTaps

D_LEAK = 0.01  # paper, table 4: Leaky ReLU with a negative slope of 0.01
PATCH_SIDE = 2  # D's trunk ends at a 2x2 map (paper: 128 px through six stride-2 convolutions)


def domain_vector(labels: torch.Tensor, num_domains: int, like: torch.Tensor) -> torch.Tensor:
    """The target domain as a float vector (N, K) of ``like``'s dtype: one-hot of class indices (N,), or
    the 0/1 attribute rows (N, K) as they are."""
    if labels.dim() == 1:
        return F.one_hot(labels.long(), num_domains).to(like.dtype)
    if labels.shape[1] != num_domains:
        raise ConfigError(f"domain labels of shape {tuple(labels.shape)}: expected {num_domains} attributes a row")
    return labels.to(like.dtype)


def check_domain_labels(labels: torch.Tensor | None, n: int, num_domains: int, multi_label: bool) -> None:
    """Shape of the domain labels a G or a D head is given: a class index per image (N,), or a 0/1 row
    of ``num_domains`` attributes per image (N, K)."""
    want = (n, num_domains) if multi_label else (n,)
    if labels is None or tuple(labels.shape) != want:
        got = "none" if labels is None else f"shape {tuple(labels.shape)}"
        what = f"a row of {num_domains} 0/1 attributes" if multi_label else "one domain index"
        raise ConfigError(f"domain labels: {got} for {n} images, expected {what} per image")


class ResidualBlock(nn.Module):
    """x + (conv3x3-IN-ReLU-conv3x3-IN)(x), at G's bottleneck width."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.InstanceNorm2d(width, affine=True), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.InstanceNorm2d(width, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_in_relu(conv: nn.Module, width: int) -> list[nn.Module]:
    return [conv, nn.InstanceNorm2d(width, affine=True), nn.ReLU(inplace=True)]


class Translator(nn.Module):
    """(image (N, nc, S, S) in [-1, 1], target domains (N,) or (N, K)) -> image (N, nc, S, S) in [-1, 1].

    S must be a multiple of 4 (two stride-2 steps down and up). ``num_classes`` is 0: G draws no classes
    from noise, it is given a domain to translate into (``num_domains``)."""

    num_classes = 0

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.num_domains = len(cfg.domains)
        w = cfg.ngf
        layers = _conv_in_relu(nn.Conv2d(cfg.nc + self.num_domains, w, 7, 1, 3, bias=False), w)  # w x S x S
        layers += _conv_in_relu(nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), 2 * w)  # 2w x S/2 x S/2
        layers += _conv_in_relu(nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), 4 * w)  # 4w x S/4 x S/4
        layers += [ResidualBlock(4 * w) for _ in range(cfg.res_blocks)]
        layers += _conv_in_relu(nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), 2 * w)  # 2w x S/2 x S/2
        layers += _conv_in_relu(nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), w)  # w x S x S
        layers += [nn.Conv2d(w, cfg.nc, 7, 1, 3, bias=False), nn.Tanh()]  # nc x S x S
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, *, labels: torch.Tensor | None = None) -> torch.Tensor:
        check_domain_labels(labels, len(x), self.num_domains, self.cfg.domain_kind == "attribute")
        c = domain_vector(labels, self.num_domains, x)[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.main(torch.cat([x, c], 1))


def trunk_depth(image_size: int) -> int:
    """D's stride-2 convolutions: as many as bring ``image_size`` down to ``PATCH_SIDE`` (6 at 128 px)."""
    return int(math.log2(image_size // PATCH_SIDE))


class PatchDiscriminator(FeatureTaps, nn.Module):
    """image (N, nc, S, S) -> (real/fake score per patch (N, 4), domain logits (N, K)).

    ``forward_intermediates`` (``FeatureTaps``) returns the trunk's activations, ``conv1`` ... ``convL``
    (after each LeakyReLU), the features both heads read: the linear probe's. ``num_classes`` is 0: D
    takes no label, it predicts the domains (``num_domains``)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.num_domains = len(cfg.domains)
        layers: list[nn.Module] = []
        self._taps: dict[str, int] = {}
        self.feature_channels: dict[str, int] = {}
        cin, width = cfg.nc, cfg.ndf
        for i in range(trunk_depth(cfg.image_size)):
            layers += [nn.Conv2d(cin, width, 4, 2, 1), nn.LeakyReLU(D_LEAK, inplace=True)]
            self._taps[f"conv{i + 1}"] = len(layers) - 1
            self.feature_channels[f"conv{i + 1}"] = width
            cin, width = width, 2 * width
        self.main = nn.Sequential(*layers)  # (ndf * 2^(L-1)) x 2 x 2
        self.src = nn.Conv2d(cin, 1, 3, 1, 1, bias=False)  # 1 x 2 x 2: D_src, a score per patch
        self.cls = nn.Conv2d(cin, self.num_domains, PATCH_SIDE, bias=False)  # K x 1 x 1: D_cls

    def forward(self, x: torch.Tensor, *, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if labels is not None:
            raise ConfigError("this discriminator predicts the domains: it takes no labels")
        h = self.main(x)
        return self.src(h).flatten(1), self.cls(h).flatten(1)
