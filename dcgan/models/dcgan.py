"""The unconditional DCGAN (Radford, Metz & Chintala 2016): the paper's nets (``dcgan.nets``) and step.

Its checkpoints hold a ``DCGANConfig`` and the two nets' weights; files written before model
families existed are DCGAN's.
"""
from __future__ import annotations

from dcgan.config import DCGANConfig
from dcgan.models.family import Family, register_family
from dcgan.nets import Discriminator, Generator


@register_family
class DCGAN(Family):
    summary = "unconditional DCGAN, the paper's nets and recipe (Radford et al. 2016)"
    Config = DCGANConfig
    Generator = Generator
    Discriminator = Discriminator
