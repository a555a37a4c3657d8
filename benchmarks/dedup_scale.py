"""Near-duplicate search at scale: hashing throughput and radius search time and memory, 10^4-10^6 codes.

Three measurements, printed as Markdown:

1. ``hashing``: images/s of the autoencoder hash and of pHash on ``--images`` real images (decoded
   beforehand, so only hashing is timed).
2. ``search``: ``bench.dedup.search`` (grouping, faiss range search, clusters) at each ``--radius``
   over 10^4, 10^5 and 10^6 128-bit codes: the real images' codes, then copies of them with each bit
   flipped with probability ``--flip`` (0.05: about 6 bits from their source), so every size holds
   near-duplicates as real collections do. ``auto`` picks the index as the task does (flat up to
   ``EXACT_MAX`` distinct codes, IVF above), except at 10^5, searched with both.
   Goal on this 2-core CPU: under 30 s at 10^6.
3. ``recall``: the IVF index's pairs against the exact index's at 10^5.

Peak memory is the process's peak resident set (Linux ``VmHWM``), reset before each search by
writing 5 to ``/proc/self/clear_refs``: it counts faiss's native allocations, which tracemalloc
does not see, and includes the ~0.5 GB the interpreter, torch and the codes already hold.

    python benchmarks/dedup_scale.py --data-root ~/data/cifar10 --radius 8
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark measures memory on Linux only")


def timed_search(codes: np.ndarray, radius: int, index: str, nprobe: int):
    from bench import dedup

    Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here
    t0 = time.perf_counter()
    matches = dedup.search(codes, radius, index, nprobe)
    clusters = matches.clusters()
    return matches, clusters, time.perf_counter() - t0, peak_rss_mib()


def main() -> None:
    from bench import dedup
    from dcgan.data import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", required=True, help="CIFAR-10 (train/<class>/*.jpg or torchvision's files)")
    ap.add_argument("--images", type=int, default=10_000, help="real images hashed (and the AE's training set)")
    ap.add_argument("--ae", help="a trained hashing autoencoder; default: 5 epochs on the --images images")
    ap.add_argument("--radius", type=int, nargs="+", default=[8])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10**4, 10**5, 10**6])
    ap.add_argument("--flip", type=float, default=0.05)
    ap.add_argument("--nprobe", type=int, default=16)
    args = ap.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")

    data = load_dataset("cifar10", "train", root=args.data_root, image_size=dedup.SIDE, channels=3,
                        subset=args.images, seed=0)
    images = torch.cat([chunk for _, chunk in dedup.read_chunks(data, range(len(data)), 4096, [])])
    if args.ae:
        net, _ = dedup.load_autoencoder(args.ae)
    else:
        net, _ = dedup.train_autoencoder(images, dedup.AERecipe(epochs=5), seed=0)
    print("\n| hashing | images | seconds | images/s |\n| --- | --- | --- | --- |")
    for name, fn in (("ae-hash", net.hash), ("phash", dedup.phash)):
        t0 = time.perf_counter()
        codes = fn(images)
        seconds = time.perf_counter() - t0
        print(f"| {name} | {len(images)} | {seconds:.2f} | {len(images) / seconds:,.0f} |")
        if name == "ae-hash":
            real = codes

    rng = np.random.default_rng(0)
    extra = real[rng.integers(0, len(real), max(args.sizes) - len(real))]
    flips = rng.random((len(extra), real.shape[1] * 8)) < args.flip
    noisy = np.packbits(np.unpackbits(extra, axis=1) ^ flips, axis=1)
    pool = np.concatenate([real, noisy])
    print("\n| codes | radius | index | seconds | pairs | clusters | peak RSS MiB |\n" + "| --- " * 7 + "|")
    recall = []
    for n in args.sizes:
        for r in args.radius:
            found = {}
            for index in ("flat", "ivf") if n == 10**5 else ("auto",):
                m, c, seconds, peak = timed_search(pool[:n], r, index, args.nprobe)
                found[m.index] = set(zip(m.near.i.tolist(), m.near.j.tolist()))
                print(f"| {n:,} | {r} | {m.index} | {seconds:.1f} | {len(m):,} | {len(c):,} | {peak:,.0f} |",
                      flush=True)
            if {"flat", "ivf"} <= found.keys():
                exact = found["flat"]
                recall.append((n, r, len(found["ivf"] & exact), len(exact)))
    if recall:
        print(f"\n| IVF (nprobe {args.nprobe}) vs exact | radius | pairs of distinct codes found | exact | recall |\n"
              "| --- | --- | --- | --- | --- |")
        for n, r, hit, total in recall:
            print(f"| {n:,} codes | {r} | {hit:,} | {total:,} | {hit / max(total, 1):.4f} |")


if __name__ == "__main__":
    main()
