"""The linear probe's features used where they lie: ``Standardized`` rows of a read-only memory-mapped
cache file against explicit standardised copies (how the probe used to work), on real digits."""

import json
import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import load_digits

import bench.svm
from bench.features import FeatureCache, LayerSpec
from bench.run import run
from bench.standardized import Standardized, moments, standardize_
from bench.svm import L2SVM, prepare
from bench.tasks.base import RunContext
from bench.tasks.svm import SvmParams, SvmProbe, draw_indices
from fixtures_tasks import tiny_checkpoints, write_digits_as


def _lifted_digits(copies: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """The real digits ``copies`` times over, each copy with its own pixel noise, through a fixed random
    ReLU layer to ``dims`` features (as a random-init D would map them): float32 rows and labels."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    X = np.concatenate([X + rng.normal(0, 1, X.shape) for _ in range(copies)])
    lift = rng.standard_normal((64, dims)) / 8
    return np.maximum(X @ lift, 0).astype(np.float32), np.tile(y, copies)


def _cached(tmp_path, X: np.ndarray, name: str) -> np.ndarray:
    """``X`` written into a feature cache and loaded back as the probe gets its features."""
    def fill(out):
        out[:] = X

    return FeatureCache(tmp_path / "features").get_or_extract({"rows": name}, X.shape, fill)


def test_standardized_rows_compute_the_products_of_a_standardised_copy(tmp_path):
    X, y = _lifted_digits(2, 300)
    mm = _cached(tmp_path, X, "digits")
    assert isinstance(mm, np.memmap) and not mm.flags.writeable
    rng = np.random.default_rng(1)
    W = rng.standard_normal((301, 10))
    dense = np.sort(rng.permutation(len(X))[: len(X) * 9 // 10])  # all but a held-out tenth
    sparse = np.sort(rng.permutation(len(X))[:300])  # a few labelled rows
    for rows in (None, dense, sparse):
        chosen = np.arange(len(X)) if rows is None else rows
        mean, std = moments(mm, rows)
        ref_mean, ref_std = moments(X[chosen])
        assert np.array_equal(mean, ref_mean) and np.array_equal(std, ref_std)
        copy = standardize_(X[chosen], mean, std)
        A = Standardized(mm, rows, mean, std)
        assert np.shares_memory(A.X, mm) and A.shape == copy.shape
        assert np.array_equal(A.take(), copy)  # rows it copies are standardised bit for bit as a copy is
        exact = copy.astype(np.float64) @ W[:-1] + W[-1]
        assert np.abs(A.scores(W) - exact).max() <= 1e-5 * np.abs(exact).max()
        R = rng.standard_normal((len(chosen), 10)).astype(np.float32)
        exact = copy.T.astype(np.float64) @ R
        assert np.abs(A.transposed_product(R) - exact).max() <= 1e-5 * np.abs(exact).max()
    # a fit on the rows in place reaches the optimum of the fit on the copy, to float rounding
    A = Standardized(mm, dense, *moments(mm, dense))
    copy = A.take()
    in_place, on_copy = L2SVM(1e-2, 10).fit(A, y[dense]), L2SVM(1e-2, 10).fit(copy, y[dense])
    f_in_place, f_copy = on_copy.objective(copy, y[dense], in_place.W), on_copy.objective(copy, y[dense])
    assert abs(f_in_place - f_copy) / f_copy < 1e-5
    for bad in (dense[::-1], np.array([0, 0, 1]), np.array([-1, 2]), np.array([len(X)])):
        with pytest.raises(ValueError, match="rows"):
            Standardized(mm, bad)
    with pytest.raises(ValueError, match="both"):
        Standardized(mm, None, mean=np.zeros(300, np.float32))


def test_the_probe_fits_a_read_only_memory_map_without_copying_it(tmp_path, monkeypatch):
    """The all-label protocol (C chosen on held-out rows, refit on all, test) allocates well under one
    copy of the training features: the old copies took more than two."""
    X, y = _lifted_digits(11, 1024)
    n = len(X) // 11
    train, test = _cached(tmp_path, X[n:], "train"), _cached(tmp_path, X[:n], "test")
    y_train, y_test = y[n:], y[:n]
    monkeypatch.setattr(bench.svm, "EIGEN_SAMPLE_ROWS", 1024)  # the preconditioner's sample, 6% of the rows
    p = SvmParams(c_grid=(1e-3, 1e-2), patience=0, val_size=2000)
    splits = [draw_indices(y_train, None, p.val_size, np.random.default_rng(0))]
    tracemalloc.start()
    try:
        rows = SvmProbe()._probe(p, train, y_train, test, y_test, 10, splits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.4 * train.nbytes, (peak, train.nbytes)
    assert next(m.value for m in rows if m.metric == "accuracy") > 0.8


def _copies_protocol(X_train, y_train, X_test, y_test, labelled, val, grid):
    """The all-label probe on standardised copies of the rows: the C path on the labelled rows (each fit
    warm-started from the previous C), validation accuracy per C, refit on every row at the best C, test."""
    X = np.array(X_train[labelled])
    mean, std = moments(X)
    standardize_(X, mean, std)
    X_val = standardize_(np.array(X_train[val]), mean, std)
    prepared, W, by_c = prepare(X), None, {}
    for C in grid:
        clf = L2SVM(C, 10).fit(X, y_train[labelled], warm_start=W, prepared=prepared)
        W, by_c[C] = clf.W, clf.accuracy(X_val, y_train[val])
    best = max(by_c, key=by_c.get)
    X = np.array(X_train)
    mean, std = moments(X)
    clf = L2SVM(best, 10).fit(standardize_(X, mean, std), y_train)
    return by_c, best, clf.accuracy(standardize_(np.array(X_test), mean, std), y_test)


@pytest.mark.parametrize("features", ["all/max4", "conv1+conv2/max2"])  # row-space reduction; eigen preconditioner
def test_the_probe_in_place_gives_the_numbers_of_standardised_copies(tmp_path, features):
    root = write_digits_as("cifar10", tmp_path / "cifar")
    _, d = tiny_checkpoints(tmp_path / "ckpt", nc=3)
    grid = (1e-4, 1e-3, 1e-2, 1e-1)
    res = run("cifar10-svm", ckpt=d, data_root=str(root), device="cpu", results_dir=tmp_path / "results",
              overrides={"features": features, "c_grid": ",".join(map(str, grid)), "patience": "0",
                         "val_size": "80", "baselines": ""})
    row = next(r for r in res.rows if r["metric"] == "accuracy")
    details = json.loads(row["details"])
    ctx = RunContext(dataset="cifar10", data_root=str(root), ckpt=d)
    _, cfg = ctx.net("discriminator")
    spec = LayerSpec.parse(features)
    X_train, X_test = ctx.features("trained-d", "train", spec), ctx.features("trained-d", "test", spec)
    y_train = ctx.labels("train", cfg)
    labelled, val = draw_indices(y_train, None, 80, np.random.default_rng(0))  # the run's draw (seed 0)
    by_c, best, accuracy = _copies_protocol(X_train, y_train, X_test, ctx.labels("test", cfg), labelled, val, grid)
    assert details["val_accuracy_by_C"] == {f"{c:g}": round(a, 5) for c, a in by_c.items()}
    assert details["C"] == best and float(row["value"]) == accuracy
