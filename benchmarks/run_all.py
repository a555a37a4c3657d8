"""Every speed goal of the suite in one Markdown table: figure, ours, reference, ratio, goal, met.

Runs each benchmark script's ``figures(quick, data_root)`` in turn, in this process's order and on
nothing else but this machine, and prints one table headed by the machine (CPU model, cores, the
instruction sets that decide our speed: AVX2, AVX-512, AVX-512 BF16, AMX). ``--quick`` keeps the whole
table to a few minutes on 2 cores (fewer steps and images; each figure's name says what it ran);
without it, each script runs at the settings its goal was set at (the full CIFAR-10 probe protocol
alone takes ~8 minutes and 10 GiB). Run it with nothing else on the CPU: a second job slows every
figure several times and the ratios are then not to be trusted.

    python benchmarks/run_all.py --quick --data-root ~/data/cifar10
    python benchmarks/run_all.py --only train fid --data-root ~/data/cifar10

The data root is a CIFAR-10 copy (torchvision's python batches, or train/<class>/ image folders):
the figures that read real images need it and are skipped, with a line saying so, without it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the scripts import each other by module name

from common import HEADER, Figure, machine  # noqa: E402

# script -> what its figures are; in the order they run (cheap first)
SCRIPTS = {
    "train_throughput": "training step and whole training process against pytorch/examples' loop",
    "svm_solver": "our L2-SVM against scikit-learn's LinearSVC; the full CIFAR-10 probe protocol",
    "fid_throughput": "Inception features against torch-fidelity",
    "dedup_scale": "near-duplicate search at 10^6 codes",
    "evaluate_smoke": "`bench evaluate --budget smoke` on a small trained run",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="a few minutes in all: fewer steps and images")
    ap.add_argument("--data-root", default=None, help="a CIFAR-10 copy for the figures on real images")
    ap.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS), help="run these scripts only")
    args = ap.parse_args()

    rows: list[Figure] = []
    started = time.perf_counter()
    for name in args.only:
        t0 = time.perf_counter()
        print(f"running {name}: {SCRIPTS[name]} ...", file=sys.stderr, flush=True)
        found = importlib.import_module(name).figures(args.quick, args.data_root)
        rows += found
        print(f"  {len(found)} figures in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)

    print(f"## Speed dashboard{' (quick)' if args.quick else ''}, {time.strftime('%Y-%m-%d')}")
    print()
    print(f"Machine: {machine()}. Took {time.perf_counter() - started:.0f} s.")
    print()
    print(HEADER)
    for row in rows:
        print(row.markdown())
    missed = [r.name for r in rows if r.met is False]
    print()
    print(f"{sum(r.met is True for r in rows)} goals met, {len(missed)} missed" + (f": {'; '.join(missed)}" if missed else ""))


if __name__ == "__main__":
    main()
