"""DCGAN generator and discriminator, following the paper's architecture rules.

- strided convolutions in D and fractionally strided ones in G, no pooling;
- batch norm everywhere except G's output layer and D's input layer;
- no fully connected hidden layers (z is projected by a 4x4 transposed convolution, D ends in a
  4x4 valid convolution on its 4x4 map);
- ReLU in G with a Tanh output, LeakyReLU(0.2) in D;
- weights N(0, 0.02), batch-norm gains N(1, 0.02).

Both nets keep one flat ``main`` ``nn.Sequential`` in the order of pytorch/examples' dcgan, so its
``netG_epoch_N.pth`` / ``netD_epoch_N.pth`` state dicts load as they are. D has no sigmoid: it
returns logits and training uses ``BCEWithLogitsLoss`` (the same loss, numerically safer and
autocast-friendly).

Every G and D of every model family (``dcgan.models``) is called the same way, ``G(z, labels=...)``
and ``D(x, labels=...)``, and says how many classes it is conditioned on in ``num_classes`` (0 here:
these are unconditional and refuse labels). A conditional family subclasses these nets through
three hooks: ``_in_channels`` (channels every convolution takes besides its input), ``_norm`` (G's
batch norm) and ``_layer`` (how one module of ``main`` is applied, given the labels).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError

LEAK = 0.2


def _d_plan(cfg: DCGANConfig) -> list[tuple[int, int, int, int, int, bool]]:
    """(in, out, kernel, stride, pad, batchnorm) for each of D's feature convolutions."""
    if cfg.arch == "imagenet32":
        widths = [2 * cfg.ndf, 2 * cfg.ndf, 4 * cfg.ndf, 4 * cfg.ndf, 8 * cfg.ndf, 8 * cfg.ndf]
        strides = [1, 2, 1, 2, 1, 2]
        chans = [cfg.nc, *widths]
        return [(chans[i], widths[i], 3, strides[i], 1, i > 0) for i in range(6)]
    # canonical: halve the resolution down to 4x4, doubling the width each time
    n = int(math.log2(cfg.image_size // 4))
    widths = [cfg.ndf * 2**i for i in range(n)]
    chans = [cfg.nc, *widths]
    return [(chans[i], widths[i], 4, 2, 1, i > 0) for i in range(n)]


def _g_plan(cfg: DCGANConfig) -> list[tuple[str, int, int, int, int, int]]:
    """(kind, in, out, kernel, stride, pad) for each of G's layers after the projection of z."""
    if cfg.arch == "imagenet32":
        w = [8 * cfg.ngf, 4 * cfg.ngf, 2 * cfg.ngf]
        return [
            ("up", w[0], w[0], 4, 2, 1),  # 8x8
            ("conv", w[0], w[1], 3, 1, 1),
            ("up", w[1], w[1], 4, 2, 1),  # 16x16
            ("conv", w[1], w[2], 3, 1, 1),
            ("up", w[2], w[2], 4, 2, 1),  # 32x32
            ("conv", w[2], cfg.nc, 3, 1, 1),
        ]
    n = int(math.log2(cfg.image_size // 4))
    widths = [cfg.ngf * 2 ** (n - 1 - i) for i in range(n)] + [cfg.nc]
    return [("up", widths[i], widths[i + 1], 4, 2, 1) for i in range(n)]


def _g_top_width(cfg: DCGANConfig) -> int:
    if cfg.arch == "imagenet32":
        return 8 * cfg.ngf
    return cfg.ngf * 2 ** (int(math.log2(cfg.image_size // 4)) - 1)


def expect_labels(net: nn.Module, labels: torch.Tensor | None, n: int) -> None:
    """``labels`` fit ``net``: None for an unconditional net, one class index per image for a conditional one.

    Only the presence and the shape are checked here (on every forward, so nothing that would wait for
    a GPU); ``dcgan.generate`` checks the values of labels a user gives.
    """
    what = "generator" if isinstance(net, Generator) else "discriminator"
    if not net.num_classes:
        if labels is not None:
            raise ConfigError(f"this {what} is unconditional: it takes no class labels")
        return
    if labels is None:
        raise ConfigError(f"this {what} is conditional ({net.num_classes} classes): it needs a class label per image")
    if labels.shape != (n,):
        raise ConfigError(f"labels of shape {tuple(labels.shape)} for {n} images: expected one class index per image")


class Generator(nn.Module):
    """z (N, nz, 1, 1) -> image (N, nc, S, S) in [-1, 1].

    Its hidden layers are named ``layer1`` (the projection of z, 4 x 4) ... ``layerK`` (the last
    before the output convolution), each the activation after its ReLU: ``forward_intermediates``
    returns them, and ``forward(z, masks)`` scales their feature maps, e.g. drops some (paper,
    section 6.3.1: "forgetting" to draw windows).
    """

    num_classes = 0  # unconditional

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        top = _g_top_width(cfg)
        extra = self._in_channels(cfg)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.nz + extra, top, 4, 1, 0, bias=False),  # top x 4 x 4
            self._norm(cfg, top),
            nn.ReLU(True),
        ]
        self._taps: dict[str, int] = {"layer1": len(layers) - 1}  # layer name -> index in main of its activation
        self.feature_channels = {"layer1": top}
        plan = _g_plan(cfg)
        for i, (kind, cin, cout, k, s, p) in enumerate(plan):
            conv = nn.ConvTranspose2d if kind == "up" else nn.Conv2d
            layers.append(conv(cin + extra, cout, k, s, p, bias=False))
            if i < len(plan) - 1:
                layers += [self._norm(cfg, cout), nn.ReLU(True)]
                self._taps[f"layer{i + 2}"] = len(layers) - 1
                self.feature_channels[f"layer{i + 2}"] = cout
        layers.append(nn.Tanh())  # nc x S x S, no batch norm on the output
        self.main = nn.Sequential(*layers)
        init_weights(self)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self._taps)

    def _in_channels(self, cfg: DCGANConfig) -> int:
        """Channels every convolution takes besides z or the previous layer's features."""
        return 0

    def _norm(self, cfg: DCGANConfig, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels)

    def _layer(self, module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """One module of ``main`` applied to ``x``."""
        return module(x)

    def forward(self, z: torch.Tensor, masks: dict[str, torch.Tensor] | None = None, *,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        """The images; ``masks`` maps layer names to (channels,) factors applied to that layer's
        feature maps (0 drops a map, 1 keeps it); ``labels`` the classes of a conditional G."""
        if not masks and not self.num_classes:
            expect_labels(self, labels, len(z))
            return self.main(z)
        return self.forward_with_intermediates(z, (), masks, labels=labels)[0]

    def forward_intermediates(self, z: torch.Tensor, names=None, masks: dict[str, torch.Tensor] | None = None, *,
                              labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Activations of the named layers (all hidden layers when ``names`` is None), after ``masks``."""
        return self.forward_with_intermediates(z, self.layer_names if names is None else names, masks,
                                               labels=labels)[1]

    def forward_with_intermediates(self, z: torch.Tensor, names, masks: dict[str, torch.Tensor] | None = None, *,
                                   labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The images and the named layers' activations, from one pass, after ``masks``."""
        expect_labels(self, labels, len(z))
        masks = masks or {}
        unknown = [n for n in [*names, *masks] if n not in self._taps]
        if unknown:
            raise ConfigError(f"unknown generator layer(s) {unknown}; this G has {', '.join(self.layer_names)}")
        scale = {self._taps[n]: m.reshape(1, -1, 1, 1).to(z) for n, m in masks.items()}
        wanted = {self._taps[n]: n for n in names}
        out: dict[str, torch.Tensor] = {}
        x = z
        for i, module in enumerate(self.main):
            x = self._layer(module, x, labels)
            if i in scale:
                x = x * scale[i]  # a new tensor: the next layer is a convolution, never in place
            if i in wanted:
                out[wanted[i]] = x
        return x, out


class FeatureTaps:
    """Named activations of a D whose feature layers are the modules of one ``main`` ``nn.Sequential``:
    ``_taps`` maps each layer's name to the index in ``main`` of its activation. Every family's D
    exposes its features this way, so the feature benchmarks read any of them alike.
    ``features_take_labels``: whether those activations depend on a class label as well as on the
    image (a conditional D that feeds its label to every layer).
    """

    num_classes = 0  # unconditional
    features_take_labels = False
    main: nn.Sequential
    _taps: dict[str, int]

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(self._taps)

    def _layer(self, module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """One module of ``main`` applied to ``x``."""
        return module(x)

    def forward_intermediates(self, x: torch.Tensor, names=None, *,
                              labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Activations of the named layers (all feature layers when ``names`` is None).

        Runs only as deep as the deepest requested layer.
        """
        if self.features_take_labels or labels is not None:
            expect_labels(self, labels, len(x))
        names = list(self.layer_names if names is None else names)
        unknown = [n for n in names if n not in self._taps]
        if unknown:
            raise ConfigError(
                f"unknown discriminator layer(s) {unknown}; this D has {', '.join(self.layer_names)}"
            )
        wanted = {self._taps[n]: n for n in names}
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.main[: max(wanted) + 1]):
            x = self._layer(module, x, labels)
            if i in wanted:
                # in-place LeakyReLU of the next block never touches this tensor (a conv comes first)
                out[wanted[i]] = x
        return out


class Discriminator(FeatureTaps, nn.Module):
    """image (N, nc, S, S) -> logit (N,).

    ``forward_intermediates`` (``FeatureTaps``) returns the activations after each feature
    convolution, named ``conv1`` ... ``convK``: the layers the feature benchmarks max-pool and
    concatenate. Never ``features_take_labels`` here.
    """

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        self._taps: dict[str, int] = {}  # layer name -> index in main of its activation
        plan = _d_plan(cfg)
        extra = self._in_channels(cfg)
        for i, (cin, cout, k, s, p, bn) in enumerate(plan):
            layers.append(nn.Conv2d(cin + extra, cout, k, s, p, bias=False))
            if bn:  # no batch norm on D's input layer
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(LEAK, inplace=True))
            self._taps[f"conv{i + 1}"] = len(layers) - 1
        self.feature_channels = {f"conv{i + 1}": plan[i][1] for i in range(len(plan))}
        layers.append(nn.Conv2d(plan[-1][1] + extra, 1, 4, 1, 0, bias=False))  # 1 x 1 x 1 logit
        self.main = nn.Sequential(*layers)
        init_weights(self)

    def _in_channels(self, cfg: DCGANConfig) -> int:
        """Channels every convolution takes besides the image or the previous layer's features."""
        return 0

    def forward(self, x: torch.Tensor, *, labels: torch.Tensor | None = None) -> torch.Tensor:
        expect_labels(self, labels, len(x))
        return self.main(x).flatten()


def init_weights(net: nn.Module) -> None:
    """The paper's init: conv weights N(0, 0.02); batch-norm gains N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:  # a class-conditional norm draws its own gains
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def sample_z(n: int, cfg: DCGANConfig, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """n latent vectors of shape (n, nz, 1, 1): N(0, 1) or U(-1, 1) as the config says.

    Drawn on the CPU from ``generator`` and then moved, so a seed gives the same z on any device.
    """
    shape = (n, cfg.nz, 1, 1)
    if cfg.z_dist == "uniform":
        z = torch.rand(shape, generator=generator) * 2 - 1
    else:
        z = torch.randn(shape, generator=generator)
    return z.to(device)


def indexed_z(indices, cfg: DCGANConfig, seed: int) -> torch.Tensor:
    """The latent vectors (len(indices), nz, 1, 1) of samples ``indices`` of a set drawn with ``seed``:
    sample i's z comes from a stream of its own, seeded by (seed, i) (numpy's SeedSequence), so it is
    the same whichever batch, process or share of the set draws it. (A torch generator per sample
    would not do: torch seeds its CPU generator with 32 bits, and 50,000 samples would collide.)"""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed {seed!r}: expected an integer >= 0")
    streams = [np.random.default_rng([seed, int(i)]) for i in indices]
    if cfg.z_dist == "uniform":
        rows = [g.random(cfg.nz, dtype=np.float32) * 2 - 1 for g in streams]
    else:
        rows = [g.standard_normal(cfg.nz, dtype=np.float32) for g in streams]
    return torch.from_numpy(np.stack(rows) if rows else np.empty((0, cfg.nz), np.float32)).view(-1, cfg.nz, 1, 1)
