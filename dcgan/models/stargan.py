"""StarGAN (Choi et al., CVPR 2018): one generator translating images among many domains.

A domain is a set of images sharing an attribute value. Two kinds (``domain_kind``):
- ``class``: the domains are classes of a labelled data set, one per image (``--domains cat,dog,deer``
  on CIFAR-10, the class folders of an AFHQ-style folder); D_cls is trained with the cross-entropy;
- ``attribute``: the domains are binary attributes, several per image (CelebA's ``Black_Hair,
  Blond_Hair, Brown_Hair, Male, Young``, the paper's); D_cls is trained with the binary cross-entropy.
The data set is loaded with those classes or attributes only (``data_options``), labels 0..K-1 in the
order given (or one 0/1 column per attribute).

The nets are in ``dcgan.models.stargan_nets``. The recipe (paper, section 3 and 4.3):
- D: WGAN-GP adversarial loss -D_src(x) + D_src(G(x, c)) + lambda_gp (||grad D_src(x_hat)|| - 1)^2 on
  random interpolates x_hat of real and translated images (Gulrajani et al. 2017), plus lambda_cls times
  the domain classification loss of D_cls on the real images and their own domains;
- G, once every ``n_critic`` D updates: -D_src(G(x, c)) + lambda_cls times D_cls's loss of the translated
  images against their target domains c + lambda_rec times the L1 reconstruction (cycle) loss
  |x - G(G(x, c), c')|, c' the image's own domain;
- the targets c of a batch are its own labels in a random order (the authors' code), drawn from the run's
  noise generator, as are the interpolation weights: a resumed run draws what an uninterrupted one did;
- Adam lr 1e-4, betas (0.5, 0.999); the rate constant for the first ``decay_from`` of the run, then
  decaying linearly to 0 (the paper: 10 epochs then 10 decaying on CelebA, 100k then 100k iterations
  on RaFD).

One step of the trainer is one D update on one batch (the paper counts iterations so); G's numbers are
logged on the steps that update G and are empty (NaN) on the others.

D is scored on the real, translated and interpolated images in one forward pass: it has no batch-
dependent layer (no batch norm), so the scores equal three separate passes', and under DDP one forward
and one backward keep every rank's gradient reduction in step. Each epoch's sample grid is a row per
training image: the input, then its translation into each domain (a class), or with each attribute
flipped (an attribute).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F

from dcgan.config import MAX_WIDTH, ModelConfig
from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.models.family import Family, images_through, register_family, to_unit
from dcgan.models.stargan_nets import PatchDiscriminator, Translator
from dcgan.params import param

DOMAIN_KINDS = ("class", "attribute")
GRID_IMAGES = 8  # rows of the per-epoch grid


@dataclass(frozen=True)
class StarGANConfig(ModelConfig):
    family: ClassVar[str] = "stargan"

    image_size: int = param(128, "image side in pixels, a power of two (paper: 128)", low=16, high=1024)
    domains: tuple[str, ...] = param((), "the domains, in label order: class names (domain_kind class) or "
                                         "attribute names (domain_kind attribute)", nonempty=True)
    domain_kind: Literal[DOMAIN_KINDS] = param("class", "class: one domain per image (cross-entropy); attribute: "
                                                        "binary attributes, several per image (binary cross-entropy)")
    ngf: int = param(64, "G's first width; 4x at the bottleneck (paper: 64)", low=1, high=MAX_WIDTH)
    ndf: int = param(64, "D's first width, doubled by each stride-2 convolution (paper: 64)", low=1, high=MAX_WIDTH)
    res_blocks: int = param(6, "residual blocks of G (paper: 6)", low=0, high=64)
    lambda_cls: float = param(1.0, "weight of the domain classification losses (paper: 1)", low=0)
    lambda_rec: float = param(10.0, "weight of G's reconstruction (cycle) L1 loss (paper: 10)", low=0)
    lambda_gp: float = param(10.0, "weight of D's gradient penalty (paper: 10)", low=0)
    n_critic: int = param(5, "D updates per G update (paper: 5)", low=1, high=100)
    decay_from: float = param(0.5, "fraction of the run after which the rate decays linearly to 0 (paper: half)",
                              low=0, high=1)

    def __post_init__(self) -> None:
        if isinstance(self.domains, list):  # read back from JSON
            object.__setattr__(self, "domains", tuple(self.domains))
        super().__post_init__()
        if self.image_size & (self.image_size - 1):
            raise ConfigError(f"parameter image_size={self.image_size}: expected a power of two (D halves it down "
                              "to 2x2 patches)")
        if len(set(self.domains)) != len(self.domains):
            raise ConfigError(f"parameter domains={','.join(self.domains)}: a domain is named twice")
        if self.domain_kind == "class" and len(self.domains) < 2:
            raise ConfigError(f"parameter domains={','.join(self.domains)}: expected at least two classes to "
                              "translate between")
        if len(self.domains) > MAX_WIDTH:
            raise ConfigError(f"parameter domains: {len(self.domains)} domains, expected at most {MAX_WIDTH}")

    @property
    def multi_label(self) -> bool:
        return self.domain_kind == "attribute"

    def describe(self) -> str:
        """The nets in one line, for the report card."""
        what = "attributes" if self.multi_label else "classes"
        return (f"StarGAN translator of {self.image_size} px, {self.nc} channel(s), among {len(self.domains)} "
                f"{what} ({', '.join(self.domains)}); G width {self.ngf}, {self.res_blocks} residual blocks; "
                f"PatchGAN D width {self.ndf}")


def translate(G: Translator, images: torch.Tensor, targets: torch.Tensor, *, batch_size: int,
              device: torch.device | str, precision: str = "fp32") -> torch.Tensor:
    """G's translations of images (uint8, or float in [-1, 1]: a translation translated again, the cycle
    back) into ``targets`` (a domain index per image, or a 0/1 attribute row), float32 on the CPU in
    [-1, 1] (``images_through``)."""
    return images_through(G, images, targets, batch_size=batch_size, device=device, precision=precision)


def target_grid(labels: torch.Tensor, cfg: StarGANConfig) -> torch.Tensor:
    """The targets of each image's grid row, (N, K) of domain labels: every domain (class kind), or the
    image's own attributes with one flipped at a time (attribute kind)."""
    K = len(cfg.domains)
    if not cfg.multi_label:
        return torch.arange(K).expand(len(labels), K)
    flips = torch.eye(K, dtype=labels.dtype)
    return (labels[:, None, :] + flips[None]) % 2  # (N, K, K): row k flips attribute k


def gradient_penalty(scores: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean over images of (||d sum(scores) / d x_hat||_2 - 1)^2, the graph kept for D's backward
    (Gulrajani et al. 2017; the authors' code sums the patch scores of an image)."""
    grad, = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


@register_family
class StarGAN(Family):
    summary = "StarGAN (Choi et al. 2018): one G translating images among domains (classes or attributes)"
    Config = StarGANConfig
    Generator = Translator
    Discriminator = PatchDiscriminator
    uses_labels = True
    generator_input = "image"
    adam = (1e-4, 0.5)  # paper, section 4.3: Adam, beta1 0.5, beta2 0.999, lr 1e-4

    @classmethod
    def stats(cls, cfg: StarGANConfig) -> tuple[str, ...]:
        """D's four losses every step (the real and translated images' mean D_src, the classification loss
        on real images, the gradient penalty), G's three on the steps that update G."""
        return ("d_real", "d_fake", "d_cls", "d_gp", "g_fake", "g_cls", "g_rec")

    @classmethod
    def configure(cls, spec, **values) -> StarGANConfig:
        """Without ``domains``, the classes of a data set whose classes are known (all of them); an
        attribute run must name its attributes."""
        if "domains" not in values and values.get("domain_kind", "class") == "class":
            if not spec.class_names:
                raise ConfigError(f"data set {spec.name!r}: name the domains to translate between (--domains)")
            values["domains"] = tuple(spec.class_names)
        return super().configure(spec, **values)

    @classmethod
    def data_options(cls, cfg: StarGANConfig) -> dict:
        """The data set restricted to the domains, labels in their order."""
        return {"attrs": cfg.domains} if cfg.multi_label else {"classes": cfg.domains}

    @classmethod
    def check_data(cls, cfg: StarGANConfig, data) -> None:
        if data.labels is None:
            raise ConfigError(f"data set {data.name!r} has no labels: model family {cls.name!r} needs domains")

    @classmethod
    def example_input(cls, cfg: StarGANConfig, n: int) -> torch.Tensor:
        return torch.zeros(n, cfg.nc, cfg.image_size, cfg.image_size)

    @classmethod
    def example_labels(cls, G: Translator, n: int) -> torch.Tensor:
        """Targets to time G with: domains in turn (class kind), no attribute set (attribute kind)."""
        K = G.num_domains
        return torch.zeros(n, K, dtype=torch.long) if G.cfg.multi_label else torch.arange(n) % K

    @classmethod
    def log_panels(cls, cfg: StarGANConfig) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """D_src's scores (the Wasserstein estimate's terms and G's adversarial loss), the domain classification
        losses, the gradient penalty, the cycle's L1: each on its own scale."""
        return (("D_src", (("d_real", "-D_src(x)"), ("d_fake", "D_src(G(x, c))"), ("g_fake", "G: -D_src(G(x, c))"))),
                ("domain classification", (("d_cls", "D_cls on real images"), ("g_cls", "D_cls on G(x, c)"))),
                ("gradient penalty", (("d_gp", "(||grad D_src|| - 1)^2"),)),
                ("reconstruction", (("g_rec", "|x - G(G(x, c), c')|"),)))

    @classmethod
    def learning_rate(cls, cfg: StarGANConfig, lr: float, step: int, total: int) -> float:
        """Constant until ``decay_from`` of the run, then linearly down to 0 at its end (paper, 4.3)."""
        start = math.floor(cfg.decay_from * total)
        return lr if step < start else lr * (total - step) / max(1, total - start)

    @classmethod
    def classification_loss(cls, cfg: StarGANConfig, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if cfg.multi_label:
            return F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="sum") / len(logits)
        return F.cross_entropy(logits.float(), labels)

    @classmethod
    def step(cls, t, real_u8: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """One D update; a G update after every ``n_critic``-th."""
        cfg = t.cfg.model
        x = to_unit(real_u8, t.cfg.channels_last)
        n = len(x)
        targets = labels[torch.randperm(n, generator=t.noise).to(labels.device)]
        alpha = torch.rand(n, 1, 1, 1, generator=t.noise).to(t.device)

        # (1) D: WGAN-GP on real vs translated images, D_cls on the real images' own domains
        t.optD.zero_grad(set_to_none=True)
        with torch.no_grad(), autocast(t.device, t.cfg.precision):
            fake = t.G(x, labels=targets).float()
        x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
        with autocast(t.device, t.cfg.precision):
            src, logits = t.D_train(torch.cat([x, fake, x_hat]))
        src_real, src_fake, src_hat = src.float().split(n)
        d_real, d_fake = -src_real.mean(), src_fake.mean()
        d_cls = cls.classification_loss(cfg, logits[:n], labels)
        d_gp = gradient_penalty(src_hat, x_hat)
        (d_real + d_fake + cfg.lambda_cls * d_cls + cfg.lambda_gp * d_gp).backward()
        t.optD.step()
        t.step += 1
        numbers = {"d_real": d_real.item(), "d_fake": d_fake.item(), "d_cls": d_cls.item(), "d_gp": d_gp.item(),
                   "g_fake": math.nan, "g_cls": math.nan, "g_rec": math.nan}
        if t.step % cfg.n_critic:
            return numbers

        # (2) G: fool D_src, be classified as the target, come back to x when translated to its own domain
        t.optG.zero_grad(set_to_none=True)
        t.D.requires_grad_(False)
        with autocast(t.device, t.cfg.precision):
            fake = t.G_train(x, labels=targets)
            src, logits = t.D(fake)  # the bare module: no all-reduce of D's (absent) gradients
            rec = t.G(fake, labels=labels)  # one DDP forward a backward; G's gradients are reduced all the same
        g_fake = -src.float().mean()
        g_cls = cls.classification_loss(cfg, logits, targets)
        g_rec = (x - rec.float()).abs().mean()
        (g_fake + cfg.lambda_cls * g_cls + cfg.lambda_rec * g_rec).backward()
        t.D.requires_grad_(True)
        t.optG.step()
        return {**numbers, "g_fake": g_fake.item(), "g_cls": g_cls.item(), "g_rec": g_rec.item()}

    @classmethod
    def epoch_grid(cls, t) -> tuple[torch.Tensor, int]:
        """A row per one of the first ``GRID_IMAGES`` training images: it, then its translation into each
        domain (``target_grid``)."""
        cfg = t.cfg.model
        items = [t.data[i] for i in range(min(GRID_IMAGES, len(t.data)))]
        images = torch.stack([im for im, _ in items])
        labels = torch.stack([torch.as_tensor(y) for _, y in items])
        targets = target_grid(labels, cfg)  # (N, K) or (N, K, K)
        K = len(cfg.domains)
        fakes = translate(t.G, images.repeat_interleave(K, 0), targets.flatten(0, 1), batch_size=64,
                          device=t.device, precision=t.cfg.precision).unflatten(0, (len(images), K))
        tiles = torch.cat([to_unit(images, False)[:, None], fakes], 1)
        return tiles.flatten(0, 1), K + 1
