"""The model configuration stored inside every checkpoint.

A checkpoint carries its ``DCGANConfig``, so ``g.pt`` and ``d.pt`` can be rebuilt without the
training command that made them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dcgan.errors import ConfigError

ARCHS = ("dcgan", "imagenet32")
"""``dcgan``: the canonical 4x4-kernel DCGAN (pytorch/examples, dcgan.torch).
``imagenet32``: the authors' ImageNet-32 discriminator behind the paper's CIFAR-10 number (six 3x3
convolutions, widths 128,128,256,256,512,512, strides 1,2,1,2,1,2) with a mirrored generator."""

IMAGE_SIZES = {"dcgan": (32, 64, 128), "imagenet32": (32,)}
Z_DISTS = ("normal", "uniform")


@dataclass(frozen=True)
class DCGANConfig:
    image_size: int = 64
    nc: int = 3  # image channels
    nz: int = 100  # latent size (paper: 100)
    ngf: int = 64  # generator width
    ndf: int = 64  # discriminator width
    arch: str = "dcgan"
    z_dist: str = "normal"  # paper: uniform; pytorch/examples and most reproductions: normal

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.image_size not in IMAGE_SIZES[self.arch]:
            sizes = ", ".join(map(str, IMAGE_SIZES[self.arch]))
            raise ConfigError(
                f"image size {self.image_size} is not supported by arch {self.arch!r}; expected {sizes}"
            )
        if self.nc not in (1, 3):
            raise ConfigError(f"nc={self.nc}: expected 1 (grey) or 3 (RGB) channels")
        if self.z_dist not in Z_DISTS:
            raise ConfigError(f"z_dist={self.z_dist!r}: expected one of {', '.join(Z_DISTS)}")
        for name in ("nz", "ngf", "ndf"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: expected a positive integer")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DCGANConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config keys {sorted(unknown)}; expected {sorted(known)}")
        return cls(**d)
