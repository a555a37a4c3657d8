"""The decode-once data cache (dcgan/data/decoded.py) on real image files: the same pixels as decoding
per item, keys that follow content, one decode per key, refusal of a bad cache file, the auto budget,
and training that ends in the same weights with the cache on or off."""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from click.testing import CliRunner

from bench.cache import list_lines, prune
from bench.cli import main
from bench.tasks.base import RunContext
from dcgan.config import DCGANConfig
from dcgan.data import DecodedImageDataset, FileImageDataset, decoded, load_dataset, pixels
from dcgan.errors import DataError
from dcgan.fsutil import cache_dir
from dcgan.models.cdcgan import CDCGANConfig
from dcgan.train import TrainConfig, train
from fixtures_data import FORMATS


def write_mixed_folder(root: Path, n: int = 40, seed: int = 0) -> list[Path]:
    """Noise images of several sizes in class folders (train/a, train/b): PNG, JPEG, a grey PNG and an RGBA
    PNG, so that decoding, colour conversion and the antialiased resize all show in the pixels."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = 30 + i % 9, 41 + i % 6
        shape, mode = {0: ((h, w), "L"), 1: ((h, w, 4), "RGBA")}.get(i % 7, ((h, w, 3), "RGB"))
        path = root / "train" / "ab"[i % 2] / f"{i:03d}.{'jpg' if i % 3 == 0 and mode == 'RGB' else 'png'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
        paths.append(path)
    return paths


def assert_same_items(a, b) -> None:
    assert len(a) == len(b)
    for i in range(len(a)):
        (xa, ya), (xb, yb) = a[i], b[i]
        assert xa.dtype == xb.dtype == torch.uint8 and torch.equal(xa, xb), f"item {i} differs"
        assert torch.equal(torch.as_tensor(ya), torch.as_tensor(yb)), f"label {i} differs"


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("size, channels", [(32, 3), (24, 1)])
def test_cached_pixels_equal_streamed_pixels(tmp_path, workers, size, channels):
    write_mixed_folder(tmp_path)
    options = dict(root=tmp_path, image_size=size, channels=channels)
    streamed = load_dataset("class-folders", **options)
    cached = load_dataset("class-folders", **options, data_cache="on", decode_workers=workers)
    assert isinstance(streamed, FileImageDataset) and isinstance(cached, DecodedImageDataset)
    assert cached.images.shape == (40, channels, size, size)
    assert_same_items(cached, streamed)
    # the same identity: caches keyed on it (FID statistics, features, run ids) are shared
    assert (cached.fingerprint(), cached.transform_id) == (streamed.fingerprint(), streamed.transform_id)
    assert cached.item_name(5) == streamed.item_name(5) and cached.source_side(5) == streamed.source_side(5)


@pytest.mark.parametrize("format_id", ["folder", "lsun-lmdb", "imagenet", "celeba"])
def test_every_file_backed_format_decodes_to_its_items(tmp_path, format_id):
    name, make = FORMATS[format_id]
    root = make(tmp_path / "data").root
    options = dict(attrs=("Male", "Young")) if name == "celeba" else {}
    streamed = load_dataset(name, root=root, image_size=16, **options)
    cached = load_dataset(name, root=root, image_size=16, data_cache="on", **options)
    assert isinstance(cached, DecodedImageDataset)
    assert_same_items(cached, streamed)


def test_key_follows_content_size_channels_and_subset(tmp_path):
    paths = write_mixed_folder(tmp_path)
    key = lambda **kw: decoded.cached_path(load_dataset("class-folders", root=tmp_path, **kw)).name  # noqa: E731
    base = key(image_size=32)
    assert key(image_size=32) == base
    assert len({base, key(image_size=16), key(image_size=32, channels=1), key(image_size=32, subset=20),
                key(image_size=32, subset=20, seed=1), key(image_size=32, classes=("b", "a"))}) == 6
    # one file's content replaced, same path, same count, its modification time put back
    st = os.stat(paths[4])
    Image.fromarray(np.full((33, 45, 3), 7, dtype=np.uint8)).save(paths[4])
    os.utime(paths[4], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert key(image_size=32) != base
    data = load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="on")
    i = [data.item_name(j) for j in range(len(data))].index(str(paths[4]))
    assert (data[i][0] == 7).all()  # the new file's pixels, not a stale array's


def test_second_load_maps_the_array_without_decoding(tmp_path, monkeypatch):
    write_mixed_folder(tmp_path)
    calls = []
    decode_image = pixels.decode_image
    monkeypatch.setattr(pixels, "decode_image", lambda *a: calls.append(a[1]) or decode_image(*a))
    first = load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="on", decode_workers=0)
    assert len(calls) == 40
    again = load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="auto", decode_workers=0)
    assert len(calls) == 40 and again.path == first.path
    assert torch.equal(again.images, first.images)
    assert sorted(p.suffix for p in first.path.parent.iterdir()) == [".json", ".npy"]  # no temporary left


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.write_bytes(path.read_bytes()[:-100]), "decoded-image cache unreadable"),
    (lambda path: np.save(path, np.zeros((40, 3, 16, 16), np.uint8)), r"holds uint8 \(40, 3, 16, 16\), expected "
                                                                      r"uint8 \(40, 3, 32, 32\)"),
    (lambda path: np.save(path, np.zeros((40, 3, 32, 32), np.float32)), "holds float32"),
    (lambda path: np.save(path, np.asfortranarray(np.zeros((40, 3, 32, 32), np.uint8))), "in C order"),
    (lambda path: path.write_text("not an array"), "unreadable"),
])
def test_a_bad_cache_file_is_refused_in_one_line_and_kept(tmp_path, damage, message):
    write_mixed_folder(tmp_path)
    path = load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="on").path
    damage(path)
    before = path.read_bytes()
    with pytest.raises(DataError, match=message) as e:
        load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="auto")
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert path.read_bytes() == before  # never silently rewritten
    assert isinstance(load_dataset("class-folders", root=tmp_path, image_size=32, data_cache="off"), FileImageDataset)


def test_auto_decodes_per_item_over_the_budget_and_on_needs_the_disk(tmp_path, monkeypatch, capsys):
    write_mixed_folder(tmp_path)
    nbytes = 40 * 3 * 32 * 32

    def load(mode, size=32):
        return load_dataset("class-folders", root=tmp_path, image_size=size, data_cache=mode)

    monkeypatch.setattr(decoded, "available_memory", lambda: 2 * nbytes - 2)  # half of it: just under the array
    assert isinstance(load("auto"), FileImageDataset)
    assert not list((cache_dir() / "decoded").glob("*.npy"))
    assert "120.0 KiB of decoded images is over half the 240.0 KiB of memory available" in capsys.readouterr().err
    monkeypatch.setattr(decoded, "available_memory", lambda: 2 * nbytes)  # half of it: the array exactly
    assert isinstance(load("auto"), DecodedImageDataset)
    # the disk: auto leaves DISK_RESERVE free, on needs room for the array alone
    monkeypatch.setattr(decoded, "_disk_free", lambda folder: nbytes // 4 + decoded.DISK_RESERVE - 1)  # 16 px: 1/4
    assert isinstance(load("auto", 16), FileImageDataset)
    assert isinstance(load("on", 16), DecodedImageDataset)
    monkeypatch.setattr(decoded, "_disk_free", lambda folder: 100)
    with pytest.raises(DataError, match=r"^data cache on: the decoded images of class-folders need 67.5 KiB, .* has "
                                        r"100 B free \(use --data-cache off, or free space\)$"):
        load("on", 24)
    assert isinstance(load("auto"), DecodedImageDataset)  # an array in the cache is used whatever the budget


def test_a_cache_folder_that_cannot_be_written_is_per_item_under_auto_and_an_error_under_on(tmp_path, capsys):
    write_mixed_folder(tmp_path)
    cache_dir().mkdir(parents=True, exist_ok=True)
    (cache_dir() / "decoded").write_text("a file in the way")
    assert isinstance(load_dataset("class-folders", root=tmp_path, data_cache="auto"), FileImageDataset)
    assert f"data cache: cannot write {cache_dir() / 'decoded'} (" in capsys.readouterr().err
    with pytest.raises(DataError, match=f"^data cache on: cannot write {cache_dir() / 'decoded'} \\(.*\\)$"):
        load_dataset("class-folders", root=tmp_path, data_cache="on")


def test_bad_modes_and_worker_counts_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="^data cache 'yes': expected one of off, auto, on$"):
        load_dataset("folder", root=tmp_path, data_cache="yes")
    with pytest.raises(DataError, match="^decode workers -1: expected an integer >= 0$"):
        load_dataset("folder", root=tmp_path, data_cache="on", decode_workers=-1)


def test_bench_cache_lists_and_clears_decoded_sets(tmp_path):
    write_mixed_folder(tmp_path)
    path = load_dataset("class-folders", root=tmp_path, image_size=32, subset=10, data_cache="on").path
    line, = [line for line in list_lines(cache_dir()) if line.startswith("decoded ")]
    assert f"decoded/{path.stem[:12]}" in line
    assert line.endswith("decoded images class-folders/train 10x3x32x32 subset=10")
    prune(cache_dir(), 0)
    assert not path.exists() and not path.with_suffix(".json").exists()


@pytest.mark.parametrize("model", [DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8),
                                   CDCGANConfig(image_size=32, nc=3, ngf=8, ndf=8, num_classes=2)],
                         ids=["dcgan", "cdcgan"])
def test_training_ends_in_the_same_weights_with_the_cache_on_or_off(tmp_path, model):
    """Cache off (files decoded per item by a loader), on, and on resumed with it off: equal weights."""
    write_mixed_folder(tmp_path / "data", n=48)
    cfg = TrainConfig(model=model, dataset="class-folders", data_root=str(tmp_path / "data"), epochs=2,
                      batch_size=16, seed=3, workers=1)
    runs = {mode: train(replace(cfg, data_cache=mode), tmp_path / mode, device="cpu") for mode in ("off", "on")}
    assert isinstance(runs["off"].data, FileImageDataset) and isinstance(runs["on"].data, DecodedImageDataset)
    train(replace(cfg, data_cache="on"), tmp_path / "resumed", device="cpu", max_steps=4)
    runs["resumed"] = train(replace(cfg, data_cache="off"), tmp_path / "resumed", device="cpu", resume=True)
    weights = {mode: {**t.G.state_dict(), **{f"D.{k}": v for k, v in t.D.state_dict().items()}}
               for mode, t in runs.items()}
    assert runs["off"].step == runs["on"].step == runs["resumed"].step == 6
    for mode in ("on", "resumed"):
        assert all(torch.equal(weights[mode][k], v) for k, v in weights["off"].items()), mode


def test_bench_runs_read_file_backed_splits_decoded_once(tmp_path):
    """(dedup reads per item, to skip files it cannot decode: tests/test_dedup.py's truncated JPEG.)"""
    write_mixed_folder(tmp_path)
    ctx = RunContext(dataset="class-folders", data_root=str(tmp_path))
    split = ctx.split("train", 32, 3)
    assert isinstance(split, DecodedImageDataset) and ctx.split("train", 32, 3) is split
    assert_same_items(split, load_dataset("class-folders", root=tmp_path, image_size=32))


def test_bench_train_takes_the_data_cache_option(tmp_path):
    write_mixed_folder(tmp_path / "data", n=32)
    args = ["train", "--dataset", "folder", "--data-root", str(tmp_path / "data"), "--image-size", "32", "--ngf", "8",
            "--ndf", "8", "--batch-size", "16", "--epochs", "1", "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(main, [*args, "--data-cache", "always"])
    assert r.exit_code == 2 and "'always' is not one of 'off', 'auto', 'on'" in r.output
    r = CliRunner().invoke(main, [*args, "--data-cache", "on"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data_cache"] == "on"
    assert len(list((cache_dir() / "decoded").glob("*.npy"))) == 1
