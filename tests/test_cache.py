"""The cache folder: `bench cache list/prune/clear`, recency on hits, the size cap after feature writes,
and unreadable feature files treated as misses; on real .npy entries written through FeatureCache."""
import json
import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cache import CAP_ENV, parse_size
from bench.cli import main
from bench.features import FeatureCache, LayerSpec, feature_key
from bench.tasks.base import RunContext
from dcgan.checkpoint import fingerprint
from dcgan.data import load_dataset
from dcgan.errors import ConfigError
from dcgan.fsutil import cache_dir
from fixtures_data import make_cifar10_jpg
from fixtures_fid import write_tiny_weights
from fixtures_tasks import tiny_checkpoints

ROWS, DIMS = 4, 8


def _bench(*args, **kw):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, **kw)


def _fields(i: int) -> dict:
    return dict(model="trained-d", ckpt=f"{i:08x}" * 8, dataset="cifar10", root=None, split="train", n=ROWS,
                transform="t32", spec="all/max4", subset=None, seed=0)


def _values(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal((ROWS, DIMS)).astype(np.float32)


def _fill(i: int):
    def fill(out):
        out[:] = _values(i)
    return fill


def _never(out):
    raise AssertionError("extracted although the entry is cached")


def _write(cache: FeatureCache, i: int, age: float | None = None):
    """Entry ``i`` through FeatureCache; ``age``: then last used that many seconds ago (both its files)."""
    cache.get_or_extract(_fields(i), (ROWS, DIMS), _fill(i))
    path = cache.path(feature_key(**_fields(i)))
    if age is not None:
        t = time.time() - age
        for p in (path, path.with_suffix(".json")):
            os.utime(p, (t, t))
    return path


def _entry_size(path) -> int:
    return path.stat().st_size + path.with_suffix(".json").stat().st_size


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CAP_ENV, "none")
    return FeatureCache(tmp_path / "cache" / "features")


def test_parse_size_is_binary_and_accepts_the_usual_spellings():
    assert parse_size("2048", "x") == 2048
    assert parse_size("1.5K", "x") == 1536
    assert parse_size("10G", "x") == parse_size("10GiB", "x") == parse_size("10 gb", "x") == 10 * 1024 ** 3
    assert parse_size("1T", "x") == 1024 ** 4 and parse_size("500m", "x") == 500 * 1024 ** 2


@pytest.mark.parametrize("size", ["10X", "", "-1G", "G", "1.2.3M", "ten"])
def test_a_bad_size_is_one_line_exit_2(tmp_path, size):
    r = _bench("cache", "prune", "--max-size", size, "--cache-dir", tmp_path)
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "--max-size" in r.output and "1K = 1024" in r.output


def test_list_shows_every_entry_its_size_and_what_it_is(cache):
    root = cache.root.parent
    a = _write(cache, 1, age=100)
    b = _write(cache, 2, age=50)
    b.with_suffix(".json").unlink()  # an entry written before the descriptions
    (root / "arrays").mkdir()
    (root / "arrays" / "5e1f0aa3b2c4d5e6.npz").write_bytes(b"\0" * 3 * 1024 ** 2)
    (root / "weights").mkdir()
    (root / "weights" / "inception-2015-12-05-pool3.pth").write_bytes(b"\0" * 2 * 1024 ** 2)
    (root / "data" / "MNIST" / "raw").mkdir(parents=True)
    (root / "data" / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0" * 5 * 1024)
    old_tmp = root / "features" / f".{a.name}.k3j4h5.tmp"
    old_tmp.write_bytes(b"\0" * 1500)
    os.utime(old_tmp, (time.time() - 7200,) * 2)
    (root / "features" / f".{b.name}.x9y8z7.tmp").write_bytes(b"\0" * 100)  # being written: not an entry

    r = _bench("cache", "list", "--cache-dir", root)
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    by_kind = {}
    for line in lines[:-1]:
        by_kind.setdefault(line.split()[0], []).append(line)
    assert sorted(by_kind) == ["arrays", "data", "features", "temp", "weights"]
    assert len(by_kind["features"]) == 2 and len(lines) == 7
    described = next(line for line in by_kind["features"] if a.stem[:12] in line)
    assert described.endswith("trained-d cifar10/train all/max4 ckpt 00000001 n=4")
    assert f"{_entry_size(a)}B " in described
    assert next(line for line in by_kind["features"] if b.stem[:12] in line).endswith("(no description)")
    assert " 3.0M " in by_kind["arrays"][0] and " 2.0M " in by_kind["weights"][0]
    assert "--include-weights" in by_kind["weights"][0]
    assert " 5.0K " in by_kind["data"][0] and "data/MNIST" in by_kind["data"][0]
    assert " 1.5K " in by_kind["temp"][0]
    total = _entry_size(a) + b.stat().st_size + 3 * 1024 ** 2 + 2 * 1024 ** 2 + 5 * 1024 + 1500
    prunable = total - 2 * 1024 ** 2 - 5 * 1024
    assert lines[-1] == (f"total {total / 1024 ** 2:.1f}M in 6 entries under {root}, "
                         f"{prunable / 1024 ** 2:.1f}M of it prunable")


def test_prune_removes_the_least_recently_used_first(cache):
    root = cache.root.parent
    paths = {i: _write(cache, i, age=age) for i, age in [(1, 300), (2, 100), (3, 400), (4, 200)]}
    weights = root / "weights" / "w.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"\0" * 4096)
    os.utime(weights, (time.time() - 10_000,) * 2)  # oldest of all, but a download
    size = _entry_size(paths[1])
    r = _bench("cache", "prune", "--max-size", int(2.5 * size), "--cache-dir", root)
    assert r.exit_code == 0, r.output
    assert {i for i, p in paths.items() if p.exists()} == {2, 4}  # 3 (oldest) then 1 went
    assert not paths[3].with_suffix(".json").exists() and weights.exists()
    removed = [line for line in r.output.splitlines() if line.startswith("removed")]
    assert [paths[3].stem[:12] in removed[0], paths[1].stem[:12] in removed[1]] == [True, True]
    assert removed[0].endswith("trained-d cifar10/train all/max4 ckpt 00000003 n=4")  # described before removal
    assert r.output.strip().splitlines()[-1].startswith(f"prunable total {4 * size / 1024:.1f}K -> {2 * size}B")
    r = _bench("cache", "prune", "--max-size", "0", "--include-weights", "--cache-dir", root)
    assert r.exit_code == 0 and not weights.exists() and not any(p.exists() for p in paths.values())


def test_a_hit_marks_the_entry_used(cache):
    root = cache.root.parent
    first = _write(cache, 1, age=1000)
    second = _write(cache, 2, age=500)
    first.with_suffix(".json").unlink()
    assert np.array_equal(cache.get_or_extract(_fields(1), (ROWS, DIMS), _never), _values(1))
    assert cache.hits == 1 and time.time() - first.stat().st_mtime < 60
    assert first.with_suffix(".json").exists()  # the hit wrote the missing description
    r = _bench("cache", "prune", "--max-size", _entry_size(first), "--cache-dir", root)
    assert r.exit_code == 0, r.output
    assert first.exists() and not second.exists()  # by creation, the first would have gone


def test_the_cap_prunes_after_a_write_and_never_the_entry_just_written(cache, monkeypatch):
    one = _write(cache, 1, age=300)
    two = _write(cache, 2, age=200)
    size = _entry_size(one)
    monkeypatch.setenv(CAP_ENV, str(int(2.5 * size)))
    three = _write(cache, 3)
    assert not one.exists() and two.exists() and three.exists()
    monkeypatch.setenv(CAP_ENV, "1")  # smaller than any entry: all but the new one go
    four = _write(cache, 4)
    assert four.exists() and four.with_suffix(".json").exists() and not two.exists() and not three.exists()
    assert np.array_equal(np.load(four), _values(4))
    for off in ("none", "0"):
        monkeypatch.setenv(CAP_ENV, off)
        _write(cache, 5)
    assert four.exists()
    monkeypatch.setenv(CAP_ENV, "20 gigs")
    with pytest.raises(ConfigError, match=f"\\${CAP_ENV} '20 gigs': expected a size.*; or 0 or none for no cap$"):
        cache.get_or_extract(_fields(6), (ROWS, DIMS), _never)  # refused before extracting


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-8])


def _float64(path):
    np.save(path, _values(1).astype(np.float64))


def _other_shape(path):
    np.save(path, np.zeros((ROWS, DIMS + 1), np.float32))


@pytest.mark.parametrize("damage,why", [(_truncate, "unreadable"), (_float64, "float64 \\(4, 8\\) where float32"),
                                        (_other_shape, "float32 \\(4, 9\\) where float32 \\(4, 8\\)")])
def test_a_bad_entry_is_a_miss_with_a_warning_naming_the_file(cache, tmp_path, damage, why):
    path = _write(cache, 1)
    damage(path)
    with pytest.warns(UserWarning, match=f"{path.name}: {why}") as caught:
        values = cache.get_or_extract(_fields(1), (ROWS, DIMS), _fill(1))
    assert len(caught) == 1 and str(path) in str(caught[0].message)
    fresh = FeatureCache(tmp_path / "fresh").get_or_extract(_fields(1), (ROWS, DIMS), _fill(1))
    assert (cache.hits, cache.misses) == (0, 2) and np.array_equal(values, fresh)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(cache.get_or_extract(_fields(1), (ROWS, DIMS), _never), fresh)


def test_clear_asks_first_and_keeps_downloads(cache):
    root = cache.root.parent
    paths = [_write(cache, i) for i in range(3)]
    stale = root / "dedup" / ".ae-1234.pt.abcd.tmp"
    stale.parent.mkdir()
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 4000,) * 2)
    fresh = root / "arrays" / ".5e1f.npz.abcd.tmp"
    fresh.parent.mkdir()
    fresh.write_bytes(b"x")
    weights = root / "weights" / "w.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"w")
    data = root / "data" / "svhn" / "train_32x32.mat"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"d")
    r = _bench("cache", "clear", "--cache-dir", root, input="n\n")
    assert r.exit_code == 1 and "remove 4 entries" in r.output and all(p.exists() for p in paths)
    r = _bench("cache", "clear", "--cache-dir", root, input="y\n")
    assert r.exit_code == 0 and "removed 4 entries" in r.output, r.output
    assert not any(p.exists() for p in paths) and not stale.exists()
    assert fresh.exists() and weights.exists() and data.exists()
    r = _bench("cache", "clear", "--yes", "--include-weights", "--cache-dir", root)
    assert r.exit_code == 0 and "removed 1 entries" in r.output and not weights.exists() and data.exists()


def test_run_context_features_say_what_they_are(tmp_path, monkeypatch):
    """The task side passes its key fields through: the listing names model, data, spec and checkpoint."""
    monkeypatch.setenv(CAP_ENV, "none")
    _, d = tiny_checkpoints(tmp_path / "ckpt")
    cache = FeatureCache(tmp_path / "cache" / "features")
    ctx = RunContext(dataset="digits", ckpt=d, subset=64, seed=3, cache=cache)
    ctx.features("trained-d", "train", LayerSpec.parse("conv1/max2"))
    ctx.features("raw-pixels", "test", LayerSpec())
    r = _bench("cache", "list", "--cache-dir", tmp_path / "cache")
    assert f"trained-d digits/train conv1/max2 ckpt {fingerprint(d)[:8]} n=64 subset=64 seed=3" in r.output
    assert "raw-pixels digits/test n=64 subset=64 seed=3" in r.output


def _age(paths, seconds=5000):
    for p in paths:
        os.utime(p, (time.time() - seconds,) * 2)


def test_hits_on_decoded_arrays_and_fidelity_features_mark_them_used(tmp_path):
    """The other derived entries: a hit refreshes their last use too, and the listing groups and names
    torch-fidelity's files of one real side."""
    root = make_cifar10_jpg(tmp_path / "cifar").root
    load_dataset("cifar10", "test", root=root)
    arrays = list((cache_dir() / "arrays").glob("*.npz"))
    _age(arrays)
    load_dataset("cifar10", "test", root=root)
    assert len(arrays) == 1 and time.time() - arrays[0].stat().st_mtime < 60

    weights = write_tiny_weights(tmp_path / "tiny.pt")
    fid = ["run", "fid", "--dataset", "cifar10", "--data-root", root, "--fake", "dataset:cifar10:test", "--set",
           "image_size=32", "--set", "metrics=fid", "--set", "extractor=tiny", "--set", f"inception_weights={weights}",
           "--device", "cpu",
           "--results", tmp_path / "results"]
    assert _bench(*fid).exit_code == 0
    files = list((cache_dir() / "fidelity").iterdir())
    _age(files)
    r = _bench(*fid)
    assert r.exit_code == 0, r.output
    assert json.loads(pd.read_csv(tmp_path / "results" / "fid.csv").details[0])["real_features"] == "cached"
    assert len(files) == 2 and all(time.time() - f.stat().st_mtime < 60 for f in files)
    listed = [line for line in _bench("cache", "list").output.splitlines() if line.startswith("fidelity")]
    assert len(listed) == 1 and listed[0].endswith("real images through dcgan-bench-tiny-fp32: features-16, stat-fid-16")
