"""SRGAN (Ledig et al., CVPR 2017): photo-realistic x2/x4/x8 super-resolution with a GAN.

The nets are in ``dcgan.models.srgan_nets`` (SRResNet G, VGG-style D, the pixel range and why), the
LR/HR pairs in ``dcgan.data.pairs`` (random HR crops of any registered data set, bicubic LR). Training
has the paper's two stages, a config setting (``stage``) so that a checkpoint says which model it holds:

- ``srresnet``: G alone on the content loss, no D (the paper's SRResNet, trained on MSE; it is also
  the initialisation of the GAN, "to avoid undesired local optima");
- ``gan``: D with the usual binary cross-entropy on HR (1) and G's SR (0), then G on the content loss
  plus 1e-3 times the adversarial loss -log D(G(LR)) (the paper's perceptual loss, section 2.2),
  G starting from a stage-1 run (``TrainConfig.init``, checked by ``check_init``).

Adam with lr 1e-4 and betas (0.9, 0.999) in both (paper, section 3.2); the GAN stage lowers the rate
tenfold for its second half, as the paper does (1e-4 for 10^5 updates, then 1e-5 for 10^5:
``learning_rate``). The half is of the run's ``epochs``: a run resumed with more epochs moves it.

The content loss (``content_loss``, either stage: the paper trains SRResNet-VGG54 too) is the pixel MSE
(``mse``, the paper's SRResNet-MSE and SRGAN-MSE), the paper's VGG54 feature loss (``vgg19``), or the
same idea on the FID Inception's features (``inception``, not the paper's); ``dcgan.models.content_loss``
says how each is computed and why. A feature loss's run logs it as ``content``, beside the pixel MSE
and PSNR every run logs.

Every 8-bit batch is cropped and downsampled on the device: crop positions are drawn from the run's
noise generator, so a resumed run crops exactly as an uninterrupted one. Each epoch's sample grid shows
the centre crops of the first training images, one row each: bicubic upsampling of the LR | G's SR | HR.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from dcgan.config import MAX_WIDTH, ModelConfig
from dcgan.data.pairs import bicubic, centre_corners, check_hr_source, lr_hr_pairs, random_corners
from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.models.content_loss import CONTENT_LOSSES, MIN_SIDE, content_loss
from dcgan.models.family import Family, images_through, register_family, to_unit
from dcgan.models.srgan_nets import SRDiscriminator, SRResNet
from dcgan.params import param

SCALES = (2, 4, 8)
STAGES = ("srresnet", "gan")
ADVERSARIAL_WEIGHT = 1e-3  # paper, section 2.2: the perceptual loss
LR_DROP = 0.1  # paper, section 3.2: 1e-4, then 1e-5 for the GAN's second half
GRID_IMAGES = 8  # rows of the per-epoch grid


@dataclass(frozen=True)
class SRGANConfig(ModelConfig):
    family: ClassVar[str] = "srgan"

    image_size: int = param(128, "side the data set's images are loaded at (short side resized, centre-cropped); "
                                 "the HR crops are taken from them, so it should not exceed their own size",
                            low=1, high=MAX_WIDTH)
    scale: Literal[SCALES] = param(4, "upscaling factor (paper: 4)")
    hr_size: int = param(96, "side of the HR training crops, a multiple of scale (paper: 96)", low=1, high=MAX_WIDTH)
    blocks: int = param(16, "residual blocks of G (paper: 16)", low=1, high=256)
    ngf: int = param(64, "G's width (paper: 64)", low=1, high=MAX_WIDTH)
    ndf: int = param(64, "D's first width, doubled every two convolutions (paper: 64)", low=1, high=MAX_WIDTH)
    stage: Literal[STAGES] = param("srresnet", "srresnet: G alone on the content loss; gan: G and D, content loss "
                                               "plus 1e-3 x adversarial loss")
    content_loss: Literal[CONTENT_LOSSES] = param("mse", "G's content loss: mse (pixel MSE); vgg19 (the paper's VGG54: "
                                                         "MSE of VGG-19's conv5_4 features / 12.75); inception (not "
                                                         "the paper's: the same on the FID Inception's Conv2d_4a map)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.hr_size % self.scale:
            raise ConfigError(f"parameter hr_size={self.hr_size}: expected a multiple of scale={self.scale}")
        if self.hr_size > self.image_size:
            raise ConfigError(f"parameter hr_size={self.hr_size}: expected at most image_size={self.image_size}, "
                              "the side the training images are loaded at")
        if self.hr_size < MIN_SIDE[self.content_loss]:
            raise ConfigError(f"parameter hr_size={self.hr_size}: expected at least {MIN_SIDE[self.content_loss]} "
                              f"with content_loss={self.content_loss} (a smaller crop has no feature map left)")

    def describe(self) -> str:
        """The nets in one line, for the report card."""
        return (f"SRResNet x{self.scale}, {self.blocks} residual blocks of width {self.ngf}; VGG-style D of width "
                f"{self.ndf}; {self.hr_size} px HR crops of {self.image_size} px images, {self.nc} channel(s); stage "
                f"{self.stage}, content loss {self.content_loss}")


def super_resolve(G: SRResNet, lr_u8: torch.Tensor, *, batch_size: int, device: torch.device | str,
                  precision: str = "fp32") -> torch.Tensor:
    """G's SR images of uint8 LR images, float32 on the CPU in [-1, 1] (``images_through``: in eval mode,
    batch norm's running statistics)."""
    return images_through(G, lr_u8, batch_size=batch_size, device=device, precision=precision)


def psnr(mse: float) -> float:
    """PSNR in dB of a mean squared error of images in [-1, 1] (peak-to-peak 2): on all channels and
    pixels, not the Y channel with a shaved border of the paper's tables."""
    return 10 * math.log10(4 / max(mse, 1e-12))


@register_family
class SRGAN(Family):
    summary = "SRGAN super-resolution (Ledig et al. 2017): SRResNet G, VGG-style D; stage srresnet, then gan"
    Config = SRGANConfig
    Generator = SRResNet
    Discriminator = SRDiscriminator
    generator_input = "lr"
    adam = (1e-4, 0.9)  # paper, section 3.2: Adam, beta1 0.9, lr 1e-4

    @classmethod
    def stats(cls, cfg: SRGANConfig) -> tuple[str, ...]:
        """The content loss if it is a feature loss (``content``), then the pixel MSE and PSNR of the batch's
        SR against its HR; in the gan stage first the adversarial step's numbers, D(x) being D(HR) and
        D(G(z)) D(G(LR))."""
        own = ("mse", "psnr") if cfg.content_loss == "mse" else ("content", "mse", "psnr")
        return own if cfg.stage == "srresnet" else (*super().stats(cfg), *own)

    @classmethod
    def frozen(cls, cfg: SRGANConfig) -> dict[str, torch.nn.Module]:
        """The content loss, a pretrained feature net for ``vgg19`` and ``inception`` (``content_loss``)."""
        return {"content": content_loss(cfg.content_loss)}

    @classmethod
    def example_input(cls, cfg: SRGANConfig, n: int) -> torch.Tensor:
        """LR images of the training images' side over the scale: what the sr task feeds G for a data set."""
        side = max(1, cfg.image_size // cfg.scale)
        return torch.zeros(n, cfg.nc, side, side)

    @classmethod
    def check_data(cls, cfg: SRGANConfig, data) -> None:
        check_hr_source(data, cfg.image_size, "--image-size")

    @classmethod
    def learning_rate(cls, cfg: SRGANConfig, lr: float, step: int, total: int) -> float:
        """The GAN stage's second half runs at a tenth of the rate (paper, section 3.2); SRResNet's is constant."""
        return lr * LR_DROP if cfg.stage == "gan" and step >= total // 2 else lr

    @classmethod
    def trains_discriminator(cls, cfg: SRGANConfig) -> bool:
        return cfg.stage == "gan"

    @classmethod
    def check_init(cls, cfg: SRGANConfig, init: SRGANConfig, path) -> None:
        """G's weights carry over between stages (and hr_size, which G's convolutions do not depend on,
        may differ): the scale, the channels, the width and the blocks must match."""
        for key, what in (("scale", "upscales x{}"), ("nc", "has {} channel(s)"), ("ngf", "has width {}"),
                          ("blocks", "has {} residual blocks")):
            if getattr(init, key) != getattr(cfg, key):
                raise ConfigError(f"--init {path}: its generator {what.format(getattr(init, key))}, this run's "
                                  f"{what.format(getattr(cfg, key))}")

    @classmethod
    def batch(cls, t, images: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, HR) uint8: random HR crops, their positions drawn from the run's noise generator."""
        cfg = t.cfg.model
        corners = random_corners(len(images), images.shape[-1], cfg.hr_size, t.noise)
        return lr_hr_pairs(images, cfg.hr_size, cfg.scale, corners)

    @classmethod
    def step(cls, t, lr_u8: torch.Tensor, hr_u8: torch.Tensor) -> dict[str, float]:
        """One step: G alone on the content loss (srresnet), or D then G (gan)."""
        lr, hr = to_unit(lr_u8, t.cfg.channels_last), to_unit(hr_u8, t.cfg.channels_last)
        numbers: dict[str, float] = {}

        def content(sr: torch.Tensor) -> torch.Tensor:
            loss = cls.content(t, sr, hr)
            numbers.update(cls.content_stats(t.cfg.model, loss, sr, hr))
            return loss

        if t.cfg.model.stage == "gan":
            stats = cls.adversarial_step(t, hr, lambda: t.G_train(lr), weight=ADVERSARIAL_WEIGHT, content=content)
        else:
            t.optG.zero_grad(set_to_none=True)
            with autocast(t.device, t.cfg.precision):
                sr = t.G_train(lr)
            content(sr).backward()
            t.optG.step()
            t.step += 1
            stats = {}
        return {**stats, **numbers}

    @classmethod
    def content(cls, t, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """G's content loss (``content_loss``): the trainer's frozen loss module, its net under the run's
        autocast precision, the loss in float32."""
        with autocast(t.device, t.cfg.precision):
            return t.frozen["content"](sr, hr)

    @staticmethod
    def content_stats(cfg: SRGANConfig, loss: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
        """The numbers a step logs of its content: a feature loss's value, the pixel MSE and its PSNR."""
        if cfg.content_loss == "mse":
            mse = loss.item()
            return {"mse": mse, "psnr": psnr(mse)}
        mse = F.mse_loss(sr.detach().float(), hr).item()
        return {"content": loss.item(), "mse": mse, "psnr": psnr(mse)}

    @classmethod
    def epoch_grid(cls, t) -> tuple[torch.Tensor, int]:
        """A row per image for the first ``GRID_IMAGES`` training images' centre crops: the bicubic
        upsampling of their LR, G's SR of it, the HR crop."""
        cfg = t.cfg.model
        images = torch.stack([t.data[i][0] for i in range(min(GRID_IMAGES, len(t.data)))])
        lr, hr = lr_hr_pairs(images, cfg.hr_size, cfg.scale, centre_corners(len(images), cfg.image_size, cfg.hr_size))
        sr = super_resolve(t.G, lr, batch_size=GRID_IMAGES, device=t.device, precision=t.cfg.precision)
        tiles = torch.stack([to_unit(bicubic(lr, cfg.hr_size), False), sr, to_unit(hr, False)], 1)
        return tiles.flatten(0, 1), 3
