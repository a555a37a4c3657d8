"""The conditional DCGAN (c-GAN): G and D are given the class label, so a user asks for "a sneaker".

The nets are the DCGAN's (``dcgan.nets``: strided convolutions, batch norm where the paper puts it,
no hidden fully connected layer, ReLU/Tanh in G, LeakyReLU(0.2) in D, weights N(0, 0.02)) with the
label brought in one of these ways.

G (``g_cond``):
- ``concat``: the one-hot label concatenated to z and, as constant maps, to the input of every later
  convolution: the DCGAN authors' conditional MNIST model (dcgan_code/mnist/train_cond_dcgan.py,
  after Mirza & Osindero 2014), its fully connected layers replaced by the DCGAN's convolutions.
- ``cbn``: class-conditional batch norm: each batch norm of G normalises without gain and bias of its
  own and takes a gain and a bias looked up per class (de Vries et al. 2017; the generator of Miyato &
  Koyama 2018). Gains start N(1, 0.02) and biases 0 for every class, the paper's batch-norm init.

D (``d_cond``):
- ``concat``: one-hot label maps concatenated to the image and to every hidden layer's feature maps
  before each convolution (the authors' ``conv_cond_concat``). D's features then depend on the
  label: they are no representation of an image alone (``features_take_labels``).
- ``projection`` (Miyato & Koyama 2018): logit = psi(phi(x)) + <embed(y), phi(x)>, phi(x) the last
  4x4 feature map flattened and psi the DCGAN's final 4x4 convolution (a linear map of phi(x)); the
  inner product is a class-specific 4x4 kernel added to psi's. Embeddings start N(0, 0.02).
- ``acgan`` (Odena, Olah & Shlens 2017): D's logit stays unconditional and an auxiliary classifier, a
  4x4 convolution from the last feature map to the class logits, is trained with the cross-entropy
  of the real and the generated images' classes; G adds the same cross-entropy on its fakes.

Defaults: ``concat`` G and ``projection`` D. Projection, because Miyato & Koyama's projection D beat
the concat and AC-GAN discriminators on ImageNet, and its features are of the image alone (the
linear probe applies); concat G, because under the paper's recipe it drew class-dependent samples
within 300 steps on Fashion-MNIST where a cbn G's per-class gains and biases, which start equal for
every class, had barely moved (docs/experiments/cgan-smoke.md). Which pairing is best at equal
training time is still to measure. The checkpoints of the family hold a ``CDCGANConfig``: the DCGAN
sizes, ``num_classes``, ``g_cond`` and ``d_cond``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcgan.config import MAX_WIDTH, DCGANConfig
from dcgan.errors import ConfigError
from dcgan.generate import class_rows
from dcgan.models.family import Family, check_classes, register_family
from dcgan.nets import Discriminator, Generator, expect_labels, init_weights
from dcgan.params import param

G_CONDS = ("concat", "cbn")
D_CONDS = ("concat", "projection", "acgan")


@dataclass(frozen=True)
class CDCGANConfig(DCGANConfig):
    family: ClassVar[str] = "cdcgan"

    num_classes: int = param(10, "classes the label takes: the training data set's (at most a net's widest layer)",
                             low=2, high=MAX_WIDTH)
    g_cond: Literal[G_CONDS] = param("concat", "how G takes the label: concat (one-hot, to z and every layer) or "
                                               "cbn (class-conditional batch norm)")
    d_cond: Literal[D_CONDS] = param("projection", "how D takes the label: concat (label maps at every layer), "
                                                   "projection (Miyato & Koyama 2018) or acgan (a class head)")


class ClassBatchNorm2d(nn.Module):
    """Batch norm with a gain and a bias per class: ``forward(x, labels)``."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.norm(x) * self.gain(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


def label_maps(labels: torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """The one-hot labels as ``num_classes`` constant maps of ``like``'s size and dtype."""
    onehot = F.one_hot(labels, num_classes).to(like.dtype)
    return onehot[:, :, None, None].expand(-1, -1, *like.shape[2:])


class _Conditioned:
    """What a conditional G and D share: the label reaches each module of ``main`` as ``_concat`` says
    (label maps before every convolution) or through the module (a class-conditional batch norm)."""

    num_classes: int
    _concat: bool

    def _layer(self, module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if isinstance(module, ClassBatchNorm2d):
            return module(x, labels)
        if self._concat and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            x = torch.cat([x, label_maps(labels, self.num_classes, x)], 1)
        return module(x)


class ConditionalGenerator(_Conditioned, Generator):
    """(z (N, nz, 1, 1), labels (N,)) -> image (N, nc, S, S): the DCGAN G with the label brought in
    by ``cfg.g_cond``; its layers, masks and intermediates are the DCGAN G's."""

    def __init__(self, cfg: CDCGANConfig):
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        self._concat = cfg.g_cond == "concat"

    def _in_channels(self, cfg: CDCGANConfig) -> int:
        return cfg.num_classes if cfg.g_cond == "concat" else 0

    def _norm(self, cfg: CDCGANConfig, channels: int) -> nn.Module:
        return ClassBatchNorm2d(channels, cfg.num_classes) if cfg.g_cond == "cbn" else nn.BatchNorm2d(channels)


class ConditionalDiscriminator(_Conditioned, Discriminator):
    """(image (N, nc, S, S), labels (N,)) -> logit (N,): the DCGAN D with the label brought in by
    ``cfg.d_cond``. ``forward(x, labels=y, classes=True)`` returns ``(logit, class logits (N,
    num_classes))``, the class logits None unless the D has an auxiliary classifier (acgan)."""

    def __init__(self, cfg: CDCGANConfig):
        super().__init__(cfg)
        self.num_classes = cfg.num_classes
        self._concat = cfg.d_cond == "concat"
        self.features_take_labels = self._concat
        width = self.feature_channels[self.layer_names[-1]]  # (width) x 4 x 4: phi(x)
        if cfg.d_cond == "projection":
            self.embed = nn.Embedding(cfg.num_classes, width * 4 * 4)
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        elif cfg.d_cond == "acgan":
            self.classifier = nn.Conv2d(width, cfg.num_classes, 4, 1, 0, bias=False)  # num_classes x 1 x 1
            init_weights(self.classifier)

    def _in_channels(self, cfg: CDCGANConfig) -> int:
        return cfg.num_classes if cfg.d_cond == "concat" else 0

    def forward(self, x: torch.Tensor, *, labels: torch.Tensor | None = None, classes: bool = False):
        if labels is not None or self.cfg.d_cond != "acgan":  # an AC-GAN's logit takes no label
            expect_labels(self, labels, len(x))
        h = x
        for module in self.main[:-1]:
            h = self._layer(module, h, labels)
        logit = self._layer(self.main[-1], h, labels).flatten()
        if self.cfg.d_cond == "projection":
            logit = logit + (self.embed(labels) * h.flatten(1)).sum(1)
        if not classes:
            return logit
        return logit, self.classifier(h).flatten(1) if self.cfg.d_cond == "acgan" else None


@register_family
class ConditionalDCGAN(Family):
    summary = "conditional DCGAN: G and D given the class label (concat/cbn G; concat/projection/acgan D)"
    Config = CDCGANConfig
    Generator = ConditionalGenerator
    Discriminator = ConditionalDiscriminator
    uses_labels = True

    @classmethod
    def configure(cls, spec, **values) -> CDCGANConfig:
        """The data set's number of classes unless given; a data set without labels is refused."""
        if spec.num_classes is None:
            raise ConfigError(f"data set {spec.name!r} has no labels: model family {cls.name!r} needs a labelled "
                              "data set")
        cfg = super().configure(spec, **{"num_classes": spec.num_classes, **values})
        check_classes(cfg.num_classes, spec.name, spec.num_classes, f"num_classes={cfg.num_classes}")
        return cfg

    @classmethod
    def check_data(cls, cfg: CDCGANConfig, data) -> None:
        if data.labels is None:
            raise ConfigError(f"data set {data.name!r} has no labels: model family {cls.name!r} needs a labelled "
                              "data set")
        check_classes(cfg.num_classes, data.name, data.num_classes, f"the model (num_classes={cfg.num_classes})")

    @classmethod
    def grid(cls, cfg: CDCGANConfig, z: torch.Tensor):
        """One row per class, the first ``ceil(len(z) / num_classes)`` z as its columns."""
        columns = math.ceil(len(z) / cfg.num_classes)
        rows, labels = class_rows(z[:columns], cfg.num_classes)
        return rows, labels, columns

    @classmethod
    def judge(cls, D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None):
        logit, class_logits = D(x, labels=labels, classes=True)
        return logit, None if class_logits is None else F.cross_entropy(class_logits.float(), labels)
