"""Near-duplicate search at scale: hashing throughput and radius search time and memory, 10^4-10^6 codes.

Three measurements, printed as Markdown:

1. ``hashing``: images/s of the autoencoder hash and of pHash on ``--images`` real images (decoded
   beforehand, so only hashing is timed).
2. ``search``: ``bench.hashing.search.search`` (grouping, range search, clusters) at each ``--radius`` over
   10^4, 10^5 and 10^6 128-bit codes of three sets (``--sets``):
   - ``augmented``: the codes of CIFAR-10's 60,000 images (train and test), then of the same images
     moved by up to 3 px and re-lit (brightness +-19 levels, contrast x0.85-1.15) at random, in
     turn, until the size is reached: a collection where each photo has ~16 near-duplicates.
   - ``marginal``: the 60,000 real codes, then independent random codes with the real codes' bit
     frequencies: a large collection of mostly distinct images.
   - ``noisy``: ``--images`` real codes, then copies of them with each bit flipped with probability
     ``--flip`` (0.05: ~6 bits from their source); 10^6 holds ~100 copies per source, so pairs crowd.
   The index is the task's ``auto`` (the exact substring join for radii below 12); at 10^5 also
   faiss's exact ``flat`` and approximate ``ivf``, checked against it.
   Goal on this 2-core CPU: under 30 s at 10^6.
3. ``recall``: at 10^5, the pairs each index finds against the exact flat index's.

Seconds are wall-clock; CPU seconds the process's own (``time.process_time``), which a machine
shared with other jobs inflates less. Peak memory is the process's peak resident set (Linux
``VmHWM``), reset before each search by writing 5 to ``/proc/self/clear_refs``: it counts faiss's
native allocations, which tracemalloc does not see, and includes the ~0.5 GB the interpreter, torch
and the codes already hold.

    python benchmarks/dedup_scale.py --data-root ~/data/cifar10 --radius 8 --ae ae.pt
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from common import Figure

GOAL_SECONDS = 30


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark measures memory on Linux only")


def timed_search(codes: np.ndarray, radius: int, index: str, nprobe: int):
    from bench.hashing.search import search

    Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here
    t0, cpu0 = time.perf_counter(), time.process_time()
    matches = search(codes, radius, index, nprobe)
    clusters = matches.clusters()
    return matches, clusters, time.perf_counter() - t0, time.process_time() - cpu0, peak_rss_mib()


def read_all(data) -> torch.Tensor:
    from bench.hashing.collection import read_chunks

    return torch.cat([images for _, images in read_chunks(data, range(len(data)), 4096, [])])


def augmented_codes(net, data_root: str, size: int, chunk: int = 10_000) -> np.ndarray:
    """Codes of CIFAR-10's train and test images, then of randomly moved and re-lit copies of them in
    turn, ``size`` in all; pixels are made and hashed ``chunk`` at a time."""
    from bench.hashing.augment import jittered, translated
    from bench.hashing.autoencoder import SIDE
    from dcgan.data import load_dataset

    images = torch.cat([read_all(load_dataset("cifar10", split, root=data_root, image_size=SIDE,
                                              channels=3)) for split in ("train", "test")])
    g, codes = torch.Generator().manual_seed(0), [net.hash(images)]
    for s in range(len(images), size, chunk):
        rows = torch.arange(s, min(s + chunk, size)) % len(images)
        moved = jittered(translated(images[rows], 3, g), 0.15, g)
        codes.append(net.hash(moved.round().to(torch.uint8)))
    return np.concatenate(codes)[:size]


def marginal_codes(net, data_root: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """CIFAR-10's 60,000 codes, then independent random codes with their bit frequencies, ``size`` in all."""
    cifar = augmented_codes(net, data_root, 60_000)  # the 60,000 images, none moved
    frequency = np.unpackbits(cifar, axis=1).mean(0)
    return np.concatenate([cifar, np.packbits(rng.random((size - len(cifar), len(frequency))) < frequency, axis=1)])


def figures(quick: bool, data_root: str | None) -> list[Figure]:
    """The search at 10^6 codes, radius 8, of a mostly distinct collection (``marginal``) with balanced
    (median) bits from an autoencoder trained on 10,000 CIFAR-10 images (2 epochs when quick, else 5)."""
    from bench.hashing.autoencoder import SIDE, AERecipe, train_autoencoder
    from dcgan.data import load_dataset

    name = "dedup search, 10^6 codes (CIFAR-10 + random at its bit frequencies), radius 8, median bits"
    if data_root is None:
        return [Figure(name, "skipped: needs --data-root", "", None, f"< {GOAL_SECONDS} s", None)]
    data = load_dataset("cifar10", "train", root=data_root, image_size=SIDE, channels=3, subset=10_000, seed=0)
    net, _ = train_autoencoder(read_all(data), AERecipe(epochs=2 if quick else 5, threshold="median"), seed=0)
    pool = marginal_codes(net, data_root, 10**6, np.random.default_rng(0))
    matches, _, seconds, cpu, peak = timed_search(pool, 8, "auto", 16)
    return [Figure(f"{name} ({len(matches):,} pairs, {cpu:.0f} CPU s, peak {peak:,.0f} MiB)", f"{seconds:.1f} s", "",
                   None, f"< {GOAL_SECONDS} s", seconds < GOAL_SECONDS)]


def main() -> None:
    from bench.hashing.autoencoder import SIDE, AERecipe, load_autoencoder, train_autoencoder
    from bench.hashing.collection import phash
    from dcgan.data import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="CIFAR-10 (train/<class>/*.jpg or torchvision's files)")
    ap.add_argument("--images", type=int, default=10_000, help="real images hashed (and the AE's training set)")
    ap.add_argument("--ae", help="a trained hashing autoencoder; default: 5 epochs on the --images images")
    ap.add_argument("--radius", type=int, nargs="+", default=[8])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    ap.add_argument("--sets", nargs="+", default=["augmented", "marginal", "noisy"],
                    choices=["augmented", "marginal", "noisy"])
    ap.add_argument("--flip", type=float, default=0.05)
    ap.add_argument("--nprobe", type=int, default=16)
    args = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    data = load_dataset("cifar10", "train", root=args.data_root, image_size=SIDE, channels=3,
                        subset=args.images, seed=0)
    images = read_all(data)
    if args.ae:
        net, _ = load_autoencoder(args.ae)
    else:
        net, _ = train_autoencoder(images, AERecipe(epochs=5), seed=0)
    print("\n| hashing | images | seconds | images/s |\n| --- | --- | --- | --- |")
    for name, fn in (("ae-hash", net.hash), ("phash", phash)):
        t0 = time.perf_counter()
        codes = fn(images)
        seconds = time.perf_counter() - t0
        print(f"| {name} | {len(images)} | {seconds:.2f} | {len(images) / seconds:,.0f} |", flush=True)
        if name == "ae-hash":
            real = codes

    size, rng = max(args.sizes), np.random.default_rng(0)
    print("\n| set | codes | radius | index | seconds | CPU seconds | pairs | clusters | peak RSS MiB |\n"
          + "| --- " * 9 + "|")
    recall = []
    for name in args.sets:
        if name == "noisy":
            extra = real[rng.integers(0, len(real), size - len(real))]
            flips = rng.random((len(extra), real.shape[1] * 8)) < args.flip
            pool = np.concatenate([real, np.packbits(np.unpackbits(extra, axis=1) ^ flips, axis=1)])
        elif name == "augmented":
            pool = augmented_codes(net, args.data_root, size)
        else:
            pool = marginal_codes(net, args.data_root, size, rng)
        for n in args.sizes:
            for r in args.radius:
                found = {}
                for index in ("auto", "flat", "ivf") if n == 10**5 else ("auto",):
                    m, c, seconds, cpu, peak = timed_search(pool[:n], r, index, args.nprobe)
                    found[m.index] = set(zip(m.near.i.tolist(), m.near.j.tolist()))
                    print(f"| {name} | {n:,} | {r} | {m.index} | {seconds:.1f} | {cpu:.1f} | {len(m):,} | {len(c):,} "
                          f"| {peak:,.0f} |", flush=True)
                if "flat" in found:
                    recall += [(name, n, r, index, len(pairs & found["flat"]), len(found["flat"]))
                               for index, pairs in found.items() if index != "flat"]
    if recall:
        print(f"\n| set | codes | radius | index (ivf: nprobe {args.nprobe}) | pairs of distinct codes found "
              "| exact (flat) | recall |\n| --- | --- | --- | --- | --- | --- | --- |")
        for name, n, r, index, hit, total in recall:
            print(f"| {name} | {n:,} | {r} | {index} | {hit:,} | {total:,} | {hit / max(total, 1):.4f} |")


if __name__ == "__main__":
    main()
