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

A family whose training is not that step (SRGAN: G upsamples a low-resolution image) declares what
differs through these hooks, and the trainer stays the same for every family:
- ``batch``: a step's arguments made from a batch of the data set's uint8 images (and classes);
- ``step``: the optimisation step on them, returning the numbers ``stats`` names (``log.csv``'s columns);
- ``epoch_grid``: the images of each epoch's sample grid;
- ``log_panels``: how the report card groups ``stats``' columns into the panels of its training plot;
- ``trains_discriminator``: whether a config's run trains D at all (else no ``d.pt`` is exported);
- ``adam``: the paper's learning rate and beta1, the training defaults;
- ``learning_rate``: the rate at a step of the run (SRGAN's GAN stage drops it tenfold halfway);
- ``check_init``: which G exports a run may start from (``TrainConfig.init``);
- ``frozen``: pretrained nets the step uses but never trains (SRGAN's content-loss network);
- ``data_options``: how the data set is loaded for a config (StarGAN: its domains' classes only);
- ``generator_input``: what G takes, ``z``, a low-resolution image (``lr``) or an image to translate
  into a domain (``image``); a generator is loaded
  only by a caller that feeds it that (``dcgan.checkpoint.load_net``), so a super-resolution G is
  refused in one line where a G of z is needed, and ``bench sample`` draws from z or super-resolves
  images as it says. Every family's D judges images, and serves every task of a D alike.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, ClassVar

import torch
from torch import nn

from dcgan.config import DCGANConfig, ModelConfig, known_keys
from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.generate import default_labels, evaluating, generate
from dcgan.nets import sample_z
from dcgan.registry import Registry

if TYPE_CHECKING:  # the step reads the trainer's nets, optimisers and noise; the trainer imports this module
    from dcgan.data import ImageDataset
    from dcgan.data.registry import DatasetSpec
    from dcgan.train import Trainer

SAMPLE_GRID = 64  # tiles of a GAN of z's per-epoch sample grid
INPUTS = ("z", "lr", "image")  # what a family's G takes: noise z, a low-resolution image, an image to translate


class Family:
    """The declarations of one GAN family; everything is a class attribute or a classmethod.

    ``uses_labels``: whether its step trains on the data set's class labels (then every batch comes
    with them, and the data set must be labelled). ``generator_input``: what its G takes (``INPUTS``).
    ``adam``: the (learning rate, beta1) its paper trained with, a run's defaults.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    Config: ClassVar[type[ModelConfig]]
    Generator: ClassVar[type[nn.Module]]
    Discriminator: ClassVar[type[nn.Module]]
    uses_labels: ClassVar[bool] = False
    generator_input: ClassVar[str] = "z"  # one of INPUTS
    adam: ClassVar[tuple[float, float]] = (2e-4, 0.5)  # (lr, beta1): DCGAN paper, section 4

    @classmethod
    def stats(cls, cfg: ModelConfig) -> tuple[str, ...]:
        """The numbers ``step`` returns for a run of ``cfg``, in ``log.csv``'s column order."""
        return ("loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2")

    @classmethod
    def log_panels(cls, cfg: ModelConfig) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
        """How the report card groups ``log.csv``'s columns into panels: (title, ((column, label), ...)) each
        (``bench.pictures.plot_training_log``; a column of no panel gets one of its own). Here the DCGAN
        step's: the losses, and D's outputs on real and fake images before and after D's step."""
        return (("losses", (("loss_d", "D loss"), ("loss_g", "G loss"))),
                ("D's outputs", (("d_x", "D(x)"), ("d_g_z1", "D(G(z)) before D's step"),
                                 ("d_g_z2", "D(G(z)) after D's step"))))

    @classmethod
    def trains_discriminator(cls, cfg: ModelConfig) -> bool:
        """Whether a run of ``cfg`` trains D (a run that does not exports no ``d.pt``)."""
        return True

    @classmethod
    def learning_rate(cls, cfg: ModelConfig, lr: float, step: int, total: int) -> float:
        """Adam's rate for step ``step`` (counted from 0) of a run of ``total`` steps whose rate is ``lr``:
        constant, as in the DCGAN paper. A function of the step alone, so a resumed run keeps the schedule."""
        return lr

    @classmethod
    def check_init(cls, cfg: ModelConfig, init: ModelConfig, path) -> None:
        """Refuse a G export at ``path`` (config ``init``) that a run of ``cfg`` cannot start from: here
        any whose config differs (the D, which starts afresh, is the only thing not carried over)."""
        if init != cfg:
            diff = ", ".join(f"{k} {v} (the run: {cfg.to_dict()[k]})" for k, v in init.to_dict().items()
                             if cfg.to_dict().get(k) != v)
            raise ConfigError(f"--init {path}: its generator is not this model's ({diff})")

    @classmethod
    def frozen(cls, cfg: ModelConfig) -> dict[str, nn.Module]:
        """Pretrained nets a step of ``cfg`` uses but never trains, by name (SRGAN's content-loss network;
        none here). The trainer builds them once, freezes them (no gradients, eval mode), moves them to its
        device as ``t.frozen`` and never saves them: their weights come from their own files."""
        return {}

    @classmethod
    def configure(cls, spec: "DatasetSpec", **values) -> ModelConfig:
        """The config for training on data set ``spec`` with ``values`` (a setting the family does not
        have is a one-line error naming the family)."""
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ConfigError(f"model family {cls.name!r} has no setting {', '.join(unknown)}")
        return cls.Config(**values)

    @classmethod
    def data_options(cls, cfg: ModelConfig) -> dict:
        """Options of ``load_dataset`` a run of ``cfg`` loads its data with (StarGAN: its domains' classes or
        attributes only); none here."""
        return {}

    @classmethod
    def check_data(cls, cfg: ModelConfig, data: "ImageDataset") -> None:
        """Refuse, before training, a data set the config cannot be trained on."""

    @classmethod
    def grid(cls, cfg: DCGANConfig, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """A sample grid from the fixed ``z``: (z, labels, tiles a row; None: a square)."""
        return z, None, None

    @classmethod
    def example_input(cls, cfg: ModelConfig, n: int) -> torch.Tensor:
        """``n`` inputs of G's shape (zeros), for timing it: z for a GAN of z."""
        return torch.zeros(n, cfg.nz, 1, 1)

    @classmethod
    def example_labels(cls, G: nn.Module, n: int) -> torch.Tensor | None:
        """The labels G takes beside ``n`` of ``example_input``, for timing it: a conditional G's class-balanced
        ones (``default_labels``), none for an unconditional G."""
        return default_labels(G, n)

    @classmethod
    def epoch_grid(cls, t: "Trainer") -> tuple[torch.Tensor, int | None]:
        """The images (in [-1, 1]) of the run's per-epoch sample grid and its tiles a row (None: a
        square): G's samples of a z fixed by the run's seed (``grid``). A function of the seed and G's
        weights alone, so an epoch's grid can be rewritten exactly from its checkpoint."""
        z = sample_z(SAMPLE_GRID, t.cfg.model, torch.Generator().manual_seed(t.cfg.seed + 2))
        z, labels, columns = cls.grid(t.cfg.model, z)
        return generate(t.G, z, batch_size=SAMPLE_GRID, device=t.device, precision=t.cfg.precision,
                        labels=labels), columns

    @classmethod
    def batch(cls, t: "Trainer", images: torch.Tensor, labels: torch.Tensor | None) -> tuple:
        """The arguments of ``step`` for a batch of the data set's uint8 images on the device (and their
        classes, for a family that ``uses_labels``, else None): the images, and the classes if used."""
        return (images, labels) if cls.uses_labels else (images,)

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
        real = to_unit(real_u8, t.cfg.channels_last)
        z = sample_z(real.shape[0], t.cfg.model, t.noise, t.device)
        return cls.adversarial_step(t, real, lambda: t.G_train(z, labels=labels), labels)

    @classmethod
    def adversarial_step(cls, t: "Trainer", real: torch.Tensor, make_fake: Callable[[], torch.Tensor],
                         labels: torch.Tensor | None = None, *, content: Callable[[torch.Tensor], torch.Tensor]
                         | None = None, weight: float = 1.0) -> dict[str, float]:
        """D then G, the DCGAN paper's step (pytorch/examples'): D on ``real`` (target 1) and on the fakes
        ``make_fake()`` draws under autocast (target 0); then G against D on the same fakes (target 1).
        G's loss is ``weight`` times that, plus ``content(fakes)`` when given (SRGAN's content loss, which
        keeps its own numbers). Returns the numbers logged (``Family.stats``' five)."""
        n = real.shape[0]
        ones = torch.ones(n, device=t.device)
        zeros = torch.zeros(n, device=t.device)

        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        t.optD.zero_grad(set_to_none=True)
        with autocast(t.device, t.cfg.precision):
            out_real, extra_real = cls.judge(t.D_train, real, labels)
            loss_real = _plus(t.loss(out_real.float(), ones), extra_real)
        loss_real.backward()
        with autocast(t.device, t.cfg.precision):
            fake = make_fake()
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
        extra = content(fake) if content is not None else None
        loss_g = _plus(loss_g if weight == 1 else weight * loss_g, extra)
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


def to_unit(images_u8: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 images as floats in [-1, 1], the suite's pixel range, in the run's memory format."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return (images_u8.float() / 127.5 - 1).contiguous(memory_format=fmt)


@torch.no_grad()
def images_through(G: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None, *, batch_size: int,
                   device: torch.device | str, precision: str = "fp32") -> torch.Tensor:
    """G's outputs for a G that takes images (SRGAN's LR, StarGAN's inputs with ``labels``, their target
    domains), float32 on the CPU in [-1, 1]: ``batch_size`` at a time, in eval mode (G's mode restored
    after), under bf16 autocast if asked. uint8 images are scaled to [-1, 1]; float ones are taken as
    already there (a translation translated again)."""
    device = torch.device(device)
    out = []
    with evaluating(G):
        for i in range(0, len(images), batch_size):
            x = images[i:i + batch_size].to(device)
            x = to_unit(x, False) if x.dtype == torch.uint8 else x
            c = None if labels is None else labels[i:i + batch_size].to(device)
            with autocast(device, precision):
                out.append(G(x, labels=c).float().cpu())
    return torch.cat(out) if out else torch.empty(0, *images.shape[1:])


def _plus(loss: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
    return loss if extra is None else loss + extra


FAMILIES: Registry[type[Family]] = Registry("model family", error=ConfigError)


def register_family(cls: type[Family]) -> type[Family]:
    """Register a family under its config's ``family`` name (the name its configs serialise with)."""
    return FAMILIES.add(cls.Config.family, cls)


def family_of(cfg: ModelConfig) -> type[Family]:
    """The family a config belongs to."""
    family = FAMILIES.get(cfg.family)
    if type(cfg) is not family.Config:
        raise ConfigError(f"a {type(cfg).__name__} is no config of model family {family.name!r}")
    return family


def config_from_dict(d: dict) -> ModelConfig:
    """A config from its dict (``to_dict``): its family's config class; no ``family`` key means DCGAN's."""
    if not isinstance(d, dict):
        raise ConfigError(f"model config is a {type(d).__name__}, expected a dict")
    rest = dict(d)
    name = rest.pop("family", DCGANConfig.family)
    if not isinstance(name, str):
        raise ConfigError(f"model config's family is a {type(name).__name__}, expected a name")
    family = FAMILIES.get(name)
    return family.Config(**known_keys(family.Config, rest, f"{name} model config"))


def build_net(kind: str, cfg: ModelConfig) -> nn.Module:
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
