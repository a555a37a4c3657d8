"""Our float32 L-BFGS L2-SVM against scikit-learn's LinearSVC (liblinear) on real D features, and the
full CIFAR-10 protocol's time and memory.

Two measurements, printed as Markdown:

1. ``solver``: both solvers on the same standardised problem (N rows of real CIFAR-10 features,
   7168-d by default: the canonical 32 px D, all layers max-pooled to 4x4) at each C: seconds,
   objective value (ours evaluated at liblinear's solution too, so the comparison is of the same
   function), relative objective gap and test accuracy. Goal: >= 20x faster at equal objective
   (within the solvers' tolerance, 1e-4 relative).
2. ``protocol`` (``--protocol``): the full cifar10-svm protocol (C grid on a 5,000-image validation
   split, grid extension, refit on all 50,000 training images, test on 10,000) on the 28672-d
   features of the authors' ImageNet-32 discriminator: wall time, split into feature extraction,
   choosing C and the final fit, and the process's peak resident memory. Goals: under 8 minutes
   and 10 GiB, on 2 cores. The features are extracted anew into a temporary cache (the user's
   feature cache is neither read nor filled with these 6.9 GB).

Features come from ``--ckpt`` (a d.pt) or, by default, a randomly initialised D of the named
architecture: the solver's cost depends on the matrix sizes, not on how good the features are.
``figures(quick, data_root)`` gives the dashboard's rows: the solver at 5,000 x 7168 and C = 1e-3,
and when not quick the protocol's wall time and peak memory.

    python benchmarks/svm_solver.py --data-root ~/data/cifar10 --rows 5000
    python benchmarks/svm_solver.py --data-root ~/data/cifar10 --protocol --no-solver
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import Figure, machine, peak_rss_mib

GOAL_SPEEDUP = 20.0
OBJECTIVE_TOLERANCE = 1e-4  # relative: the solvers' own tolerance
GOAL_SECONDS = 480.0
GOAL_RSS_GIB = 10.0


def checkpoint(ckpt: str | None, arch: str, tmp: Path) -> Path:
    """``ckpt``, or a randomly initialised 32 px D of ``arch`` exported into ``tmp``."""
    if ckpt:
        return Path(ckpt)
    from dcgan.checkpoint import export_models
    from dcgan.config import DCGANConfig
    from dcgan.nets import Discriminator, Generator

    cfg = DCGANConfig(image_size=32, nc=3, arch=arch)
    torch.manual_seed(0)
    return export_models(tmp, cfg, Generator(cfg), Discriminator(cfg), prefix=f"{arch}-")[1]


def solver_problem(data_root: str, ckpt: str | None, rows: int, tmp: Path):
    """``rows`` training rows and 2,000 test rows of CIFAR-10 features, standardised by the training rows."""
    from bench.features import LayerSpec
    from bench.standardized import moments, standardize_
    from bench.tasks.base import RunContext

    ctx = RunContext(dataset="cifar10", data_root=data_root, ckpt=checkpoint(ckpt, "dcgan", tmp))
    _, cfg = ctx.net("discriminator")
    X_all = ctx.features("trained-d", "train", LayerSpec())
    y_all = ctx.labels("train", cfg)
    rng = np.random.default_rng(0)
    # split a random draw before sorting: the class-folder export is ordered by class
    drawn = rng.choice(len(y_all), rows + 2000, replace=False)
    fit_rows, test_rows = np.sort(drawn[:rows]), np.sort(drawn[rows:])
    X, Xt = X_all[fit_rows], X_all[test_rows]
    mean, std = moments(X)
    return standardize_(X, mean, std), y_all[fit_rows], standardize_(Xt, mean, std), y_all[test_rows]


def compare(X, y, Xt, yt, C: float) -> dict:
    """Both solvers at ``C``: seconds, iterations, objectives (ours evaluated at both solutions), accuracies."""
    from bench.svm import L2SVM, SklearnSVM

    ours = L2SVM(C, 10).fit(X, y)
    ref = SklearnSVM(C, 10).fit(X, y)
    f_ours, f_ref = ours.objective(X, y), ours.objective(X, y, ref.W)
    return {"C": C, "ours_s": ours.seconds, "iterations": ours.n_iter, "ref_s": ref.seconds, "f_ours": f_ours,
            "f_ref": f_ref, "gap": (f_ours - f_ref) / f_ref, "acc_ours": ours.accuracy(Xt, yt),
            "acc_ref": ref.accuracy(Xt, yt)}


def solver_table(args, tmp: Path) -> None:
    X, y, Xt, yt = solver_problem(args.data_root, args.ckpt, args.rows, tmp)
    print(f"\n## solver: {X.shape[0]} x {X.shape[1]} float32 CIFAR-10 features, 10 classes, one-vs-rest\n")
    print("| C | ours s | ours iterations | liblinear s | speedup | ours objective | liblinear objective | gap | "
          "ours acc | liblinear acc |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for C in args.c:
        r = compare(X, y, Xt, yt, C)
        print(f"| {C:g} | {r['ours_s']:.1f} | {r['iterations']} | {r['ref_s']:.1f} | {r['ref_s'] / r['ours_s']:.0f}x | "
              f"{r['f_ours']:.6g} | {r['f_ref']:.6g} | {r['gap']:+.2e} | {r['acc_ours']:.4f} | {r['acc_ref']:.4f} |",
              flush=True)


def protocol(data_root: str, ckpt: str | None, tmp: Path) -> dict:
    """The full cifar10-svm protocol on 28672-d features extracted into a temporary cache."""
    from bench.features import FeatureCache
    from bench.run import execute, plan

    t0 = time.perf_counter()
    planned = plan("cifar10-svm", ckpt=checkpoint(ckpt, "imagenet32", tmp), data_root=data_root, device="cpu",
                   results_dir=tmp / "results", overrides={"baselines": ""})
    planned.ctx.cache = FeatureCache(tmp / "features")
    res = execute(planned)
    total = time.perf_counter() - t0
    acc = next(r for r in res.rows if r["metric"] == "accuracy")
    details = json.loads(acc["details"])
    return {"total": total, "features": details["feature_seconds"], "select": details["select_seconds"],
            "fit": details["fit_seconds"], "C": details["C"], "val_accuracy_by_C": details["val_accuracy_by_C"],
            "accuracy": float(acc["value"]), "peak_gib": peak_rss_mib() / 1024}


def print_protocol(r: dict) -> None:
    rest = r["total"] - r["features"] - r["select"] - r["fit"]
    print("\n## protocol: cifar10-svm on 28672-d imagenet32 features (C grid + refit on 50,000, test 10,000)\n")
    print(f"- total {r['total']:.0f} s: feature extraction {r['features']:.0f} s, choosing C {r['select']:.0f} s, "
          f"final fit {r['fit']:.0f} s, the rest (loading, standardising, test) {rest:.0f} s; "
          f"goal < {GOAL_SECONDS:.0f} s")
    print(f"- peak RSS {r['peak_gib']:.1f} GiB; goal < {GOAL_RSS_GIB:.0f} GiB")
    print(f"- C tried: {r['val_accuracy_by_C']}; chosen C {r['C']}; test accuracy {r['accuracy']:.4f}")


def figures(quick: bool, data_root: str | None) -> list[Figure]:
    """The solver against LinearSVC at 5,000 x 7168, C = 1e-3; when not quick, the protocol's wall time
    and peak memory (about 8 minutes)."""
    if data_root is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        r = compare(*solver_problem(data_root, None, 5000, Path(tmp)), 1e-3)
        speedup = r["ref_s"] / r["ours_s"]
        out = [Figure("svm solver, 5,000 x 7168, C=1e-3", f"{r['ours_s']:.1f} s (gap {r['gap']:+.1e})",
                      f"{r['ref_s']:.1f} s LinearSVC", speedup, f">= {GOAL_SPEEDUP:.0f}x at equal objective",
                      speedup >= GOAL_SPEEDUP and abs(r["gap"]) <= OBJECTIVE_TOLERANCE)]
        if not quick:
            p = protocol(data_root, None, Path(tmp))
            out += [Figure("cifar10-svm protocol, 28672-d, wall time", f"{p['total']:.0f} s", "", None,
                           f"< {GOAL_SECONDS:.0f} s", p["total"] < GOAL_SECONDS),
                    Figure("cifar10-svm protocol, 28672-d, peak RSS", f"{p['peak_gib']:.1f} GiB", "", None,
                           f"< {GOAL_RSS_GIB:.0f} GiB", p["peak_gib"] < GOAL_RSS_GIB)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, help="CIFAR-10 (python batches or train/<class>/ export)")
    ap.add_argument("--ckpt", default=None, help="a d.pt (default: random-init D)")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--c", type=float, nargs="+", default=[1e-3, 1e-2])
    ap.add_argument("--protocol", action="store_true", help="also run the full 28672-d CIFAR-10 protocol")
    ap.add_argument("--no-solver", action="store_true", help="skip the LinearSVC comparison")
    args = ap.parse_args()
    if args.rows < 10 or min(args.c) <= 0:
        ap.error(f"--rows {args.rows} --c {args.c}: expected at least 10 rows and every C > 0")
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_solver:
            solver_table(args, Path(tmp))
        if args.protocol:
            print_protocol(protocol(args.data_root, args.ckpt, Path(tmp)))
    print(f"\npeak RSS {peak_rss_mib() / 1024:.1f} GiB")


if __name__ == "__main__":
    main()
