"""Linear probes on max-pooled discriminator features: the paper's CIFAR-10 and SVHN experiments.

Protocol (paper section 5; the authors' SVHN analysis script):
1. Features of every conv layer of D, max-pooled to 4x4, flattened, concatenated (``LayerSpec``).
2. Standardised with the labelled training rows' mean and std.
3. A regularised linear L2-SVM, one-vs-rest; C chosen on a validation split from a grid (extended
   when the best C sits on an edge), averaged over the selection draws.
4. Each draw refitted at that C and scored on the test split: one result row per draw and metric.

With all labels (``labels_per_class`` unset, CIFAR-10), the validation rows are held out of the
training split for choosing C and the final fit uses the whole training split. With few labels
(SVHN: 100 per class), each draw samples the labelled set, the validation set comes from the rest
of the training split, and the final fit uses the labelled set alone.

The same run measures the baselines (raw pixels, a randomly initialised D of the same
architecture), so the gain of training is visible in one table.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from bench.features import LayerSpec
from bench.results import Measurement
from bench.standardized import Standardized, moments
from bench.svm import SOLVERS, prepare
from bench.tasks.base import TASKS, Reference, RunContext, Task, Workload
from dcgan.errors import DataError
from dcgan.params import Params, param

EDGE_EXTENSIONS = 4  # how many times the C grid may grow past an edge
FIT_PASSES = 3000  # products with the data per fit, set-up included: a rough guess for bench evaluate's estimate


@dataclass(frozen=True)
class SvmParams(Params):
    features: str = param("all/max4", "layer spec: layers/pooling[/bn-train] (paper: all layers, max-pooled to 4x4)")
    c_grid: tuple[float, ...] = param((1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2),
                                      "SVM C values tried on the validation split (authors' SVHN script)",
                                      low=0, low_open=True, nonempty=True)
    patience: int = param(2, "stop going up the C grid after this many C in a row below the best (0: whole grid)",
                          low=0)
    labels_per_class: int | None = param(None, "labelled training images per class; none: every training label "
                                               "(the paper's CIFAR-10 table)", low=1)
    val_size: int = param(5000, "validation rows for choosing C, held out of train (at most a fifth of it)", low=1)
    draws: int = param(1, "labelled subsets drawn, each scored on the test split (one row each)", low=1)
    selection_draws: int = param(10, "draws whose mean validation accuracy chooses C (authors' SVHN script)", low=1)
    baselines: tuple[Literal["random-d", "raw-pixels"], ...] = param(
        ("random-d", "raw-pixels"), "measured beside the trained D (none: no baseline)")
    solver: Literal["lbfgs", "sklearn"] = param("lbfgs", "our float32 L-BFGS, or scikit-learn's LinearSVC "
                                                         "(the slow reference)")
    tol: float = param(1e-4, "solver tolerance on the relative objective", low=0, low_open=True)


def draw_indices(labels: np.ndarray, labels_per_class: int | None, val_size: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, validation) row indices into the training split, disjoint.

    Few labels: ``labels_per_class`` of every class, then ``val_size`` rows from the rest.
    All labels: ``val_size`` random rows for validation, the rest labelled.
    """
    n = len(labels)
    if labels_per_class is None:
        val_size = min(val_size, n // 5)
        perm = rng.permutation(n)
        return np.sort(perm[val_size:]), np.sort(perm[:val_size])
    labelled = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < labels_per_class:
            raise DataError(f"class {c} has {len(members)} training images, fewer than labels_per_class={labels_per_class}")
        labelled.append(rng.choice(members, labels_per_class, replace=False))
    labelled = np.sort(np.concatenate(labelled))
    rest = np.setdiff1d(np.arange(n), labelled)
    val = np.sort(rng.choice(rest, min(val_size, len(rest)), replace=False))
    return labelled, val


class SvmProbe(Task):
    """L2-SVM on D's features for any labelled data set (``bench run svm --dataset NAME``)."""

    summary = "L2-SVM on max-pooled D features (paper section 5), with raw-pixel and random-D baselines"
    version = 3  # 3: per-class L-BFGS with exact line search; 2: stop on the estimated objective gap; 1: on the gradient
    paper = "5.1"
    needs = "discriminator"
    Params = SvmParams
    default_dataset = "cifar10"
    report_params = ("labels_per_class",)  # the low-label and the all-label protocols are never averaged
    smoke = {"c_grid": (1e-3, 1e-2), "val_size": 60, "selection_draws": 2}
    section = "representation"
    headline = ("accuracy",)

    @classmethod
    def workload(cls, p: SvmParams, sizes: dict[str, int]) -> Workload:
        """Features of both splits per D (trained, random), and L-BFGS fits of a guessed length."""
        n_train, n_test = sizes.get("train", 0), sizes.get("test", 0)
        n_fit = n_train if p.labels_per_class is None else min(n_train, p.labels_per_class * sizes.get("classes", 10))
        fits = len(p.c_grid) * min(p.selection_draws, p.draws) + p.draws
        dims = sizes.get("dims", 0)
        return Workload(d_images=(1 + ("random-d" in p.baselines)) * (n_train + n_test),
                        flops=(1 + len(p.baselines)) * fits * FIT_PASSES * 4 * n_fit * dims)

    def check(self, ctx: RunContext, p: SvmParams) -> None:
        """An unknown layer, or a D without features of an image alone, fails before any work."""
        LayerSpec.parse(p.features).resolve(ctx.net("discriminator")[0])

    def run(self, ctx: RunContext, p: SvmParams) -> list[Measurement]:
        spec = LayerSpec.parse(p.features)
        D, cfg = ctx.net("discriminator")
        y_train, y_test = ctx.labels("train", cfg), ctx.labels("test", cfg)
        n_classes = int(max(y_train.max(), y_test.max())) + 1
        rng = np.random.default_rng(ctx.seed)
        splits = [draw_indices(y_train, p.labels_per_class, p.val_size, rng) for _ in range(p.draws)]
        out = []
        for model in ("trained-d", *p.baselines):
            t0 = time.perf_counter()
            X_train = ctx.features(model, "train", spec)
            X_test = ctx.features(model, "test", spec)
            t_feat = time.perf_counter() - t0
            feat = "pixels" if model == "raw-pixels" else str(spec)
            tqdm.write(f"{model}: features {X_train.shape[1]}-d, {t_feat:.1f} s", file=sys.stderr)
            for m in self._probe(p, X_train, y_train, X_test, y_test, n_classes, splits):
                m.model, m.features = model, feat
                m.details["feature_seconds"] = round(t_feat, 2)
                out.append(m)
        return out

    def reads(self, ctx: RunContext, p: SvmParams) -> list[tuple[str, str, str | None]]:
        ctx.require_labels()  # an unlabelled data set (often without a test split) fails on what it lacks
        return [(ctx.dataset, split, ctx.data_root) for split in ("train", "test")]

    def _probe(self, p, X_train, y_train, X_test, y_test, n_classes, splits) -> list[Measurement]:
        solver = SOLVERS.get(p.solver)
        t_select = time.perf_counter()
        paths = [_CPath(solver, n_classes, p.tol, X_train, y_train, labelled, val)
                 for labelled, val in splits[: p.selection_draws]]
        scores: dict[float, float] = {}

        def score(C: float) -> None:
            t0 = time.perf_counter()
            scores[C] = float(np.mean([path.val_accuracy(C) for path in paths]))
            tqdm.write(f"  C={C:g}: validation accuracy {scores[C]:.4f} ({time.perf_counter() - t0:.1f} s)",
                       file=sys.stderr)

        grid = sorted(p.c_grid)
        for C in tqdm(grid, desc="choosing C", unit="C", disable=None, leave=False):
            score(C)
            if p.patience and _falls_since_best(scores) >= p.patience:
                break  # larger C fit slowest (worst conditioned) and validation accuracy is falling
        step = grid[1] / grid[0] if len(grid) > 1 else 10.0
        for _ in range(EDGE_EXTENSIONS):  # grow the grid while the best C sits on its edge
            best = max(scores, key=scores.get)
            if best == min(scores):
                score(best / step)
            elif best == max(scores):
                score(best * step)
            else:
                break
        best_c = max(scores, key=scores.get)
        paths.clear()  # their fitted models hold memory the test draws need
        t_select = time.perf_counter() - t_select

        rows = []
        for draw, (labelled, val) in enumerate(tqdm(splits, desc="test draws", unit="draw", disable=None, leave=False)):
            fit_rows = labelled if p.labels_per_class is not None else np.sort(np.concatenate([labelled, val]))
            X = _standardized(X_train, fit_rows)
            clf = solver(best_c, n_classes, tol=p.tol).fit(X, y_train[fit_rows])
            acc = clf.accuracy(Standardized(X_test, None, X.mean, X.std), y_test)
            extra = {"C": best_c, "val_accuracy_by_C": {f"{c:g}": round(a, 5) for c, a in sorted(scores.items())},
                     "n_fit": int(len(fit_rows)), "n_test": int(len(y_test)), "fit_seconds": round(clf.seconds, 2),
                     "select_seconds": round(t_select, 2)}
            rows += [Measurement("accuracy", acc, draw=draw, details=extra),
                     Measurement("error", 1 - acc, draw=draw, details=extra),
                     Measurement("C", best_c, draw=draw, split="val", details=extra),
                     Measurement("val_accuracy", scores[best_c], draw=draw, split="val", details=extra)]
        return rows


def _falls_since_best(scores: dict[float, float]) -> int:
    """How many C, scored in increasing order, came after the best one (none of them better)."""
    order = sorted(scores)
    return len(order) - 1 - order.index(max(order, key=scores.get))


class _CPath:
    """One selection draw's standardised train/validation rows and its fits along the C path.

    Each new C starts from the solution at the nearest C already fitted (a warm start), and the
    solver is prepared once for all C. Both splits are rows of the training features, standardised
    by the labelled rows' moments, not copies.
    """

    def __init__(self, solver, n_classes, tol, X_train, y_train, labelled, val):
        self.solver, self.n_classes, self.tol = solver, n_classes, tol
        self.X = _standardized(X_train, labelled)
        self.prepared = prepare(self.X)  # once for every C
        self.y = y_train[labelled]
        self.X_val = Standardized(X_train, val, self.X.mean, self.X.std)
        self.y_val = y_train[val]
        self.fits: dict[float, object] = {}

    def val_accuracy(self, C: float) -> float:
        near = min(self.fits, key=lambda c: abs(np.log(c / C)), default=None)
        warm = self.fits[near].W if near is not None else None
        self.fits[C] = self.solver(C, self.n_classes, tol=self.tol).fit(self.X, self.y, warm_start=warm,
                                                                        prepared=self.prepared)
        return self.fits[C].accuracy(self.X_val, self.y_val)


def _standardized(X_all: np.ndarray, rows: np.ndarray) -> Standardized:
    """``X_all[rows]`` standardised by its own mean and std, in place of ``X_all`` (no copy)."""
    return Standardized(X_all, rows, *moments(X_all, rows))


@TASKS.register("svm")
class Svm(SvmProbe):
    default_dataset = None  # any labelled data set: --dataset is required


@TASKS.register("cifar10-svm")
class Cifar10Svm(SvmProbe):
    default_dataset = "cifar10"
    references = (
        Reference("cifar10", "accuracy", 0.828, "DCGAN (D trained on ImageNet-1k 32 px), Radford et al. 2016, "
                                                "Table 1"),
        Reference("cifar10", "accuracy", 0.806, "1-layer K-means (4800 features), Coates & Ng 2011, in Radford "
                                                "et al. Table 1"),
        Reference("cifar10", "accuracy", 0.820, "3-layer K-means learned RF (3200 features), in Radford et al. "
                                                "Table 1"),
    )


@dataclass(frozen=True)
class SvhnParams(SvmParams):
    labels_per_class: int | None = param(100, "labelled training images per class (paper: 1000 labels, 100 per "
                                              "class)", low=1)
    val_size: int = param(10000, "validation rows from the rest of train (paper: 10,000)", low=1)
    draws: int = param(10, "labelled subsets drawn (the authors' script used 100)", low=1)


@TASKS.register("svhn-svm")
class SvhnSvm(SvmProbe):
    default_dataset = "svhn"
    Params = SvhnParams
    smoke = {**SvmProbe.smoke, "labels_per_class": 5, "draws": 2}
    references = (Reference("svhn", "error", 0.2248, "DCGAN + L2-SVM, 1000 labels, Radford et al. 2016, Table 2"),)


@TASKS.register("fashion-mnist-svm")
class FashionMnistSvm(SvmProbe):
    default_dataset = "fashion-mnist"


@TASKS.register("mnist-svm")
class MnistSvm(SvmProbe):
    default_dataset = "mnist"
