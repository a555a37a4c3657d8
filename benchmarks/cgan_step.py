"""Training-step cost of each conditional DCGAN conditioning against the unconditional DCGAN's step.

"Equal training time" between conditionings (docs/experiments/cgan.md) needs what a step of each
costs on the same machine in the same run: a concat G feeds the one-hot label to every layer (wider
convolutions), a concat D does the same on D's side, cbn and projection add a per-class gain, bias or
embedding, acgan a class head. For each variant, ``Trainer.train_step`` (the family's step, as
``bench train`` runs it) on the same uint8 batch and balanced labels, canonical 32 or 64 px nets
(ngf = ndf = 64, batch 128, channels-last).

The variants are timed in interleaved rounds (every variant ``--steps`` steps, then the next round),
and each one's median over rounds is reported: a slow spell of the machine falls on every variant
alike instead of on one. The table gives seconds/step, images/s, the ratio to the DCGAN step and the
CPU use (CPU time over threads x wall time: well under 100% means other processes shared the cores).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch
from common import cpu_seconds, machine
from train_throughput import NC, NDF, NGF, NZ, real_batch

from dcgan.config import DCGANConfig
from dcgan.models.cdcgan import D_CONDS, G_CONDS, CDCGANConfig
from dcgan.train import Trainer, TrainConfig

CLASSES = 10


def variants(image_size: int) -> dict[str, DCGANConfig]:
    """The unconditional DCGAN first (the ratios' reference), then every G x D conditioning."""
    common = dict(image_size=image_size, nc=NC, nz=NZ, ngf=NGF, ndf=NDF)
    out = {"dcgan": DCGANConfig(**common)}
    for g in G_CONDS:
        for d in D_CONDS:
            out[f"cdcgan {g}/{d}"] = CDCGANConfig(**common, g_cond=g, d_cond=d, num_classes=CLASSES)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--size", type=int, default=32, choices=(32, 64), help="image size")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant and round")
    p.add_argument("--rounds", type=int, default=4, help="interleaved rounds; the median round counts")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant before the rounds")
    args = p.parse_args()

    real_u8 = real_batch(args.batch_size, args.size)
    labels = torch.arange(args.batch_size) % CLASSES
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        trainers = {}
        for name, model in variants(args.size).items():
            cfg = TrainConfig(model=model, dataset="synthetic", batch_size=args.batch_size, precision=args.precision)
            trainers[name] = Trainer(cfg, os.path.join(out, name.replace(" ", "_").replace("/", "-")), device="cpu")
        batch = {name: t.family.batch(t, real_u8, labels) for name, t in trainers.items()}  # the step's arguments
        for name, t in trainers.items():
            for _ in range(args.warmup):
                t.train_step(*batch[name])
        times = {name: [] for name in trainers}
        cpu = {name: [] for name in trainers}
        for _ in range(args.rounds):
            for name, t in trainers.items():
                c0, t0 = cpu_seconds(), time.perf_counter()
                for _ in range(args.steps):
                    t.train_step(*batch[name])
                seconds = time.perf_counter() - t0
                times[name].append(seconds / args.steps)
                cpu[name].append((cpu_seconds() - c0) / (seconds * torch.get_num_threads()))

    print(f"## Conditional DCGAN training step, {args.size} px, batch {args.batch_size}, {args.precision}, "
          f"median of {args.rounds} interleaved rounds of {args.steps} steps")
    print()
    print(f"{machine()}; load average before the runs {load:.2f}")
    print()
    print("| variant | s/step | images/s | vs dcgan step | CPU use |")
    print("| --- | ---: | ---: | ---: | ---: |")
    ref = statistics.median(times["dcgan"])
    for name in trainers:
        s = statistics.median(times[name])
        print(f"| {name} | {s:.3f} | {args.batch_size / s:.0f} | {s / ref:.2f}x | {min(cpu[name]):.0%} |")


if __name__ == "__main__":
    main()
