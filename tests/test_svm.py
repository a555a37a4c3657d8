"""The linear-probe benchmarks: solver vs LinearSVC, feature specs and cache keys, the SVHN label
draw, one smoke run per registered task (from the registry) and bad inputs, on real digits."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.datasets import load_digits

from bench.cli import main
from bench.features import FeatureCache, LayerSpec
from bench.results import RESULT_COLUMNS
from bench.run import TASKS
from bench.standardized import moments, standardize_
from bench.svm import L2SVM, SklearnSVM
from bench.tasks.base import RunContext
from bench.tasks.svm import SvmProbe, draw_indices
from dcgan.errors import ConfigError
from fixtures_tasks import tiny_checkpoints, write_digits_as


def test_solver_matches_linearsvc_on_real_digits():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    train, test = slice(0, 1300), slice(1300, None)
    mean, std = moments(X[train])
    standardize_(X, mean, std)
    for C in (1e-3, 1e-2, 1e-1):
        ours = L2SVM(C, 10).fit(X[train], y[train])
        ref = SklearnSVM(C, 10, max_iter=5000).fit(np.asarray(X[train], np.float64), y[train])
        f_ours, f_ref = ours.objective(X[train], y[train]), ours.objective(X[train], y[train], ref.W)
        assert abs(f_ours - f_ref) / f_ref < 1e-3, (C, f_ours, f_ref)
        assert abs(ours.accuracy(X[test], y[test]) - ref.accuracy(X[test], y[test])) <= 0.003
        assert ours.W.dtype == np.float32
    with pytest.raises(TypeError, match="float32"):
        L2SVM(1e-2, 10).fit(X[train].astype(np.float64), y[train])


def test_row_space_reduction_is_exact_with_few_labels():
    """Fewer rows than features (the few-label regime): the reduced fit reaches liblinear's optimum."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(y), 60, replace=False)
    # 60 real digits lifted to 512 dims by a fixed random projection: N < d
    X = (X[rows] @ rng.standard_normal((64, 512))).astype(np.float32)
    mean, std = moments(X)
    standardize_(X, mean, std)
    ours = L2SVM(1e-2, 10).fit(X, y[rows])
    ref = SklearnSVM(1e-2, 10, max_iter=20000, tol=1e-6).fit(X, y[rows])
    f_ours, f_ref = ours.objective(X, y[rows]), ours.objective(X, y[rows], ref.W)
    assert abs(f_ours - f_ref) / f_ref < 1e-3
    assert np.abs(ours.W - ref.W).max() < 1e-2 * np.abs(ref.W).max()


def test_layer_spec_round_trips_and_sets_the_feature_width():
    for text in ("all/max4", "conv1+conv3/avg2", "conv2/max1/bn-train"):
        assert str(LayerSpec.parse(text)) == text
    assert LayerSpec.parse("all/max4/bn-running") == LayerSpec()
    from dcgan.config import DCGANConfig
    from dcgan.nets import Discriminator

    D = Discriminator(DCGANConfig(image_size=32, ndf=8))  # widths 8, 16, 32
    assert LayerSpec.parse("all/max4").dims(D) == (8 + 16 + 32) * 16
    assert LayerSpec.parse("conv2/avg2").dims(D) == 16 * 4
    for bad in ("conv9/max4", "all/median4", "all"):
        with pytest.raises(ConfigError):
            LayerSpec.parse(bad).dims(D)


def test_feature_cache_misses_on_every_key_field_and_hits_otherwise(tmp_path):
    root = write_digits_as("cifar10", tmp_path / "cifar")
    _, d1 = tiny_checkpoints(tmp_path / "a", nc=3, seed=0)
    _, d2 = tiny_checkpoints(tmp_path / "b", nc=3, seed=1)  # other weights, same config
    _, d64 = tiny_checkpoints(tmp_path / "c", image_size=64, nc=3)  # other transform (64 px)
    cache = FeatureCache(tmp_path / "features")

    def extract(ckpt=d1, split="train", spec="all/max4", subset=None, seed=0, model="trained-d"):
        ctx = RunContext(dataset="cifar10", data_root=str(root), ckpt=ckpt, seed=seed, subset=subset, cache=cache)
        return ctx.features(model, split, LayerSpec.parse(spec))

    base = np.array(extract())
    assert (cache.hits, cache.misses) == (0, 1)
    assert np.array_equal(np.array(extract()), base) and cache.hits == 1
    for change in ({"ckpt": d2}, {"split": "test"}, {"spec": "conv1/max4"}, {"spec": "all/max4/bn-train"},
                   {"subset": 50}, {"subset": 50, "seed": 1}, {"ckpt": d64}, {"model": "random-d"},
                   {"model": "raw-pixels"}):
        misses = cache.misses
        extract(**change)
        assert cache.misses == misses + 1, change
    ctx = RunContext(dataset="svhn", data_root=str(write_digits_as("svhn", tmp_path / "svhn")), ckpt=d1, cache=cache)
    misses = cache.misses
    ctx.features("trained-d", "train", LayerSpec())  # same pixels, other data set: never a stale hit
    assert cache.misses == misses + 1


def test_svhn_label_draw_is_100_per_class_and_disjoint_from_validation():
    labels = np.repeat(np.arange(10), 500)
    rng = np.random.default_rng(0)
    draws = [draw_indices(labels, 100, 1000, rng) for _ in range(3)]
    for labelled, val in draws:
        assert np.array_equal(np.bincount(labels[labelled]), np.full(10, 100))
        assert len(val) == 1000 and not set(labelled) & set(val)
    assert not np.array_equal(draws[0][0], draws[1][0]), "each draw is a new labelled set"
    labelled, val = draw_indices(labels, None, 1000, np.random.default_rng(0))
    assert len(labelled) == 4000 and not set(labelled) & set(val)


def _quick(task):
    """Settings that keep every probe task to seconds on the digits fixture."""
    quick = {"c_grid": "0.001,0.01", "val_size": "60", "selection_draws": "2"}
    if task.Params().labels_per_class is not None:
        quick.update(labels_per_class="5", draws="2")
    return quick


PROBES = [n for n in TASKS.names() if issubclass(TASKS.get(n), SvmProbe)]


@pytest.mark.parametrize("task_name", PROBES)
def test_every_probe_task_runs_end_to_end(task_name, tmp_path):
    task = TASKS.get(task_name)
    dataset = task.default_dataset or "digits"
    root = write_digits_as(dataset, tmp_path / "data")
    nc = 1 if dataset in ("mnist", "fashion-mnist", "digits") else 3
    _, d = tiny_checkpoints(tmp_path / "ckpt", nc=nc)
    args = ["run", task_name, "--ckpt", str(d), "--dataset", dataset, "--data-root", str(root), "--device", "cpu",
            "--results", str(tmp_path / "results")]
    for k, v in _quick(task).items():
        args += ["--set", f"{k}={v}"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    df = pd.read_csv(tmp_path / "results" / f"{task_name}.csv")
    assert tuple(df.columns) == RESULT_COLUMNS
    draws = int(_quick(task).get("draws", 1))
    assert len(df) == 3 * 4 * draws  # 3 models x (accuracy, error, C, val_accuracy) x draws
    acc = df[df.metric == "accuracy"].groupby("model").value.mean()
    assert set(acc.index) == {"trained-d", "random-d", "raw-pixels"}
    assert (acc > 0.3).all(), acc  # ten classes: chance is 0.1
    assert df.ckpt_sha256.nunique() == 1 and len(df.ckpt_sha256[0]) == 64
    # a second identical run replaces its rows and extracts nothing
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0 and "3 hit(s), 0 extracted" in r.output.replace("6 hit(s)", "3 hit(s)")
    assert len(pd.read_csv(tmp_path / "results" / f"{task_name}.csv")) == len(df)


def test_c_grid_extends_past_its_edge(tmp_path):
    """Raw digits want a large C: a grid of tiny Cs must grow upwards until the best C is inside."""
    _, d = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    from bench.run import run

    res = run("svm", ckpt=d, dataset="digits", device="cpu", results_dir=tmp_path / "results",
              overrides={"c_grid": "1e-7,1e-6", "val_size": "300", "baselines": "raw-pixels"})
    import json

    details = json.loads(res.rows[0]["details"])
    tried = sorted(float(c) for c in details["val_accuracy_by_C"])
    assert len(tried) > 2 and max(tried) > 1e-6
    assert float(details["C"]) > 1e-6


def test_c_grid_stops_climbing_once_validation_falls(tmp_path):
    """With patience 2 the grid is walked upwards only until two C in a row score below the best."""
    import json

    from bench.run import run

    _, d = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    grid = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0]
    res = run("svm", ckpt=d, dataset="digits", device="cpu", results_dir=tmp_path / "results",
              overrides={"c_grid": ",".join(map(str, grid)), "val_size": "300", "baselines": "raw-pixels",
                         "patience": "2"})
    for row in res.rows:
        by_c = {float(c): a for c, a in json.loads(row["details"])["val_accuracy_by_C"].items()}
        tried = sorted(by_c)
        best = max(tried, key=by_c.get)
        assert tried == grid[: len(tried)], tried  # a prefix of the grid (no edge extension here)
        assert len(tried) == len(grid) or tried.index(best) == len(tried) - 3, by_c
        assert all(by_c[c] <= by_c[best] for c in tried[tried.index(best) + 1:])
    assert any(len(json.loads(r["details"])["val_accuracy_by_C"]) < len(grid) for r in res.rows), "never stopped early"


@pytest.mark.parametrize("args,expected", [
    (["--ckpt", "{g}"], "holds a generator, expected a discriminator"),
    (["--ckpt", "{d}", "--set", "features=conv7/max4"], "unknown layer(s) conv7"),
    (["--ckpt", "{d}", "--dataset", "folder", "--data-root", "{folder}"], "has no labels"),
    (["--ckpt", "{d}", "--set", "c_grd=1"], "has no parameter 'c_grd'"),
    (["--ckpt", "{d}", "--set", "val_size=many"], "val_size='many': expected an integer"),
    (["--ckpt", "{d}", "--set", "val_size=-5"], "val_size=-5: expected an integer >= 1"),
    (["--ckpt", "{d}", "--set", "tol=nan"], "tol=nan: expected a number > 0"),
    (["--ckpt", "{d}", "--set", "draws=0"], "draws=0: expected an integer >= 1"),
    (["--ckpt", "{d}", "--set", "c_grid=-1,0"], "c_grid=-1: expected comma-separated numbers > 0"),
    (["--ckpt", "{d}", "--set", "solver=svc"], "solver='svc': expected one of lbfgs, sklearn"),
    (["--ckpt", "{d}", "--set", "baselines=raw"], "baselines='raw': expected some of random-d, raw-pixels"),
    (["--ckpt", "{d}", "--split", "train"], "task 'svm' takes no --split"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, args, expected):
    from PIL import Image

    g, d = tiny_checkpoints(tmp_path, nc=1)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"{i}.png")
    fmt = {"g": g, "d": d, "folder": folder}
    full = ["run", "svm", "--dataset", "digits", "--device", "cpu", "--results", str(tmp_path / "r")]
    full += [a.format(**fmt) for a in args]
    r = CliRunner().invoke(main, full, catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.csv"))


def test_report_keeps_low_label_and_all_label_runs_apart():
    """Rows of the 100-per-class protocol and of the all-label one are never averaged together."""
    from bench.report import summarize

    base = {"task": "svm", "dataset": "digits", "model": "trained-d", "features": "all/max4", "split": "test",
            "metric": "accuracy", "ckpt_sha256": "ab", "seconds": "1"}
    rows = [{**base, "value": "0.8", "params": '{"labels_per_class": 100}'},
            {**base, "value": "0.82", "params": '{"labels_per_class": 100}'},
            {**base, "value": "0.9", "params": '{"labels_per_class": null}'}]
    summary = {e["settings"]: (round(e["mean"], 4), e["n"]) for e in summarize(rows)}
    assert summary == {"labels_per_class=100": (0.81, 2), "labels_per_class=all": (0.9, 1)}
