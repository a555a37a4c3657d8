"""``bench sample``: what a generator makes from its input (registered on the ``bench`` group in ``bench.cli``).

The checkpoint's model family says what its G takes (``Family.generator_input``), and the command
does the one thing that input allows:

- noise z (DCGAN, c-GAN): samples drawn from z into a PNG grid, their z saved beside it;
- a low-resolution image (SRGAN): each image of ``--input`` (a file, or a folder searched recursively)
  super-resolved by ``dcgan.models.srgan.super_resolve`` and written as a PNG of ``scale`` times its
  size into ``--out`` under its own name (and subfolder), with the suffix ``.png``;
- an image and a target domain (StarGAN): each image of ``--input``, resized and centre-cropped to the G's
  size as its training images were, translated by ``dcgan.models.stargan.translate`` into ``--domain``
  (a class domain; for attributes, those set and the others unset) and written into ``--out`` under its own
  name; without ``--domain``, a PNG grid of a row per image: the image, then its translation into each
  domain (each attribute set alone), captioned.

The options of one kind of input given to a G of another are a one-line error, as is an SRGAN or StarGAN
G without ``--input``: nothing is silently ignored.
"""
from __future__ import annotations

import math
from pathlib import Path

import click

from dcgan.errors import ConfigError, DataError, NotApplicable

SAMPLE_BATCH = 256  # images a G of z draws at a time (`bench run`'s default --batch-size)
# LR pixels in one batch of super-resolution: G's widest activations hold ngf * scale^2 numbers an LR pixel
# (270 MB of float32 at this many, ngf 64 and x4), so small images go through together and a large one alone;
# images of different sizes never share a batch
SR_BATCH_PIXELS = 256 * 256
DOES = {"z": "draws samples from noise z", "lr": "super-resolves images", "image": "translates images into a domain"}
OPTIONS = {"--samples": ("z",), "--class": ("z",), "--seed": ("z",), "--numbers/--no-numbers": ("z",),
           "--input": ("lr", "image"), "--domain": ("image",)}  # option -> the generators (INPUTS) it is for


@click.command()
@click.option("--ckpt", type=click.Path(dir_okay=False), required=True,
              help="A generator (g.pt) or training checkpoint.")
@click.option("--input", "source", type=click.Path(), default=None,
              help="A super-resolution G (srgan) or a translator (stargan): the image file, or the folder of images "
                   "(searched recursively), to upscale or translate.")
@click.option("--domain", default=None, metavar="NAME[,NAME...]",
              help="A translator: the domain to translate into (a class), or the attributes to set (the others "
                   "unset); default: a grid of every domain (each attribute set alone).")
@click.option("--samples", "n", type=click.IntRange(1), default=None,
              help="A G of z: how many samples (a conditional G without --class: at least this many, a row per "
                   "class).  [default: 64]")
@click.option("--class", "label", type=click.IntRange(0), default=None,
              help="A conditional G: draw every sample at this class (0 to classes - 1).")
@click.option("--seed", type=int, default=None, help="A G of z: the seed of the z drawn.  [default: 0]")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True)
@click.option("--out", type=click.Path(), default=None,
              help="A G of z: the PNG grid, its z beside it as <out>.z.pt (a conditional G's classes as "
                   "<out>.labels.pt; default samples.png). A super-resolution G: the folder of its images "
                   "(default sr). A translator: the folder of its images (default translated), or without "
                   "--domain the PNG grid (default translations.png).")
@click.option("--numbers/--no-numbers", default=None,
              help="A G of z: draw each tile's index (its row in <out>.z.pt) on it, to pick samples for "
                   "vector-arithmetic.  [default: numbers]")
def sample(ckpt, source, domain, n, label, seed, device, precision, out, numbers):
    """Draw samples from a generator of z into a PNG grid (and save their z), super-resolve images with an
    SRGAN generator, or translate images into a domain with a StarGAN generator.

    \b
    The numbered tiles name samples for the vector-arithmetic task, e.g.
      bench sample --ckpt g.pt --samples 64 --out grid.png
      bench run vector-arithmetic --ckpt g.pt --set z=grid.png.z.pt \\
          --set concept_a=3,9,17 --set concept_b=5,11,40 --set concept_c=2,8,30

    \b
    A conditional generator (bench train --model cdcgan) draws one row per class, each column one z
    at every class; --class K draws every sample at class K:
      bench sample --ckpt runs/fmnist-cgan/g.pt --out classes.png
      bench sample --ckpt runs/fmnist-cgan/g.pt --class 7 --out sneakers.png

    \b
    An SRGAN generator (bench train --model srgan) upscales each image of --input, a file or a folder,
    into --out as PNG, under the image's own name:
      bench sample --ckpt runs/sr-2/g.pt --input photos/ --out photos-x4/

    \b
    A StarGAN generator (bench train --model stargan) translates each image of --input into --domain,
    or without it draws a grid of each image into every domain:
      bench sample --ckpt runs/fm-star/g.pt --input shirts/ --domain coat --out coats/
      bench sample --ckpt runs/fm-star/g.pt --input shirts/ --out grid.png
    """
    from dcgan.checkpoint import load_net
    from dcgan.device import resolve_device
    from dcgan.models import family_of
    from dcgan.models.family import INPUTS

    G, cfg, _ = load_net(ckpt, "generator", takes=INPUTS)
    family = family_of(cfg)
    takes = family.generator_input
    given = [name for name, value in (("--input", source), ("--domain", domain), ("--samples", n), ("--class", label),
                                      ("--seed", seed), ("--numbers/--no-numbers", numbers)) if value is not None]
    foreign = [name for name in given if takes not in OPTIONS[name]]
    if foreign:
        kinds = dict.fromkeys(kind for name in foreign for kind in OPTIONS[name])
        raise NotApplicable(f"{', '.join(foreign)}: generator {ckpt} (model family {family.name!r}) {DOES[takes]}; "
                            f"{'that option is' if len(foreign) == 1 else 'those options are'} for a generator that "
                            f"{' or '.join(DOES[k] for k in kinds)}")
    dev = resolve_device(device)
    if takes != "z" and source is None:
        raise ConfigError(f"generator {ckpt} (model family {family.name!r}) {DOES[takes]}: pass --input, an image "
                          "file or a folder of images")
    if takes == "lr":
        out = Path(out or "sr")
        count = super_resolve_files(G.to(dev), cfg, Path(source), out, dev, precision)
        click.echo(f"wrote {count} image(s) upscaled x{cfg.scale} into {out}")
    elif takes == "image":
        from bench.cli_translate import translate_files

        click.echo(translate_files(G.to(dev), cfg, Path(source), domain, out, dev, precision))
    else:
        click.echo(_draw(G.to(dev), cfg, ckpt, 64 if n is None else n, label, seed or 0, Path(out or "samples.png"),
                         numbers is not False, dev, precision))


def _draw(G, cfg, ckpt, n: int, label: int | None, seed: int, out: Path, numbers: bool, device, precision: str) -> str:
    """Draw the samples of a G of z into the grid ``out`` and save their z (and classes); what was written."""
    import torch

    from bench.pictures import numbered_sheet
    from dcgan.fsutil import atomic_path, writable_folder
    from dcgan.generate import class_rows, generate
    from dcgan.nets import sample_z
    from dcgan.grids import save_grid

    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: a generator of z writes a PNG grid file")
    writable_folder(out.parent, "output folder")
    classes, columns = G.num_classes, None
    if label is not None and not classes:
        raise NotApplicable(f"--class {label}: generator {ckpt} is unconditional, it draws no classes")
    generator = torch.Generator().manual_seed(seed)
    if classes and label is None:  # a grid of one row per class, column j the same z throughout
        columns = math.ceil(n / classes)
        z, labels = class_rows(sample_z(columns, cfg, generator), classes)
    else:
        z = sample_z(n, cfg, generator)
        labels = torch.full((n,), label) if classes else None
    x = generate(G, z, batch_size=SAMPLE_BATCH, device=device, precision=precision, labels=labels)
    if numbers:
        numbered_sheet(x, out, columns=columns)
    else:
        save_grid(x, out, nrow=columns)
    with atomic_path(f"{out}.z.pt") as tmp:
        torch.save(z, tmp)
    what = f"{len(x)} samples"
    if classes:
        with atomic_path(f"{out}.labels.pt") as tmp:
            torch.save(labels, tmp)
        what = (f"{classes} classes x {columns} samples, a row per class" if label is None
                else f"{len(x)} samples of class {label}") + f"; classes in {out}.labels.pt"
    return f"wrote {out} ({what}) and {out}.z.pt"


def input_files(source: Path) -> list[Path]:
    """The image files of ``--input``: the file, or a folder's images searched recursively
    (``dcgan.data.files.image_files``); a missing source or a folder without images is a one-line error."""
    from dcgan.data.files import image_files, no_images

    if not source.exists():
        raise DataError(f"--input {source} does not exist: expected an image file or a folder of images")
    files = [Path(p) for p in image_files(source)] if source.is_dir() else [source]
    if not files:
        raise no_images(source)
    return files


def file_targets(source: Path, out: Path) -> list[tuple[Path, Path]]:
    """(image file, the PNG it becomes) for each image of ``source``, a file or a folder searched
    recursively (``dcgan.data.files.image_files``): ``out`` / its path under the folder, suffix ``.png``.
    A missing source, a folder without images, two images that would become one file, or one that would
    be overwritten by its own output is a one-line error, before any work."""
    files = input_files(source)
    targets = [(f, out / (f.relative_to(source) if source.is_dir() else Path(f.name)).with_suffix(".png"))
               for f in files]
    seen: dict[Path, Path] = {}
    for f, target in targets:
        if target.resolve() == f.resolve():
            raise ConfigError(f"--out {out}: the output of {f} would overwrite it; write into another folder")
        if target in seen:
            raise DataError(f"--input {source}: {seen[target]} and {f} would both be written to {target}; "
                            "rename one")
        seen[target] = f
    return targets


def super_resolve_files(G, cfg, source: Path, out: Path, device, precision: str) -> int:
    """Upscale every image of ``source`` (``file_targets``) with the SRGAN G into ``out``: each read with PIL as
    G's channels (grey or RGB), batched with the images after it while they have its size (at most
    ``SR_BATCH_PIXELS`` LR pixels a batch), rounded to 8 bits as saved samples are, written atomically. Returns
    the number of images."""
    import torch
    from torchvision.transforms.v2 import functional as TF
    from tqdm.auto import tqdm

    from bench.features import to_uint8
    from bench.pictures import save_png
    from dcgan.data.pixels import decode_image
    from dcgan.fsutil import writable_folder
    from dcgan.models.srgan import super_resolve

    targets = file_targets(source, out)
    writable_folder(out, "output folder")
    mode = "L" if cfg.nc == 1 else "RGB"
    batch: list[tuple[Path, torch.Tensor]] = []

    def flush() -> None:
        lr = torch.stack([image for _, image in batch])
        sr = to_uint8(super_resolve(G, lr, batch_size=len(lr), device=device, precision=precision))
        for (target, _), image in zip(batch, sr):
            save_png(TF.to_pil_image(image), target)
        bar.update(len(batch))
        batch.clear()

    with tqdm(total=len(targets), desc="super-resolving", unit="image", disable=None, leave=False) as bar:
        for path, target in targets:
            image = TF.pil_to_tensor(decode_image(path, str(path), mode))
            if batch and (image.shape != batch[0][1].shape or (len(batch) + 1) * image[0].numel() > SR_BATCH_PIXELS):
                flush()
            batch.append((target, image))
        flush()
    return len(targets)
