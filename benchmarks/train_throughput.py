"""Training throughput of dcgan.train.Trainer against the plain pytorch/examples DCGAN loop: the step
alone, and (``--whole``) the whole training process on image files.

The step: what it measures, at each image size (canonical DCGAN, nc=3, nz=100, ngf=ndf=64, batch 128):

- ``reference``: pytorch/examples' dcgan/main.py written out here, without importing dcgan. It has its
  own Generator/Discriminator (one flat ``main`` Sequential, Sigmoid at D's end), N(0, 0.02) init,
  BCELoss, Adam(2e-4, betas (0.5, 0.999)), three D forwards per step (real, fake.detach(), fake),
  fp32, contiguous memory format;
- ``ours fp32`` and ``ours bf16``: ``Trainer.train_step`` with ``precision="fp32"`` / ``"bf16"``.

Every variant gets the same uint8 batches, turned into floats in [-1, 1] inside its step. Each variant
runs in its own subprocess (this script re-invoked with the hidden ``--variant NAME --size S``,
which prints one JSON line), so that its peak RSS (``ru_maxrss``) is its own and one variant's
allocator state does not affect the next. Warm-up steps are not timed; ``--steps`` steps are timed
with ``time.perf_counter``. The table reports images/s, seconds/step, peak RSS, the speedup over
the reference at the same size (goal: bf16 at least 2x the reference, fp32 at least 1x) and the CPU
use, the process's CPU time over threads x wall time: well under 100% means other processes shared
the cores and the row is not to be trusted.

Why the check: a speed-up only counts if the step still computes the paper's recipe. ``--check`` (on
by default; four single steps per size, well under a minute) starts ours fp32 and the reference from
the reference's initial weights, gives both the same real batch and the same z (ours draws z from
``trainer.noise``; a clone of that generator draws it for the reference), takes one step of each and
compares the updated G and D state dicts and the step's losses. It does so with both in the default
contiguous format, both in channels_last, and as benchmarked (ours channels_last, reference
contiguous), next to the reference against itself in the other memory format: the difference that
float rounding alone makes (see ``check`` for why that is well above 1e-5 at 64 px).

The whole process (``--whole --data-root CIFAR10``): what a user waits for, start to end, training a
32 px DCGAN (batch 128) for ``--epochs`` epochs on ``--images`` CIFAR-10 images stored as PNG files
(decoded from the export's train/<class>/*.jpg, the first images/10 of each class, and saved once into
``--png-dir``, ImageFolder's layout). Each variant is one subprocess, timed from its start to its exit,
interpreter start-up, imports, data loading, checkpoints and sample grids included:

- ``reference``: pytorch/examples' dcgan/main.py as run with ``--dataset folder --imageSize 32
  --batchSize 128 --workers 2`` on a CPU (``reference_process``): torchvision ImageFolder with Resize,
  CenterCrop, ToTensor and Normalize, a DataLoader with 2 worker processes decoding every file every
  epoch, the step above in fp32, its per-step print, its sample PNGs every 100 steps, its per-epoch
  checkpoints;
- ``ours bf16`` and ``ours fp32``: ``bench train --dataset folder --data-root PNGS --image-size 32
  --precision bf16|fp32`` with every other option at its default (data cache auto, 2 workers), each
  with a cold, empty cache folder of its own: fingerprinting the files and decoding them once into the
  data cache count in its time.

Images/s is images x epochs over the subprocess's wall time; nothing is subtracted. Peak RSS is the
largest of the process and its workers (``wait4``'s ``ru_maxrss``); CPU use is their CPU time over
cores x wall time. Goals: ours bf16 at least 1.9x the reference, ours fp32 at least 1.15x.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import Figure, cpu_seconds, machine, peak_rss_mib, run_child
from torch import nn, optim

NC, NZ, NGF, NDF = 3, 100, 64, 64
VARIANTS = {"reference": "reference", "fp32": "ours fp32", "bf16": "ours bf16"}
GOALS = {"reference": None, "fp32": 1.0, "bf16": 2.0}  # minimum speedup over the reference
CHECK_TOLERANCE = 1e-4
REAL_LABEL, FAKE_LABEL = 1.0, 0.0


# ---- the reference: pytorch/examples' dcgan/main.py -------------------------------------------------

class Generator(nn.Module):
    def __init__(self, image_size: int):
        super().__init__()
        if image_size == 64:
            self.main = nn.Sequential(
                # input is Z, going into a convolution
                nn.ConvTranspose2d(NZ, NGF * 8, 4, 1, 0, bias=False),
                nn.BatchNorm2d(NGF * 8),
                nn.ReLU(True),
                # state size. (ngf*8) x 4 x 4
                nn.ConvTranspose2d(NGF * 8, NGF * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 4),
                nn.ReLU(True),
                # state size. (ngf*4) x 8 x 8
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 2),
                nn.ReLU(True),
                # state size. (ngf*2) x 16 x 16
                nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF),
                nn.ReLU(True),
                # state size. (ngf) x 32 x 32
                nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
                nn.Tanh(),
                # state size. (nc) x 64 x 64
            )
        elif image_size == 32:
            self.main = nn.Sequential(
                nn.ConvTranspose2d(NZ, NGF * 4, 4, 1, 0, bias=False),
                nn.BatchNorm2d(NGF * 4),
                nn.ReLU(True),
                # state size. (ngf*4) x 4 x 4
                nn.ConvTranspose2d(NGF * 4, NGF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF * 2),
                nn.ReLU(True),
                # state size. (ngf*2) x 8 x 8
                nn.ConvTranspose2d(NGF * 2, NGF, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NGF),
                nn.ReLU(True),
                # state size. (ngf) x 16 x 16
                nn.ConvTranspose2d(NGF, NC, 4, 2, 1, bias=False),
                nn.Tanh(),
                # state size. (nc) x 32 x 32
            )
        else:
            raise ValueError(f"image size {image_size}: the reference has layouts for 32 and 64 px")

    def forward(self, input):
        return self.main(input)


class Discriminator(nn.Module):
    def __init__(self, image_size: int):
        super().__init__()
        if image_size == 64:
            self.main = nn.Sequential(
                # input is (nc) x 64 x 64
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf) x 32 x 32
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 2),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*2) x 16 x 16
                nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 4),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*4) x 8 x 8
                nn.Conv2d(NDF * 4, NDF * 8, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 8),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*8) x 4 x 4
                nn.Conv2d(NDF * 8, 1, 4, 1, 0, bias=False),
                nn.Sigmoid(),
            )
        elif image_size == 32:
            self.main = nn.Sequential(
                # input is (nc) x 32 x 32
                nn.Conv2d(NC, NDF, 4, 2, 1, bias=False),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf) x 16 x 16
                nn.Conv2d(NDF, NDF * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 2),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*2) x 8 x 8
                nn.Conv2d(NDF * 2, NDF * 4, 4, 2, 1, bias=False),
                nn.BatchNorm2d(NDF * 4),
                nn.LeakyReLU(0.2, inplace=True),
                # state size. (ndf*4) x 4 x 4
                nn.Conv2d(NDF * 4, 1, 4, 1, 0, bias=False),
                nn.Sigmoid(),
            )
        else:
            raise ValueError(f"image size {image_size}: the reference has layouts for 32 and 64 px")

    def forward(self, input):
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def weights_init(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


def build_reference(image_size: int):
    """(netG, netD, optimizerD, optimizerG, criterion) as pytorch/examples sets them up."""
    netG = Generator(image_size)
    netG.apply(weights_init)
    netD = Discriminator(image_size)
    netD.apply(weights_init)
    optimizerD = optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return netG, netD, optimizerD, optimizerG, nn.BCELoss()


def reference_step(netG, netD, optimizerD, optimizerG, criterion, real_cpu, noise) -> dict[str, float]:
    """One iteration of pytorch/examples' loop on ``real_cpu`` (floats in [-1, 1]) and ``noise`` (N, nz, 1, 1)."""
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    # train with real
    netD.zero_grad()
    batch_size = real_cpu.size(0)
    label = torch.full((batch_size,), REAL_LABEL, dtype=real_cpu.dtype)
    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()

    # train with fake
    fake = netG(noise)
    label.fill_(FAKE_LABEL)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(REAL_LABEL)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()
    return {"loss_d": errD.item(), "loss_g": errG.item(), "d_x": D_x, "d_g_z1": D_G_z1, "d_g_z2": D_G_z2}


# ---- ours -------------------------------------------------------------------------------------------

def build_ours(image_size: int, batch_size: int, precision: str, out: str, channels_last: bool = True):
    from dcgan.config import DCGANConfig
    from dcgan.train import Trainer, TrainConfig

    cfg = TrainConfig(model=DCGANConfig(image_size=image_size, nc=NC, nz=NZ, ngf=NGF, ndf=NDF),
                      dataset="synthetic", batch_size=batch_size, precision=precision,
                      channels_last=channels_last)
    return Trainer(cfg, out, device="cpu")


def real_batch(batch_size: int, image_size: int, seed: int = 0) -> torch.Tensor:
    """A uint8 batch (N, 3, S, S): the step's cost does not depend on the pixels."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch_size, NC, image_size, image_size), dtype=torch.uint8, generator=g)


def to_float(real_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the same arithmetic as Trainer.train_step."""
    return real_u8.float() / 127.5 - 1


# ---- one variant, in its own process ----------------------------------------------------------------

def run_variant(variant: str, image_size: int, batch_size: int, steps: int, warmup: int) -> dict:
    real_u8 = real_batch(batch_size, image_size)
    with tempfile.TemporaryDirectory() as out:
        if variant == "reference":
            torch.manual_seed(0)
            nets = build_reference(image_size)

            def step():
                reference_step(*nets, to_float(real_u8), torch.randn(batch_size, NZ, 1, 1))
        else:
            trainer = build_ours(image_size, batch_size, variant, out)

            def step():
                trainer.train_step(real_u8)

        for _ in range(warmup):
            step()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        for _ in range(steps):
            step()
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {"variant": variant, "size": image_size, "steps": steps, "batch_size": batch_size,
            "seconds": seconds, "cpu_use": cpu / (seconds * torch.get_num_threads()), "peak_rss_mib": peak_rss_mib()}


def spawn_variant(variant: str, image_size: int, batch_size: int, steps: int, warmup: int,
                  threads: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--variant", variant, "--size", str(image_size),
           "--batch-size", str(batch_size), "--steps", str(steps), "--warmup", str(warmup)]
    if threads:
        cmd += ["--threads", str(threads)]
    print(f"running {VARIANTS[variant]} at {image_size} px ...", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- the equivalence check --------------------------------------------------------------------------

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
COMPARISONS = {  # label -> (run, run it is compared with); the last row is the rounding floor
    "ours vs reference, both contiguous": (("ours", "contiguous"), ("reference", "contiguous")),
    "ours vs reference, both channels_last": (("ours", "channels_last"), ("reference", "channels_last")),
    "ours vs reference as benchmarked (channels_last vs contiguous)": (("ours", "channels_last"),
                                                                       ("reference", "contiguous")),
    "floor: reference channels_last vs reference contiguous": (("reference", "channels_last"),
                                                              ("reference", "contiguous")),
}


def one_step_each(image_size: int, batch_size: int) -> dict:
    """(G state dict, D state dict, step statistics) after one step of ours fp32 and of the reference,
    each in both memory formats: {(implementation, format): ...}.

    All four start from the reference's initial weights and see the same real batch and the same z
    (the one ours draws from ``trainer.noise``, seeded alike in every Trainer).
    """
    from dcgan.nets import sample_z

    torch.manual_seed(0)
    init = tuple(copy.deepcopy(net.state_dict()) for net in build_reference(image_size)[:2])
    real_u8 = real_batch(batch_size, image_size, seed=1)
    runs = {}
    with tempfile.TemporaryDirectory() as out:
        for name, fmt in FORMATS.items():
            trainer = build_ours(image_size, batch_size, "fp32", out, channels_last=fmt == torch.channels_last)
            trainer.G.load_state_dict(init[0])
            trainer.D.load_state_dict(init[1])  # the reference's Sigmoid has no parameters
            z = sample_z(batch_size, trainer.cfg.model, torch.Generator().set_state(trainer.noise.get_state()))
            stats = trainer.train_step(real_u8)
            runs["ours", name] = (trainer.G.state_dict(), trainer.D.state_dict(), stats)
    for name, fmt in FORMATS.items():
        netG, netD, optimizerD, optimizerG, criterion = build_reference(image_size)
        for net, state in zip((netG, netD), init):
            net.load_state_dict(state)
            net.to(memory_format=fmt)
        stats = reference_step(netG, netD, optimizerD, optimizerG, criterion,
                               to_float(real_u8).contiguous(memory_format=fmt), z)
        runs["reference", name] = (netG.state_dict(), netD.state_dict(), stats)
    return runs


def relative_differences(a: tuple, b: tuple) -> tuple[float, float, float]:
    """How far run ``a`` is from run ``b``: for G and for D, ||a - b|| / ||b|| with the state dict
    (weights and BN running statistics) taken as one vector; then the largest relative difference
    of the step's losses and mean D outputs."""
    diffs = []
    for sa, sb in zip(a[:2], b[:2]):
        if sa.keys() != sb.keys():
            raise ValueError(f"state dicts differ in keys: {sorted(set(sa) ^ set(sb))}")
        num = sum((sa[k].double() - sb[k].double()).square().sum() for k in sb)
        den = sum(sb[k].double().square().sum() for k in sb)
        diffs.append((num / den).sqrt().item())
    diffs.append(max(abs(a[2][k] - b[2][k]) / abs(b[2][k]) for k in b[2]))
    return diffs[0], diffs[1], diffs[2]


def check(sizes: list[int], batch_size: int) -> bool:
    """Print the check table; True when every ours-vs-reference row is within tolerance.

    Tolerance: CHECK_TOLERANCE, or twice the floor row if that is larger. One step from the
    initial weights is badly conditioned: Adam's first step moves each weight by about
    lr * sign(grad), D's gradient is a near-cancelling sum of its real and fake terms and G's goes
    through batch norm, so float rounding alone (the same reference in the other memory format:
    the floor) flips the sign of some updates, and the statistics taken after D's update inherit it.
    """
    print(f"Check: one step of ours fp32 and of the reference from identical weights, batch and z. "
          f"G, D: ||a - b|| / ||b|| of the updated state dicts; stats: largest relative difference of "
          f"the step's losses and mean D outputs. Tolerance per column: max({CHECK_TOLERANCE:g}, 2 x floor).")
    print()
    print("| size | compared | G | D | stats | verdict |")
    print("| ---: | --- | ---: | ---: | ---: | --- |")
    ok = True
    for size in sizes:
        runs = one_step_each(size, batch_size)
        rows = {label: relative_differences(runs[a], runs[b]) for label, (a, b) in COMPARISONS.items()}
        *tested, floor = rows.values()
        tolerance = [max(CHECK_TOLERANCE, 2 * f) for f in floor]
        for label, diffs in rows.items():
            verdict = ""
            if diffs is not floor:
                passed = all(d <= t for d, t in zip(diffs, tolerance))
                ok &= passed
                verdict = "ok" if passed else "FAILED"
            print(f"| {size} | {label} | " + " | ".join(f"{d:.1e}" for d in diffs) + f" | {verdict} |")
    return ok


# ---- the whole process ------------------------------------------------------------------------------

WHOLE = {"reference": "reference (pytorch/examples, ImageFolder, 2 workers, fp32)",
         "bf16": "ours bf16 (bench train, data cache auto, cold)",
         "fp32": "ours fp32 (bench train, data cache auto, cold)"}
WHOLE_GOALS = {"reference": None, "bf16": 1.9, "fp32": 1.15}
WHOLE_SIZE, WHOLE_WORKERS = 32, 2


def png_folder(data_root: str | os.PathLike, images: int, where: str | os.PathLike | None = None) -> Path:
    """``images`` CIFAR-10 training images as PNG files in ImageFolder's layout (<class>/<name>.png): the
    first images/10 JPEGs of each class of the export under ``data_root``, decoded and saved as PNG.
    Written once under ``where`` (default: the temporary folder) by renaming a finished folder into place,
    and reused by later runs."""
    from PIL import Image

    source = Path(data_root).expanduser() / "train"
    classes = sorted(d.name for d in source.iterdir() if d.is_dir()) if source.is_dir() else []
    if len(classes) != 10:
        raise SystemExit(f"{source}: expected CIFAR-10's 10 class folders of JPEGs (--data-root: the export's root)")
    per_class, rest = divmod(images, len(classes))
    if rest or per_class < 1:
        raise SystemExit(f"--images {images}: expected a positive multiple of 10 (as many of each class)")
    folder = Path(where or tempfile.gettempdir()) / f"dcgan-bench-cifar10-png-{images}"
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for cls in classes:
            jpgs = sorted((source / cls).glob("*.jpg"))[:per_class]
            if len(jpgs) < per_class:
                raise SystemExit(f"{source / cls}: {len(jpgs)} JPEGs, {per_class} needed for --images {images}")
            (partial / cls).mkdir()
            for jpg in jpgs:
                with Image.open(jpg) as image:
                    image.convert("RGB").save(partial / cls / f"{jpg.stem}.png")
        os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)  # gone already when renamed
    return folder


def reference_process(root: str, epochs: int, batch_size: int, out: str) -> None:
    """pytorch/examples' dcgan/main.py, ``--dataset folder --dataroot ROOT --imageSize 32 --batchSize 128
    --workers 2 --niter EPOCHS --outf OUT`` on a CPU, written out (its 32 px nets are ``Generator`` and
    ``Discriminator`` above; the step is ``reference_step``)."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms
    import torchvision.utils as vutils

    torch.manual_seed(0)
    dataset = dset.ImageFolder(root=root, transform=transforms.Compose([
        transforms.Resize(WHOLE_SIZE),
        transforms.CenterCrop(WHOLE_SIZE),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=WHOLE_WORKERS)
    netG, netD, optimizerD, optimizerG, criterion = build_reference(WHOLE_SIZE)
    fixed_noise = torch.randn(batch_size, NZ, 1, 1)
    for epoch in range(epochs):
        for i, data in enumerate(dataloader, 0):
            real_cpu = data[0]
            stats = reference_step(netG, netD, optimizerD, optimizerG, criterion, real_cpu,
                                   torch.randn(real_cpu.size(0), NZ, 1, 1))
            print('[%d/%d][%d/%d] Loss_D: %.4f Loss_G: %.4f D(x): %.4f D(G(z)): %.4f / %.4f'
                  % (epoch, epochs, i, len(dataloader), stats["loss_d"], stats["loss_g"], stats["d_x"],
                     stats["d_g_z1"], stats["d_g_z2"]))
            if i % 100 == 0:
                vutils.save_image(real_cpu, '%s/real_samples.png' % out, normalize=True)
                fake = netG(fixed_noise)
                vutils.save_image(fake.detach(), '%s/fake_samples_epoch_%03d.png' % (out, epoch), normalize=True)
        # do checkpointing
        torch.save(netG.state_dict(), '%s/netG_epoch_%d.pth' % (out, epoch))
        torch.save(netD.state_dict(), '%s/netD_epoch_%d.pth' % (out, epoch))


def spawn_whole(variant: str, root: Path, epochs: int, batch_size: int) -> dict:
    """One whole training process of ``variant`` on the PNG folder ``root``, in a fresh run folder (and,
    for ours, a fresh cache folder): its wall seconds, CPU use and peak RSS."""
    print(f"running the whole process of {WHOLE[variant]} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="dcgan-bench-whole-") as tmp:
        if variant == "reference":
            cmd = [sys.executable, __file__, "--whole-variant", "reference", "--root", str(root),
                   "--epochs", str(epochs), "--batch-size", str(batch_size), "--out", tmp]
            env = None
        else:
            cmd = [sys.executable, "-m", "bench.cli", "train", "--dataset", "folder", "--data-root", str(root),
                   "--image-size", str(WHOLE_SIZE), "--epochs", str(epochs), "--batch-size", str(batch_size),
                   "--precision", variant, "--out", os.path.join(tmp, "run")]
            env = {**os.environ, "DCGAN_BENCH_CACHE": os.path.join(tmp, "cache")}  # cold: decoding counts
        child = run_child(cmd, env)
    return {"seconds": child.seconds, "cpu_use": child.cpu_use(), "peak_rss_mib": child.peak_rss_mib}


def whole_process(data_root: str, images: int, epochs: int, batch_size: int = 128,
                  png_dir: str | None = None) -> dict[str, dict]:
    """Every whole-process variant on the same PNG folder, reference first: {variant: its measures}."""
    root = png_folder(data_root, images, png_dir)
    results = {v: {**spawn_whole(v, root, epochs, batch_size), "images": images, "epochs": epochs} for v in WHOLE}
    for r in results.values():
        r["images_s"] = r["images"] * r["epochs"] / r["seconds"]
        r["ratio"] = r["images_s"] / results["reference"]["images_s"]
    return results


def print_whole_table(results: dict[str, dict]) -> None:
    print("| variant | images x epochs | seconds | images/s | vs reference | peak RSS MiB | CPU use | goal |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for variant, r in results.items():
        goal = WHOLE_GOALS[variant]
        verdict = "" if goal is None else f"{'met' if r['ratio'] >= goal else 'MISSED'} (>= {goal:g}x)"
        print(f"| {WHOLE[variant]} | {r['images']:,} x {r['epochs']} | {r['seconds']:.1f} | {r['images_s']:.0f} "
              f"| {r['ratio']:.2f}x | {r['peak_rss_mib']:.0f} | {r['cpu_use']:.0%} | {verdict} |")


# ---- the dashboard ----------------------------------------------------------------------------------

def figures(quick: bool, data_root: str | None) -> list[Figure]:
    """The step at 32 and 64 px (ours bf16 and fp32 against the reference), then, given the CIFAR-10 export's root
    ``data_root``, the whole process. Quick: 5 timed steps instead of 20, and the whole process on 2,560
    images for 2 epochs instead of 12,800 for 4 (its fixed costs, start-up and the one decoding pass,
    weigh more in a shorter run: the ratio is then a lower bound of the full one's); each figure's name
    says which."""
    steps, out = 5 if quick else 20, []
    for size in (32, 64):
        step = {v: spawn_variant(v, size, 128, steps, 2) for v in VARIANTS}
        rate = {v: r["steps"] * r["batch_size"] / r["seconds"] for v, r in step.items()}
        out += [Figure(f"training step, {size} px, batch 128, {v} ({steps} steps)", f"{rate[v]:.0f} img/s",
                       f"{rate['reference']:.0f} img/s", rate[v] / rate["reference"], f">= {GOALS[v]:g}x",
                       rate[v] / rate["reference"] >= GOALS[v]) for v in ("bf16", "fp32")]
    if data_root is not None:
        images, epochs = (2_560, 2) if quick else (12_800, 4)
        whole = whole_process(data_root, images, epochs)
        ref = whole["reference"]["images_s"]
        out += [Figure(f"whole training process, {images:,} CIFAR-10 PNGs x {epochs} epochs, 32 px, {v}"
                       + (" (quick)" if quick else ""), f"{whole[v]['images_s']:.0f} img/s", f"{ref:.0f} img/s",
                       whole[v]["ratio"], f">= {WHOLE_GOALS[v]:g}x", whole[v]["ratio"] >= WHOLE_GOALS[v])
                for v in ("bf16", "fp32")]
    return out


# ---- the report -------------------------------------------------------------------------------------

def print_table(results: dict, sizes: list[int]) -> None:
    print("| size | variant | images/s | s/step | peak RSS MiB | CPU use | speedup vs reference | goal |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for size in sizes:
        ref = results[size, "reference"]
        ref_ips = ref["steps"] * ref["batch_size"] / ref["seconds"]
        for variant, label in VARIANTS.items():
            r = results[size, variant]
            ips = r["steps"] * r["batch_size"] / r["seconds"]
            speedup = ips / ref_ips
            goal = GOALS[variant]
            verdict = "" if goal is None else f"{'met' if speedup >= goal else 'MISSED'} (>= {goal:g}x)"
            print(f"| {size} | {label} | {ips:.1f} | {r['seconds'] / r['steps']:.3f} | {r['peak_rss_mib']:.0f} "
                  f"| {r['cpu_use']:.0%} | {speedup:.2f}x | {verdict} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", default="32,64", help="comma-separated image sizes (32, 64)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--check", action=argparse.BooleanOptionalAction, default=True,
                   help="verify that one step of ours fp32 equals one step of the reference")
    p.add_argument("--whole", action="store_true",
                   help="time the whole training process on PNG files instead of the step (needs --data-root)")
    p.add_argument("--data-root", default=None, help="--whole: the CIFAR-10 export (train/<class>/*.jpg)")
    p.add_argument("--images", type=int, default=12_800, help="--whole: training images (a multiple of 10)")
    p.add_argument("--epochs", type=int, default=4, help="--whole: epochs")
    p.add_argument("--png-dir", default=None,
                   help="--whole: where the PNG folder is written once and reused (default: the temporary folder)")
    p.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--whole-variant", choices=["reference"], help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.variant:  # child process: one variant, one JSON line
        print(json.dumps(run_variant(args.variant, args.size, args.batch_size, args.steps, args.warmup)))
        return
    if args.whole_variant:  # child process: the reference's whole training run
        reference_process(args.root, args.epochs, args.batch_size, args.out)
        return

    load = os.getloadavg()[0]  # other processes on the machine slow every variant down
    if args.whole:
        if not args.data_root:
            p.error("--whole needs --data-root (the CIFAR-10 export: train/<class>/*.jpg)")
        results = whole_process(args.data_root, args.images, args.epochs, args.batch_size, args.png_dir)
        print(f"## DCGAN whole training process, {args.images:,} CIFAR-10 PNGs x {args.epochs} epochs, 32 px, "
              f"batch {args.batch_size} (goal: bf16 >= 1.9x reference, fp32 >= 1.15x)")
        print()
        print(f"{machine()}; load average before the runs {load:.2f}")
        print()
        print_whole_table(results)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    results = {(size, v): spawn_variant(v, size, args.batch_size, args.steps, args.warmup, args.threads)
               for size in sizes for v in VARIANTS}

    print(f"## DCGAN training step, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} "
          f"warm-up (goal: bf16 >= 2x reference, fp32 >= 1x)")
    print()
    print(f"{machine()}; load average before the runs {load:.2f}")
    print()
    print_table(results, sizes)

    if args.check:
        print()
        if not check(sizes, args.batch_size):
            sys.exit(1)


if __name__ == "__main__":
    main()
