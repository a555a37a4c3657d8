"""``bench train``: train a model of any family with its paper's recipe (registered on the ``bench`` group
in ``bench.cli``)."""
from __future__ import annotations

import click

from dcgan.presets import PRESETS, get_preset


def _model_options(f):
    """The model settings; left out, each takes the family's default (a setting the family does not have
    is a one-line error)."""
    opts = [
        click.option("--image-size", type=click.IntRange(1), default=None,
                     help="Image side in pixels, the size the data is loaded at: dcgan 32, 64 (default) or 128 "
                          "(imagenet32 arch: 32 only); srgan: any (default 128), the HR crops are taken from it."),
        click.option("--channels", type=click.Choice(["1", "3"]), default=None,
                     help="Image channels; default: the data set's own (grey sets can be expanded to 3)."),
        click.option("--arch", type=click.Choice(["dcgan", "imagenet32"]), default=None,
                     help="dcgan (default): canonical 4x4-kernel DCGAN; imagenet32: the authors' 3x3 ImageNet-32 D "
                          "(28672 max-pooled features) with a mirrored G."),
        click.option("--nz", type=click.IntRange(1), default=None, help="Latent size.  [default: 100]"),
        click.option("--ngf", type=click.IntRange(1), default=None, help="Generator width.  [default: 64]"),
        click.option("--ndf", type=click.IntRange(1), default=None, help="Discriminator width.  [default: 64]"),
        click.option("--z-dist", type=click.Choice(["normal", "uniform"]), default=None,
                     help="z ~ N(0,1) (default) or U(-1,1) (the paper's)."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _preset_help() -> str:
    return ("A measured recipe: fills in the options not given on the command line (any option given wins).\n\n\b\n"
            + "\n".join(f"{p.name}: {p.summary}\n  ({', '.join(f'{k}={v}' for k, v in p.settings.items())}; "
                        f"{p.source})" for p in PRESETS.values()))


def _apply_preset(ctx: click.Context, param, name: str | None) -> str | None:
    """Make the preset's settings this command's defaults (an eager option: read before the others)."""
    if name is not None:
        ctx.default_map = {**(ctx.default_map or {}), **get_preset(name).settings}
    return name


@click.command()
@click.option("--preset", metavar="NAME", default=None, is_eager=True, expose_value=False,
              callback=_apply_preset, help=_preset_help())
@click.option("--model", "family", default="dcgan", show_default=True, metavar="FAMILY",
              help="The model family (see `bench list`): dcgan, the paper's unconditional DCGAN; cdcgan, a "
                   "conditional DCGAN whose G and D are given the class label (a labelled data set; its number of "
                   "classes is the model's); srgan, super-resolution (Ledig et al. 2017); stargan, image-to-image "
                   "translation among domains (Choi et al. 2018).")
@click.option("--g-cond", default=None, metavar="HOW",
              help="cdcgan: how G takes the label: concat (one-hot label concatenated to z and every layer's input, "
                   "the DCGAN authors' MNIST model; the default) or cbn (class-conditional batch norm).")
@click.option("--d-cond", default=None, metavar="HOW",
              help="cdcgan: how D takes the label: concat (label maps concatenated to the image and every hidden "
                   "layer), projection (inner product of a class embedding with D's last features, Miyato & Koyama "
                   "2018; the default) or acgan (an auxiliary classifier head with its cross-entropy, Odena et al. "
                   "2017).")
@click.option("--scale", type=int, default=None, help="srgan: the upscaling factor, 2, 4 (default) or 8.")
@click.option("--hr-size", type=int, default=None,
              help="srgan: side of the HR training crops, a multiple of --scale, at most --image-size (default 96).")
@click.option("--blocks", type=int, default=None, help="srgan: G's residual blocks (default 16).")
@click.option("--stage", default=None, metavar="STAGE",
              help="srgan: srresnet (default; G alone on the content loss) or gan (G and D; start G from an "
                   "srresnet run with --init).")
@click.option("--content-loss", default=None, metavar="LOSS",
              help="srgan, either stage: G's content loss, one of\n\n\b\n"
                   "mse        pixel MSE (the default)\n"
                   "vgg19      the paper's VGG54, VGG-19 conv5_4\n"
                   "inception  not the paper's: Inception's stem\n\n"
                   "vgg19: torchvision downloads its ImageNet weights into torch's hub cache once; inception: the FID "
                   "Inception's Conv2d_4a map, its weights FID's (offline: `bench weights inception`). They need "
                   "--hr-size 16 (vgg19) or 19 (inception) or more.")
@click.option("--domains", default=None, metavar="A,B,...",
              help="stargan: the classes to translate between, in label order (default: all the data set's classes), "
                   "e.g. cat,dog,deer,horse on cifar10.")
@click.option("--attrs", default=None, metavar="A,B,...",
              help="stargan: binary attributes as the domains instead of classes, e.g. "
                   "Black_Hair,Blond_Hair,Brown_Hair,Male,Young on celeba (the paper's).")
@click.option("--res-blocks", type=int, default=None, help="stargan: G's residual blocks (default 6).")
@click.option("--n-critic", type=int, default=None, help="stargan: D updates per G update (default 5).")
@click.option("--init", type=click.Path(dir_okay=False), default=None,
              help="Start G from this generator export (g.pt) instead of random weights; srgan: the gan stage "
                   "from an srresnet run (same scale, channels, width and blocks).")
@click.option("--dataset", default="digits", show_default=True, help="A registered data set (see `bench list`).")
@click.option("--data-root", type=click.Path(file_okay=False), default=None,
              help="Folder holding the data set's files (default: the cache folder).")
@click.option("--download", is_flag=True, help="Download the data set first (torchvision's downloader).")
@click.option("--subset", type=click.IntRange(1), default=None, help="Train on N images drawn with --seed.")
@_model_options
@click.option("--epochs", type=click.IntRange(1), default=25, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True, help="Paper: 128.")
@click.option("--lr", type=float, default=None,
              help="Adam learning rate; default: the family's paper's (dcgan, cdcgan: 2e-4; srgan: 1e-4).")
@click.option("--beta1", type=float, default=None,
              help="Adam beta1; default: the family's paper's (dcgan, cdcgan: 0.5; srgan: 0.9).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda | cuda:N | mps")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16 autocast: about 2x faster on CPUs with bf16 support.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(1), default=500, show_default=True,
              help="Write the training checkpoint every N steps (and at each epoch end).")
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True,
              help="Processes decoding a file-backed data set (folder, imagenet, lsun, class-folders, celeba): once "
                   "into the data cache, or every epoch when it is off.")
@click.option("--data-cache", type=click.Choice(["off", "auto", "on"]), default="auto", show_default=True,
              help="on: decode a file-backed data set once into the cache folder ($DCGAN_BENCH_CACHE/decoded; "
                   "`bench cache` lists and clears it), then memory-map it, with no loader processes during training; "
                   "off: decode every image every epoch; auto: on when the decoded images (N x C x S x S bytes) are "
                   "at most half the memory available and leave 1 GiB free on the cache folder's disk, else off.")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Stop (checkpointed) after N steps.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
def train(family, g_cond, d_cond, scale, hr_size, blocks, stage, content_loss, domains, attrs, res_blocks, n_critic,
          init, dataset, data_root, download,
          subset, image_size, channels, arch, nz, ngf, ndf, z_dist, epochs, batch_size, lr, beta1, seed, device,
          precision, channels_last, checkpoint_every, workers, data_cache, max_steps, out, resume):
    """Train a DCGAN (or a conditional one, --model cdcgan; or an SRGAN, --model srgan) with its paper's
    recipe; writes checkpoints, sample grids and a loss log to --out.

    \b
    A conditional DCGAN on Fashion-MNIST, one sample row per class in each epoch's grid:
      bench train --model cdcgan --g-cond concat --d-cond projection --dataset fashion-mnist \\
          --data-root ~/data/fashion-mnist --image-size 32 --epochs 5 --out runs/fmnist-cgan

    \b
    A StarGAN translating among four of Fashion-MNIST's classes (StarGAN's recipe, batch 16 as its paper):
      bench train --model stargan --dataset fashion-mnist --data-root ~/data/fashion-mnist \\
          --domains "T-shirt/top,pullover,coat,shirt" --image-size 32 --batch-size 16 --out runs/fmnist-star

    \b
    An x4 SRGAN on CIFAR-10's 32 px images, first G alone (SRResNet), then the GAN from it:
      bench train --model srgan --stage srresnet --scale 4 --image-size 32 --hr-size 32 --dataset cifar10 \\
          --data-root ~/data/cifar10 --out runs/sr-1
      bench train --model srgan --stage gan --init runs/sr-1/g.pt --scale 4 --image-size 32 --hr-size 32 \\
          --dataset cifar10 --data-root ~/data/cifar10 --out runs/sr-2

    Run under `torchrun --nproc_per_node N bench train ...` for data-parallel training (the batch
    size is the total over all processes).
    """
    from dcgan.data import resolved_spec
    from dcgan.models import FAMILIES
    from dcgan.train import TrainConfig
    from dcgan.train import train as run_training

    spec = resolved_spec(dataset, data_root)  # a data set whose classes are found in its files: their count
    nc = int(channels) if channels else spec.channels
    if domains and attrs:
        raise click.UsageError("--domains and --attrs: give one (classes or attributes as the domains)")
    given = dict(image_size=image_size, nz=nz, ngf=ngf, ndf=ndf, arch=arch, z_dist=z_dist, g_cond=g_cond,
                 d_cond=d_cond, scale=scale, hr_size=hr_size, blocks=blocks, stage=stage, content_loss=content_loss,
                 domains=_names(domains or attrs), domain_kind="attribute" if attrs else None,
                 res_blocks=res_blocks, n_critic=n_critic)
    model = FAMILIES.get(family).configure(spec, nc=nc, **{k: v for k, v in given.items() if v is not None})
    cfg = TrainConfig(model=model, dataset=dataset, data_root=data_root, subset=subset, epochs=epochs,
                      batch_size=batch_size, lr=lr, beta1=beta1, seed=seed, precision=precision,
                      channels_last=channels_last, checkpoint_every=checkpoint_every, workers=workers,
                      data_cache=data_cache, init=init)
    trainer = run_training(cfg, out, device=device, resume=resume, max_steps=max_steps, download=download)
    if trainer.rank == 0:
        click.echo(trainer.summary())


def _names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of names (spaces around them dropped: "T-shirt/top, Trouser")."""
    return None if text is None else tuple(name.strip() for name in text.split(","))
