"""Throughput of the FID pipeline (samples from G, then Inception features) against torch-fidelity's
default CPU path, in one process on the same images and the same weights.

Variants:

- ``torch-fidelity default``: its ``FeatureExtractorInceptionV3`` through its own loader function
  (``torch_fidelity.utils.get_featuresdict_from_dataset``) as ``calculate_metrics`` calls it by default
  on a CPU: batch 64, loader workers (``save_cpu_ram`` off);
- ``ours fp32``: ``bench.extractors.FastInceptionV3`` (batch norm folded into the convolutions,
  channels_last, inference mode) through the same function as ``bench run fid`` calls it: batch
  ``--batch-size``, no workers;
- ``ours bf16`` (``--bf16``): the same with bf16 autocast; it changes the features, so the script also
  reports how far FID moves: FID of the generated images against ``--real`` images (the same count,
  from a registered data set) with bf16 features on both sides, against the fp32 FID.

The N samples are drawn once (``bench.fidelity.GeneratorSamples``, timed: it is the same code for
every variant) and every variant extracts features of that same uint8 tensor after one untimed
warm-up batch. A row's pipeline rate is N / (sampling seconds + its feature seconds). The goal: ours
fp32 at least 3x torch-fidelity's default with features equal to 1e-5 (max |a - b| / max |b|); the
script exits 1 when the features differ by more. CPU use is CPU seconds (this process and its loader
workers) over threads x wall seconds: far below 100% means other processes shared the cores.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import torch

from common import Figure, cpu_seconds, machine

GOAL_SPEEDUP = 3.0
FEATURE_TOLERANCE = 1e-5


class Images(torch.utils.data.Dataset):
    """A uint8 N×3×S×S tensor as torch-fidelity's input (picklable for its loader workers)."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def features(extractor, images: torch.Tensor, batch_size: int, workers: bool) -> tuple[torch.Tensor, float, float]:
    """(pool3 features, seconds, CPU use) through torch-fidelity's own loader function, after a warm-up batch."""
    from torch_fidelity.utils import get_featuresdict_from_dataset

    with torch.no_grad():
        extractor(images[:batch_size])
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    out = get_featuresdict_from_dataset(Images(images), extractor, batch_size, False, not workers, False)["2048"]
    seconds = time.perf_counter() - t0
    return out, seconds, (cpu_seconds() - cpu0) / (seconds * torch.get_num_threads())


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    stats = [fid_features_to_statistics(f) for f in (a, b)]
    return fid_statistics_to_metric(*stats, False)["frechet_inception_distance"]


def generator(args):
    from dcgan.checkpoint import load_net
    from dcgan.config import DCGANConfig
    from dcgan.nets import Generator

    if args.ckpt:
        G, cfg, _ = load_net(args.ckpt, "generator")
        return G, cfg
    cfg = DCGANConfig(image_size=args.image_size, nc=3)
    torch.manual_seed(0)
    return Generator(cfg).eval(), cfg  # random-init weights: the cost of a forward does not depend on them


def measure(args) -> tuple[list[tuple], float, DCGANConfig, dict]:
    """Rows (variant, batch, feature seconds, CPU use, max relative feature difference), the sampling
    seconds, the generator's config and our extractors with their features, for ``args.n`` samples."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.extractors import FastInceptionV3
    from bench.fidelity import GeneratorSamples
    from dcgan.weights import resolve_weights

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="This DataLoader will create")  # torch-fidelity's 4 workers on 2 cores
    weights = str(resolve_weights(args.weights))
    G, cfg = generator(args)

    t0 = time.perf_counter()
    samples = GeneratorSamples(G, cfg, args.n, seed=0, device=torch.device("cpu"), batch_size=256)
    images = torch.stack([samples[i] for i in range(len(samples))])
    t_sample = time.perf_counter() - t0

    reference = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=weights)
    ref, t_ref, use_ref = features(reference, images, 64, workers=True)
    rows = [("torch-fidelity default", 64, t_ref, use_ref, 0.0)]
    variants = [("fp32", FastInceptionV3)]
    if args.bf16:
        variants.append(("bf16", type("FastInceptionV3_bf16", (FastInceptionV3,), {"precision": "bf16"})))
    ours = {}
    for precision, cls in variants:
        net = cls(f"ours-{precision}", ["2048"], feature_extractor_weights_path=weights)
        feats, t, use = features(net, images, args.batch_size, workers=False)
        ours[precision] = (net, feats)
        rows.append((f"ours {precision}", args.batch_size, t, use, rel_diff(feats, ref)))
    return rows, t_sample, cfg, ours


def figures(quick: bool, data_root: str | None) -> list[Figure]:
    """Ours fp32 (the goal) and bf16 (no goal: not a standard FID) against torch-fidelity's default."""
    args = argparse.Namespace(n=128 if quick else 256, batch_size=64, ckpt=None, image_size=32, weights=None, bf16=True)
    rows, _, _, _ = measure(args)
    (_, _, t_ref, _, _), *ours = rows
    found = []
    for name, _, t, use, diff in ours:
        speedup, exact = t_ref / t, diff <= FEATURE_TOLERANCE
        goal = f">= {GOAL_SPEEDUP:g}x, features equal to {FEATURE_TOLERANCE:g}" if name == "ours fp32" else \
            "none (features not equal: not a standard FID)"
        found.append(Figure(f"FID features, {args.n} samples of a 32 px G, {name} (feature diff {diff:.1e}, "
                            f"CPU use {use:.0%})", f"{args.n / t:.1f} img/s", f"{args.n / t_ref:.1f} img/s", speedup,
                            goal, (speedup >= GOAL_SPEEDUP and exact) if name == "ours fp32" else None))
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--n", type=int, default=500, help="generated images per variant")
    p.add_argument("--batch-size", type=int, default=64, help="our Inception batch (torch-fidelity's default: 64)")
    p.add_argument("--ckpt", default=None, help="a generator (default: a random-init 64-wide DCGAN G)")
    p.add_argument("--image-size", type=int, default=32, choices=(32, 64, 128), help="of the random-init G")
    p.add_argument("--weights", default=None, help="Inception weights (default: as `bench run fid` resolves them)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--bf16", action="store_true", help="also time bf16 autocast and report its FID deviation")
    p.add_argument("--real", default="synthetic", help="registered data set for the bf16 FID check")
    p.add_argument("--data-root", default=None, help="its --data-root")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    rows, t_sample, cfg, ours = measure(args)
    t_ref = rows[0][2]

    print(f"## FID pipeline throughput: {args.n} samples of a {cfg.image_size} px generator, Inception-v3 "
          f"features (goal: ours fp32 >= {GOAL_SPEEDUP:g}x torch-fidelity default, features equal to "
          f"{FEATURE_TOLERANCE:g})")
    print()
    print(f"{machine()}; load average before the runs {load:.2f}; sampling: {args.n / t_sample:.0f} images/s "
          f"({t_sample:.1f} s)")
    print()
    print("| variant | batch | features images/s | sample + features images/s | speedup | CPU use "
          "| max rel. feature diff vs torch-fidelity |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, batch, t, use, diff in rows:
        print(f"| {name} | {batch} | {args.n / t:.2f} | {args.n / (t_sample + t):.2f} | {t_ref / t:.2f}x "
              f"| {use:.0%} | {diff:.1e} |")
    if args.bf16:
        print()
        print(bf16_fid_check(args, ours, cfg.image_size))
    if rows[1][4] > FEATURE_TOLERANCE:
        print(f"FAILED: ours fp32 features differ from torch-fidelity's by {rows[1][4]:.1e}", file=sys.stderr)
        sys.exit(1)


def bf16_fid_check(args, ours: dict, image_size: int) -> str:
    """FID of the generated images against ``args.n`` real images, with fp32 and with bf16 features."""
    from bench.fidelity import ImagesOnly
    from dcgan.data import load_dataset

    real = ImagesOnly(load_dataset(args.real, "train", root=args.data_root, image_size=image_size,
                                   channels=3, subset=args.n))
    real_images = torch.stack([real[i] for i in range(len(real))])
    fids = {}
    for precision, (net, fake_feats) in ours.items():
        real_feats, _, _ = features(net, real_images, args.batch_size, workers=False)
        fids[precision] = fid(fake_feats, real_feats)
    dev = abs(fids["bf16"] - fids["fp32"])
    return (f"bf16 FID check: {args.n} generated vs {len(real)} {args.real} train images: FID fp32 {fids['fp32']:.4f}, "
            f"bf16 {fids['bf16']:.4f}, deviation {dev:.4f} ({dev / fids['fp32']:.2%})")


if __name__ == "__main__":
    main()
