"""Wall time of `bench evaluate --budget smoke`: the whole report card of a small trained run.

A DCGAN is trained on scikit-learn's bundled digits as `bench quickstart` trains it (32 px, 32-wide
nets, batch 64; not timed), then `bench evaluate RUN --budget smoke` runs in a fresh process with an
empty cache (the Inception weights linked in when they are installed, so FID is part of it) and a
fresh results folder: every feature extracted, every SVM fitted, every picture drawn. The time is
what a new user waits after training; the goal is the docs' "a few minutes" (`docs/evaluate.md`).

    python benchmarks/evaluate_smoke.py            # quickstart's 80 epochs of training first
    python benchmarks/evaluate_smoke.py --epochs 5 # the same evaluation of a briefly trained G and D
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, cpu_seconds, machine

GOAL_SECONDS = 120  # README: "about a minute" for a 32 px run at smoke


def bench(*args: str, env: dict) -> None:
    """One `bench` command in its own process (as a user runs it), its output hidden unless it fails."""
    done = subprocess.run([sys.executable, "-m", "bench.cli", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def evaluate_seconds(epochs: int) -> tuple[float, float, bool]:
    """(wall seconds, CPU use, FID included) of the smoke evaluation of a digits run trained ``epochs`` epochs."""
    from dcgan.fsutil import cache_dir

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = {**os.environ, "DCGAN_BENCH_CACHE": str(tmp / "cache")}
        weights = cache_dir() / "weights"
        with_fid = weights.is_dir() and any(weights.iterdir())
        if with_fid:
            (tmp / "cache").mkdir()
            (tmp / "cache" / "weights").symlink_to(weights)
        run = tmp / "run"
        bench("train", "--dataset", "digits", "--image-size", "32", "--ngf", "32", "--ndf", "32", "--batch-size", "64",
              "--epochs", str(epochs), "--out", str(run), env=env)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        bench("evaluate", str(run), "--budget", "smoke", "--device", "cpu", "--results", str(tmp / "results"), env=env)
        seconds = time.perf_counter() - t0
        import torch
        return seconds, (cpu_seconds() - cpu0) / (seconds * torch.get_num_threads()), with_fid


def figures(quick: bool, data_root: str | None) -> list[Figure]:
    epochs = 5 if quick else 80
    seconds, use, with_fid = evaluate_seconds(epochs)
    what = "with FID" if with_fid else "no FID: Inception weights not installed"
    return [Figure(f"`evaluate --budget smoke`, digits run of {epochs} epochs ({what}; CPU use {use:.0%})",
                   f"{seconds:.0f} s", "", None, f"< {GOAL_SECONDS} s", seconds < GOAL_SECONDS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--epochs", type=int, default=80, help="training epochs of the evaluated run (not timed)")
    args = ap.parse_args()
    seconds, use, with_fid = evaluate_seconds(args.epochs)
    print(f"{machine()}\n\n`bench evaluate --budget smoke` of a {args.epochs}-epoch digits run: {seconds:.0f} s "
          f"(CPU use {use:.0%}; FID {'included' if with_fid else 'skipped: no Inception weights'}); goal < {GOAL_SECONDS} s")


if __name__ == "__main__":
    main()
