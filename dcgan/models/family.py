"""A model family: its config, its nets, its training step and what its checkpoints hold.

A family is a class registered in ``FAMILIES`` under its config's ``family`` name::

    @register_family
    class DCGAN(Family):
        Config = DCGANConfig
        Generator = Generator
        Discriminator = Discriminator

The trainer, the checkpoints and the CLI ask the family of a config (``family_of``) for its nets and
its step, so a new family plugs in by registration, never by ``if model == ...`` in their code. A
config serialises with its family's name (``DCGANConfig.to_dict``), and ``config_from_dict`` reads
one back as its family's config: files written before families existed hold no name and are
DCGAN's.

The step is the paper's (pytorch/examples' dcgan): D on a real batch (target 1) and on G(z) (target
0), then G against D on the same fakes (target 1), Adam for both. A family that trains on labels
(``uses_labels``) gets each batch's classes, and its fakes are drawn at the same classes (the DCGAN
authors' conditional MNIST script, dcgan_code/mnist/train_cond_dcgan.py, does so: real and fake
images meet D at one class mix). A family changes what D says through one hook, ``judge``: D's
logit for a batch, and any loss D's other heads add (an auxiliary classifier's).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from dcgan.config import DCGANConfig, known_keys
from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.nets import Discriminator, Generator, sample_z
from dcgan.registry import Registry

if TYPE_CHECKING:  # the step reads the trainer's nets, optimisers and noise; the trainer imports this module
    from dcgan.data import ImageDataset
    from dcgan.data.registry import DatasetSpec
    from dcgan.train import Trainer


class Family:
    """The declarations of one GAN family; everything is a class attribute or a classmethod.

    ``uses_labels``: whether its step trains on the data set's class labels (then every batch comes
    with them, and the data set must be labelled). ``settings``: the config fields a user sets beyond
    the DCGAN ones (the CLI's family options).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type[DCGANConfig]]
    Generator: ClassVar[type[Generator]]
    Discriminator: ClassVar[type[Discriminator]]
    uses_labels: ClassVar[bool] = False

    @classmethod
    def configure(cls, spec: "DatasetSpec", **values) -> DCGANConfig:
        """The config for training on data set ``spec`` with ``values`` (a setting the family does not
        have is a one-line error naming the family)."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"model family {cls.name!r} has no setting {', '.join(unknown)}")
        return cls.Config(**values)

    @classmethod
    def check_data(cls, cfg: DCGANConfig, data: "ImageDataset") -> None:
        """Refuse, before training, a data set the config cannot be trained on."""

    @classmethod
    def grid(cls, cfg: DCGANConfig, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """A sample grid from the fixed ``z``: (z, labels, tiles a row; None: a square)."""
        return z, None, None

    # ---- the training step ----------------------------------------------------------------------
    @classmethod
    def judge(cls, D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(D's logit per image, the loss D's other heads add or None), under the caller's autocast."""
        return D(x, labels=labels), None

    @classmethod
    def step(cls, t: "Trainer", real_u8: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """One optimisation step of D then G on a batch of uint8 images (and their classes, which the
        batch's fakes are drawn at too)."""
        fmt = torch.channels_last if t.cfg.channels_last else torch.contiguous_format
        real = (real_u8.float() / 127.5 - 1).contiguous(memory_format=fmt)
        n = real.shape[0]
        ones = torch.ones(n, device=t.device)
        zeros = torch.zeros(n, device=t.device)
        z = sample_z(n, t.cfg.model, t.noise, t.device)

        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        t.optD.zero_grad(set_to_none=True)
        with autocast(t.device, t.cfg.precision):
            out_real, extra_real = cls.judge(t.D_train, real, labels)
            loss_real = _plus(t.loss(out_real.float(), ones), extra_real)
        loss_real.backward()
        with autocast(t.device, t.cfg.precision):
            fake = t.G_train(z, labels=labels)
            out_fake, extra_fake = cls.judge(t.D_train, fake.detach(), labels)
            loss_fake = _plus(t.loss(out_fake.float(), zeros), extra_fake)
        loss_fake.backward()
        t.optD.step()

        # (2) G: maximise log D(G(z)) on the same fakes, D frozen
        t.optG.zero_grad(set_to_none=True)
        t.D.requires_grad_(False)
        with autocast(t.device, t.cfg.precision):
            out_g, extra_g = cls.judge(t.D, fake, labels)  # the bare module: no all-reduce of D's gradients
            loss_g = _plus(t.loss(out_g.float(), ones), extra_g)
        loss_g.backward()
        t.D.requires_grad_(True)
        t.optG.step()
        t.step += 1
        return {
            "loss_d": (loss_real + loss_fake).item(),
            "loss_g": loss_g.item(),
            "d_x": torch.sigmoid(out_real.float()).mean().item(),
            "d_g_z1": torch.sigmoid(out_fake.float()).mean().item(),
            "d_g_z2": torch.sigmoid(out_g.float()).mean().item(),
        }


def _plus(loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return loss if extra is None else loss + extra


FAMILIES: Registry[type[Family]] = Registry("model family", error=ConfigError)


def register_family(cls: type[Family]) -> type[Family]:
    """Register a family under its config's ``family`` name (the name its configs serialise with)."""
    return FAMILIES.add(cls.Config.family, cls)


def family_of(cfg: DCGANConfig) -> type[Family]:
    """The family a config belongs to."""
    family = FAMILIES.get(cfg.family)
    if type(cfg) is not family.Config:
        raise ConfigError(f"a {type(cfg).__name__} is no config of model family {family.name!r}")
    return family


def config_from_dict(d: dict) -> DCGANConfig:
    """A config from its dict (``to_dict``): its family's config class; no ``family`` key means DCGAN's."""
    if not isinstance(d, dict):
        raise ConfigError(f"model config is a {type(d).__name__}, expected a dict")
    rest = dict(d)
    name = rest.pop("family", DCGANConfig.family)
    if not isinstance(name, str):
        raise ConfigError(f"model config's family is a {type(name).__name__}, expected a name")
    family = FAMILIES.get(name)
    return family.Config(**known_keys(family.Config, rest, f"{name} model config"))


def build_net(kind: str, cfg: DCGANConfig) -> nn.Module:
    """A freshly initialised ``generator`` or ``discriminator`` of the config's family."""
    family = family_of(cfg)
    if kind == "generator":
        return family.Generator(cfg)
    if kind == "discriminator":
        return family.Discriminator(cfg)
    raise ValueError(f"kind {kind!r}: expected generator or discriminator")


def check_classes(num_classes: int, dataset: str, data_classes: int | None, what: str) -> None:
    """A model conditioned on ``num_classes`` classes (0: unconditional) fits a data set of
    ``data_classes`` classes (None: unlabelled) only with as many; ``what`` names the model in the error."""
    if num_classes and data_classes is not None and data_classes != num_classes:
        raise ConfigError(f"{what} is conditioned on {num_classes} classes, data set {dataset!r} has "
                          f"{data_classes}: use the data set it was trained on")
