"""The model configuration stored inside every checkpoint.

A checkpoint carries its ``DCGANConfig`` (or the config of another model family, see ``dcgan.models``),
so ``g.pt`` and ``d.pt`` can be rebuilt without the training command that made them. Every family's
config is a ``ModelConfig``: the image size and channels the data is loaded at, and the family's name.
The GANs of z (DCGAN, the conditional DCGAN) share ``DCGANConfig``; a family whose G takes something
else (SRGAN's low-resolution image) declares only what its nets have, so no checkpoint records a
latent size or a z distribution its nets never had.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Literal

from dcgan.errors import ConfigError
from dcgan.params import Params, param

ARCHS = ("dcgan", "imagenet32")
"""``dcgan``: the canonical 4x4-kernel DCGAN (pytorch/examples, dcgan.torch).
``imagenet32``: the authors' ImageNet-32 discriminator behind the paper's CIFAR-10 number (six 3x3
convolutions, widths 128,128,256,256,512,512, strides 1,2,1,2,1,2) with a mirrored generator."""

IMAGE_SIZES = {"dcgan": (32, 64, 128), "imagenet32": (32,)}
Z_DISTS = ("normal", "uniform")


MAX_WIDTH = 4096
"""Upper bound of nz, ngf and ndf: 32 times the paper's widest net (ngf 128), so that a mistyped width
(an extra zero or two) is refused here rather than failing in a multi-gigabyte allocation."""


@dataclass(frozen=True)
class ModelConfig(Params):
    """What every model family's config has: the side and channels its training images are loaded at."""

    family: ClassVar[str] = ""  # the model family (dcgan.models) whose config this is, written with it

    image_size: int = param(64, "image side in pixels, the size the data set is loaded at", low=1)
    nc: Literal[1, 3] = param(3, "image channels: 1 grey, 3 RGB")

    def describe(self) -> str:
        """The nets in one line, for the report card (each family says more)."""
        return f"{self.image_size}x{self.image_size} px, {self.nc} channel(s)"

    def to_dict(self) -> dict:
        """The fields and the family's name; ``dcgan.models.config_from_dict`` reads it back."""
        return {"family": self.family, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class DCGANConfig(ModelConfig):
    family: ClassVar[str] = "dcgan"

    image_size: int = param(64, "image side in pixels; the sizes an arch supports: IMAGE_SIZES", low=1)
    nz: int = param(100, "latent size (paper: 100)", low=1, high=MAX_WIDTH)
    ngf: int = param(64, "generator width", low=1, high=MAX_WIDTH)
    ndf: int = param(64, "discriminator width", low=1, high=MAX_WIDTH)
    arch: Literal[ARCHS] = param("dcgan", "the network family, see ARCHS")
    z_dist: Literal[Z_DISTS] = param("normal", "paper: uniform; pytorch/examples and most reproductions: normal")

    def describe(self) -> str:
        """The nets in one line, for the report card."""
        return (f"{self.arch}: {self.image_size}x{self.image_size} px, {self.nc} channel(s), z of {self.nz} "
                f"({self.z_dist}), G width ngf {self.ngf}, D width ndf {self.ndf}")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size not in IMAGE_SIZES[self.arch]:
            sizes = ", ".join(map(str, IMAGE_SIZES[self.arch]))
            raise ConfigError(
                f"image size {self.image_size} is not supported by arch {self.arch!r}; expected {sizes}"
            )


def known_keys(cls, d, what: str) -> dict:
    """``d`` as keyword arguments of dataclass ``cls``: a dict of its field names, else a ConfigError.

    Keys left out take their defaults, so files written before a field was added still load.
    """
    if not isinstance(d, dict):
        raise ConfigError(f"{what} is a {type(d).__name__}, expected a dict of {cls.__name__} fields")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"unknown {what} keys {sorted(map(str, unknown))}; expected {sorted(known)}")
    return d
