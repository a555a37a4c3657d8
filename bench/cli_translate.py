"""``bench sample`` with a StarGAN generator: image files translated into a domain, or a grid of every domain.

Each image of ``--input`` is read with PIL as the G's channels and resized (short side, antialiased bilinear)
and centre-cropped to its size, the pipeline its training images went through (``dcgan.data.pixels``), then
translated by ``dcgan.models.stargan.translate`` and rounded to 8 bits as saved samples are.
"""
from __future__ import annotations

from pathlib import Path

import torch

from dcgan.errors import ConfigError
from dcgan.registry import did_you_mean

BATCH = 64  # images read and translated at a time


def domain_target(cfg, domain: str) -> torch.Tensor:
    """``--domain``'s target: a class domain's index, or the 0/1 row of the attributes named (the others unset);
    an unknown name is a one-line error."""
    names = [name.strip() for name in domain.split(",") if name.strip()]
    for name in names:
        if name not in cfg.domains:
            raise ConfigError(f"--domain {name!r}: the generator's domains are {', '.join(cfg.domains)}"
                              f"{did_you_mean(name, cfg.domains)}")
    if cfg.multi_label:
        return torch.tensor([int(d in names) for d in cfg.domains])
    if len(names) != 1:
        raise ConfigError(f"--domain {domain!r}: a generator of class domains translates into one of "
                          f"{', '.join(cfg.domains)}")
    return torch.tensor(cfg.domains.index(names[0]))


def _read(paths: list[Path], cfg) -> torch.Tensor:
    """The images at ``paths`` as uint8 (N, nc, S, S) at the G's size."""
    from torchvision.transforms.v2 import functional as TF

    from dcgan.data.pixels import decode_image, resize_crop

    mode = "L" if cfg.nc == 1 else "RGB"
    return torch.stack([TF.pil_to_tensor(resize_crop(decode_image(p, str(p), mode), cfg.image_size)) for p in paths])


def translate_files(G, cfg, source: Path, domain: str | None, out: str | None, device, precision: str) -> str:
    """Translate every image of ``source`` (a file or a folder searched recursively) into ``domain``, each written
    as a PNG into the folder ``out`` under its own name; without ``domain``, a grid PNG ``out`` of a row per image
    (the image, then its translation into each domain, or each attribute set alone). Returns what was written."""
    options = dict(batch_size=BATCH, device=device, precision=precision)
    if domain is None:
        return _grid(G, cfg, source, Path(out or "translations.png"), options)
    from torchvision.transforms.v2 import functional as TF

    from bench.cli_sample import file_targets
    from bench.features import to_uint8
    from bench.pictures import save_png
    from dcgan.fsutil import writable_folder
    from dcgan.models.stargan import translate

    target = domain_target(cfg, domain)
    folder = Path(out or "translated")
    pairs = file_targets(source, folder)
    writable_folder(folder, "output folder")
    for s in range(0, len(pairs), BATCH):
        part = pairs[s:s + BATCH]
        images = _read([path for path, _ in part], cfg)
        fakes = to_uint8(translate(G, images, target.expand(len(images), *target.shape), **options))
        for (_, written), image in zip(part, fakes):
            written.parent.mkdir(parents=True, exist_ok=True)
            save_png(TF.to_pil_image(image), written)
    return f"wrote {len(pairs)} image(s) translated into {domain} into {folder}"


def _grid(G, cfg, source: Path, path: Path, options: dict) -> str:
    """The grid of every image of ``source`` into every domain (each attribute set alone), captioned."""
    from bench.cli_sample import input_files
    from bench.features import to_uint8
    from bench.pictures import contact_sheet
    from dcgan.fsutil import writable_folder
    from dcgan.models.stargan import translate

    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder: without --domain a translator writes a PNG grid file")
    writable_folder(path.parent, "output folder")
    files = input_files(source)
    K = len(cfg.domains)
    targets = torch.eye(K, dtype=torch.long) if cfg.multi_label else torch.arange(K)
    captions = [f"+{d}" if cfg.multi_label else d for d in cfg.domains]
    side = cfg.image_size * max(1, -(-64 // cfg.image_size))  # tiles of at least 64 px, enlarged by a whole factor
    rows = []
    for s in range(0, len(files), BATCH):
        images = _read(files[s:s + BATCH], cfg)
        every = targets.repeat(len(images), *[1] * (targets.dim() - 1))  # image i's K targets, then i + 1's
        fakes = to_uint8(translate(G, images.repeat_interleave(K, 0), every, **options)).unflatten(0, (len(images), K))
        rows += [[(image, f.name[:side // 6], None), *((fake, c[:side // 6], None) for fake, c in zip(row, captions))]
                 for f, image, row in zip(files[s:s + BATCH], images, fakes)]
    contact_sheet(rows, path, tile=side)
    return f"wrote {path} ({len(files)} image(s), each into {K} {'attributes' if cfg.multi_label else 'domains'})"
