"""Our float32 L-BFGS L2-SVM against scikit-learn's LinearSVC (liblinear) on real D features.

Two measurements, printed as Markdown:

1. ``solver``: both solvers on the same standardised problem (N rows of real CIFAR-10 features,
   7168-d by default: the canonical 32 px D, all layers max-pooled to 4x4) at each C: seconds,
   objective value (ours evaluated at liblinear's solution too, so the comparison is of the same
   function), relative objective gap and test accuracy. Goal: >= 20x faster at equal objective.
2. ``protocol`` (``--protocol``): the full cifar10-svm protocol (C grid on a 5,000-image validation
   split, grid extension, refit on all 50,000 training images, test on 10,000) on the 28672-d
   features of the authors' ImageNet-32 discriminator, with wall time and peak memory (RSS).
   Goal: under 10 minutes.

Features come from ``--ckpt`` (a d.pt) or, by default, a randomly initialised D of the named
architecture: the solver's cost depends on the matrix sizes, not on how good the features are.

    python benchmarks/svm_solver.py --data-root ~/data/cifar10 --rows 5000
    python benchmarks/svm_solver.py --data-root ~/data/cifar10 --protocol
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def checkpoint(args, arch: str, tmp: Path) -> Path:
    if args.ckpt:
        return Path(args.ckpt)
    from dcgan.checkpoint import export_models
    from dcgan.config import DCGANConfig
    from dcgan.nets import Discriminator, Generator

    cfg = DCGANConfig(image_size=32, nc=3, arch=arch)
    torch.manual_seed(0)
    return export_models(tmp, cfg, Generator(cfg), Discriminator(cfg))[1]


def solver_table(args, tmp: Path) -> None:
    from bench.features import LayerSpec
    from bench.svm import L2SVM, SklearnSVM, moments, standardize_
    from bench.tasks.base import RunContext

    ctx = RunContext(dataset="cifar10", data_root=args.data_root, ckpt=checkpoint(args, "dcgan", tmp))
    _, cfg = ctx.net("discriminator")
    X_all = ctx.features("trained-d", "train", LayerSpec())
    y_all = ctx.labels("train", cfg)
    rng = np.random.default_rng(0)
    # split a random draw before sorting: the class-folder export is ordered by class
    rows = rng.choice(len(y_all), args.rows + 2000, replace=False)
    fit_rows, test_rows = np.sort(rows[: args.rows]), np.sort(rows[args.rows:])
    X = np.array(X_all[fit_rows], dtype=np.float32)
    Xt = np.array(X_all[test_rows], dtype=np.float32)
    y, yt = y_all[fit_rows], y_all[test_rows]
    mean, std = moments(X)
    standardize_(X, mean, std)
    standardize_(Xt, mean, std)
    print(f"\n## solver: {X.shape[0]} x {X.shape[1]} float32 CIFAR-10 features, 10 classes, one-vs-rest\n")
    print("| C | ours s | ours iterations | liblinear s | speedup | ours objective | liblinear objective | gap | "
          "ours acc | liblinear acc |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for C in args.c:
        ours = L2SVM(C, 10).fit(X, y)
        ref = SklearnSVM(C, 10).fit(X, y)
        f_ours, f_ref = ours.objective(X, y), ours.objective(X, y, ref.W)
        print(f"| {C:g} | {ours.seconds:.1f} | {ours.n_iter} | {ref.seconds:.1f} | {ref.seconds / ours.seconds:.0f}x | {f_ours:.6g} | "
              f"{f_ref:.6g} | {(f_ours - f_ref) / f_ref:+.2e} | {ours.accuracy(Xt, yt):.4f} | {ref.accuracy(Xt, yt):.4f} |",
              flush=True)


def protocol(args, tmp: Path) -> None:
    from bench.run import run

    t0 = time.perf_counter()
    res = run("cifar10-svm", ckpt=checkpoint(args, "imagenet32", tmp), data_root=args.data_root, device="cpu",
              results_dir=tmp / "results", overrides={"baselines": ""})
    total = time.perf_counter() - t0
    acc = next(r for r in res.rows if r["metric"] == "accuracy")
    import json

    params = json.loads(acc["params"])
    print(f"\n## protocol: cifar10-svm on 28672-d imagenet32 features (C grid + refit on 50,000, test 10,000)\n")
    print(f"- total {total:.0f} s (feature extraction {params['feature_seconds']:.0f} s, final fit "
          f"{params['fit_seconds']:.0f} s); peak RSS {peak_rss_gib():.1f} GiB; goal < 600 s")
    print(f"- C tried: {params['val_accuracy_by_C']}; chosen C {params['C']}; test accuracy {float(acc['value']):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", required=True, help="CIFAR-10 (python batches or train/<class>/ export)")
    ap.add_argument("--ckpt", default=None, help="a d.pt (default: random-init D)")
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--c", type=float, nargs="+", default=[1e-3, 1e-2])
    ap.add_argument("--protocol", action="store_true", help="also run the full 28672-d CIFAR-10 protocol")
    ap.add_argument("--no-solver", action="store_true", help="skip the LinearSVC comparison")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_solver:
            solver_table(args, Path(tmp))
        if args.protocol:
            protocol(args, Path(tmp))
    print(f"\npeak RSS {peak_rss_gib():.1f} GiB")


if __name__ == "__main__":
    main()
