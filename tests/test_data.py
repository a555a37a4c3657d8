"""Tests of dcgan/data/ on tiny files written in each data set's real format (tests/fixtures_data.py)."""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from dcgan.data import (DATASETS, FileImageDataset, ImageDataset, TensorImageDataset, dataset_names, get_spec,
                        load_dataset, register_dataset)
from dcgan.data.pixels import to_channels
from dcgan.errors import DataError
from dcgan.fsutil import cache_dir
from fixtures_data import (FORMATS, Fixture, encode, make_cifar10_jpg, make_folder, python2_batch_pickle, two_tone,
                           write_lmdb)

TOLERANCE = 6  # grey levels: JPEG and resampling blur the colour edge a little


def build(format_id: str, tmp_path: Path) -> tuple[str, Fixture]:
    name, make = FORMATS[format_id]
    return name, make(tmp_path / "data")


def side_means(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel means of the outer quarters of an image: well inside its left and right halves."""
    q = x.shape[-1] // 4
    return x[:, :, :q].float().mean((1, 2)).tolist(), x[:, :, -q:].float().mean((1, 2)).tolist()


# ---- registry --------------------------------------------------------------------------------------

def test_registry_lists_every_data_set_with_its_splits():
    assert dataset_names() == sorted(["digits", "synthetic", "mnist", "fashion-mnist", "cifar10", "svhn",
                                      "lsun", "imagenet", "imagenet-downsampled", "folder", "class-folders", "celeba"])
    assert get_spec("svhn").splits == ("train", "test", "extra")
    assert get_spec("lsun").num_classes is None and get_spec("folder").splits == ("train",)
    assert all(spec.name == name and spec.description for name, spec in DATASETS.items())


def test_registering_a_data_set_name_twice_is_refused():
    mnist = get_spec("mnist")
    with pytest.raises(ValueError, match=r"^data set 'mnist' registered twice$"):
        register_dataset("mnist", splits=("train",), channels=3, num_classes=None, description="another")(
            lambda root, split, download: None)
    assert get_spec("mnist") is mnist


def test_class_names_name_every_class_and_a_wrong_count_is_refused():
    assert all(len(spec.class_names) in (0, spec.num_classes) for _, spec in DATASETS.items())
    assert get_spec("cifar10").class_names[6] == "frog" and get_spec("fashion-mnist").class_names[7] == "sneaker"
    assert get_spec("folder").class_names == ()
    with pytest.raises(ValueError, match=r"^data set 'two': 1 class names for 2 classes$"):
        register_dataset("two", splits=("train",), channels=3, num_classes=2, description="two",
                         class_names=("one",))
    assert "two" not in dataset_names()


def test_every_data_set_that_reads_files_has_a_test_fixture():
    assert {name for name, _ in FORMATS.values()} == set(dataset_names()) - {"digits", "synthetic"}


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DataError, match=r"unknown data set 'cifar' \(did you mean 'cifar10'\?\); known: celeba, "
                                        r"cifar10, "):
        load_dataset("cifar")


def test_unknown_split_lists_the_splits():
    with pytest.raises(DataError, match=r"^data set 'mnist' has no split 'extra'; splits: train, test$"):
        load_dataset("mnist", "extra")


@pytest.mark.parametrize("kwargs", [{"image_size": 0}, {"image_size": 32.0}, {"channels": 2}, {"subset": 0}])
def test_bad_arguments_are_data_errors(kwargs):
    with pytest.raises(DataError):
        load_dataset("digits", **kwargs)


# ---- every format: shapes, labels, pixels ------------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("format_id", list(FORMATS))
def test_loads_format_with_labels_and_pixels(format_id, size, tmp_path):
    name, fx = build(format_id, tmp_path)
    for split, items in fx.items.items():
        ds = load_dataset(name, split, root=fx.root, image_size=size)
        assert isinstance(ds, ImageDataset)
        assert (ds.name, ds.split, ds.channels, ds.image_size) == (name, split, fx.channels, size)
        spec = get_spec(name)
        assert ds.num_classes == (len(ds.class_names) if spec.classes_from_data else spec.num_classes)
        assert f"rs{size}" in ds.transform_id and f"c{fx.channels}" in ds.transform_id
        assert len(ds) == len(items)
        expected_labels = [label for label, _, _ in items]
        if ds.num_classes is None:
            assert ds.labels is None
        else:
            assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == expected_labels
        for i, (label, left, right) in enumerate(items):
            x, y = ds[i]
            assert x.dtype == torch.uint8 and x.shape == (fx.channels, size, size)
            assert y == label
            got_left, got_right = side_means(x)
            assert np.allclose(got_left, left, atol=TOLERANCE), (i, got_left, left)
            assert np.allclose(got_right, right, atol=TOLERANCE), (i, got_right, right)


@pytest.mark.parametrize("format_id", list(FORMATS))
def test_channel_conversion(format_id, tmp_path):
    """Grey sets expand to three equal channels; RGB sets reduce to PIL's luminance."""
    name, fx = build(format_id, tmp_path)
    split = next(iter(fx.items))
    native = load_dataset(name, split, root=fx.root)
    other = 3 if fx.channels == 1 else 1
    converted = load_dataset(name, split, root=fx.root, channels=other)
    assert converted.channels == other and converted.transform_id != native.transform_id
    for i in range(len(native)):
        x, x_conv = native[i][0], converted[i][0]
        assert x_conv.shape == (other, 32, 32)
        if other == 3:
            assert torch.equal(x_conv, x.expand(3, -1, -1))
        else:
            luminance = (x.float() * torch.tensor([0.299, 0.587, 0.114])[:, None, None]).sum(0, keepdim=True)
            assert (x_conv.float() - luminance).abs().max() <= 2


def test_rgb_to_grey_uses_pils_weights_exactly():
    rgb = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    grey = to_channels(rgb, 1)
    for image, g in zip(rgb, grey):
        pil = PIL.Image.fromarray(image.permute(1, 2, 0).numpy()).convert("L")
        assert torch.equal(g[0], torch.from_numpy(np.array(pil)))


def test_in_memory_and_lazy_flavours(tmp_path):
    _, cifar = build("cifar10-batches", tmp_path / "c")
    _, folder = build("folder", tmp_path / "f")
    in_memory = load_dataset("cifar10", root=cifar.root)
    lazy = load_dataset("folder", root=folder.root)
    assert isinstance(in_memory, TensorImageDataset) and in_memory.images.shape == (10, 3, 32, 32)
    assert isinstance(lazy, FileImageDataset) and not hasattr(lazy, "images")  # the trainer tells them apart so
    assert lazy[0][1] == -1


def test_folder_skips_non_images_and_hidden_files(tmp_path):
    fx = make_folder(tmp_path / "f")
    ds = load_dataset("folder", root=fx.root)
    assert [Path(p).relative_to(fx.root).as_posix() for p in ds.items] == ["a/b/x.png", "a/y.PNG", "c/z.bmp", "w.png"]


# ---- specific sets ----------------------------------------------------------------------------------

def test_digits_match_scikit_learn_at_native_size():
    from sklearn.datasets import load_digits
    digits = load_digits()
    test = load_dataset("digits", "test", image_size=8)
    train = load_dataset("digits", "train", image_size=8)
    assert len(test) == 360 and len(train) == 1437
    expected = np.rint(digits.images[::5] * 255 / 16).astype(np.uint8)
    assert torch.equal(test.images[:, 0], torch.from_numpy(expected))
    assert test.labels.tolist() == digits.target[::5].tolist()
    assert load_dataset("digits", image_size=32).images.shape == (1437, 1, 32, 32)


def test_synthetic_is_deterministic_and_linearly_learnable():
    train = load_dataset("synthetic", "train", seed=0)
    test = load_dataset("synthetic", "test")
    assert (len(train), len(test), train.channels, train.num_classes) == (512, 128, 3, 10)
    assert torch.equal(train.images, load_dataset("synthetic", "train", seed=123).images)  # run seed-independent
    assert not torch.equal(train.images[:128], test.images)
    assert train.labels.bincount().min() >= 50
    # ridge regression on raw pixels, one-hot targets: a linear classifier
    def features(ds):
        x = ds.images.flatten(1).float() / 255
        return torch.cat([x, torch.ones(len(x), 1)], 1)
    a = features(train)
    w = torch.linalg.solve(a.T @ a + torch.eye(a.shape[1]), a.T @ torch.nn.functional.one_hot(train.labels).float())
    accuracy = ((features(test) @ w).argmax(1) == test.labels).float().mean().item()
    assert accuracy > 0.6  # chance is 0.1


def test_cifar_python_batches_with_str_keys(tmp_path):
    """Pickles written by Python 3 have str keys where the official Python 2 ones load as bytes."""
    _, fx = build("cifar10-batches", tmp_path)
    path = fx.root / "cifar-10-batches-py" / "test_batch"
    batch = pickle.loads(path.read_bytes())
    path.write_bytes(pickle.dumps({k.decode(): v for k, v in batch.items()}))
    assert load_dataset("cifar10", "test", root=fx.root).labels.tolist() == [9, 0, 5]


def test_cifar_jpg_export_is_decoded_once_then_read_from_the_array_cache(tmp_path, monkeypatch):
    fx = make_cifar10_jpg(tmp_path / "cifar")
    first = load_dataset("cifar10", root=fx.root)
    cached = list((cache_dir() / "arrays").glob("*.npz"))  # conftest points the cache at a temporary folder
    assert len(cached) == 1
    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image although the arrays are cached")
    with monkeypatch.context() as m:
        m.setattr(PIL.Image, "open", no_decoding)
        second = load_dataset("cifar10", root=fx.root, image_size=64)
        again = load_dataset("cifar10", root=fx.root)
    assert torch.equal(first.images, again.images) and first.transform_id == again.transform_id
    assert second.images.shape == (10, 3, 64, 64)
    # a changed file changes the key: decoded afresh into a second cache file
    replaced = fx.root / "train" / "cat" / "0000.jpg"
    replaced.write_bytes(encode(two_tone(32, 32, (0, 0, 0), (255, 255, 255)), "JPEG"))
    changed = load_dataset("cifar10", root=fx.root)
    assert len(list((cache_dir() / "arrays").glob("*.npz"))) == 2
    assert changed.images[3].float().mean() != first.images[3].float().mean()


def test_cifar_transform_id_names_the_source_format(tmp_path):
    _, batches = build("cifar10-batches", tmp_path / "b")
    _, jpg = build("cifar10-jpg", tmp_path / "j")
    assert (load_dataset("cifar10", root=batches.root).transform_id
            != load_dataset("cifar10", root=jpg.root).transform_id)


def test_cifar_jpg_export_needs_ten_classes(tmp_path):
    fx = make_cifar10_jpg(tmp_path / "cifar")
    for f in (fx.root / "train" / "truck").iterdir():
        f.unlink()
    (fx.root / "train" / "truck").rmdir()
    with pytest.raises(DataError, match="expected 10 class folders, found 9"):
        load_dataset("cifar10", root=fx.root)


def test_lsun_lmdb_dataset_survives_pickling_and_worker_processes(tmp_path):
    _, fx = build("lsun-lmdb", tmp_path)
    ds = load_dataset("lsun", root=fx.root)
    x0 = ds[0][0]
    clone = pickle.loads(pickle.dumps(ds))  # with its environment open: must not be pickled
    assert torch.equal(clone[0][0], x0)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=1)
    (batch, labels), = list(loader)
    assert torch.equal(batch[0], x0) and labels.tolist() == [-1] * 5


def test_lsun_root_may_be_the_lmdb_folder_itself(tmp_path):
    _, fx = build("lsun-lmdb", tmp_path)
    assert len(load_dataset("lsun", root=fx.root / "kitchen_train_lmdb")) == 3


def test_lsun_several_categories_without_bedroom_is_ambiguous(tmp_path):
    for category in ("church", "tower"):
        write_lmdb(tmp_path / f"{category}_train_lmdb", [(-1, (1, 2, 3), (4, 5, 6))], 8, 8)
    with pytest.raises(DataError, match="several LSUN categories .*church_train_lmdb, tower_train_lmdb"):
        load_dataset("lsun", root=tmp_path)


# ---- subsets ------------------------------------------------------------------------------------------

def test_subset_is_seeded_sorted_and_capped():
    full = load_dataset("digits")
    sub = load_dataset("digits", subset=100, seed=3)
    assert len(sub) == 100
    g = torch.Generator().manual_seed(3)
    keep = torch.randperm(len(full), generator=g)[:100].sort().values
    assert torch.equal(sub.images, full.images[keep]) and torch.equal(sub.labels, full.labels[keep])
    assert torch.equal(load_dataset("digits", subset=100, seed=3).images, sub.images)
    assert not torch.equal(load_dataset("digits", subset=100, seed=4).images, sub.images)
    assert len(load_dataset("digits", subset=10**6)) == len(full)


def test_subset_of_a_lazy_data_set_subsets_the_file_list(tmp_path):
    _, fx = build("imagenet", tmp_path)
    full = load_dataset("imagenet", root=fx.root)
    sub = load_dataset("imagenet", root=fx.root, subset=2, seed=1)
    keep = torch.randperm(len(full), generator=torch.Generator().manual_seed(1))[:2].sort().values.tolist()
    assert sub.items == [full.items[i] for i in keep]
    assert sub.labels.tolist() == [full.labels[i].item() for i in keep]


# ---- missing and broken data ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
    ("fashion-mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ("svhn", "train_32x32.mat"),
    ("lsun", "bedroom_train_lmdb"),
    ("imagenet", "train/<wnid>"),
    ("imagenet-downsampled", "train_data_batch_1"),
    ("folder", ""),
    ("class-folders", "train/<class>"),
    ("celeba", "celeba/img_align_celeba"),
])
def test_missing_data_names_the_expected_path(name, expected, tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as info:
        load_dataset(name, root=root)
    message = str(info.value)
    assert "\n" not in message and str(root / expected) in message


def test_default_root_is_the_cache_folder():
    with pytest.raises(DataError, match=str(cache_dir() / "data" / "MNIST" / "raw")):
        load_dataset("mnist")


def test_folder_needs_a_root():
    with pytest.raises(DataError, match="--data-root"):
        load_dataset("folder")


def test_empty_folder_says_what_was_looked_for(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=rf"^no images found under {tmp_path} \(looked for .jpg, .*\.png"):
        load_dataset("folder", root=tmp_path)


def test_missing_split_file_names_it(tmp_path):
    _, fx = build("cifar10-batches", tmp_path)
    (fx.root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", root=fx.root)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_broken_image_file_names_its_path(damage, tmp_path):
    fx = make_folder(tmp_path / "f")
    broken = fx.root / "a" / "y.PNG"
    content = broken.read_bytes()
    broken.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"not a png at all")
    ds = load_dataset("folder", root=fx.root)
    assert ds[0][0].shape == (3, 32, 32)  # the others still load
    with pytest.raises(DataError, match=rf"^{broken}: cannot decode image \("):
        ds[ds.items.index(str(broken))]


def test_broken_lmdb_record_names_the_key(tmp_path):
    import lmdb
    _, fx = build("lsun-lmdb", tmp_path)
    env = lmdb.open(str(fx.root / "bedroom_train_lmdb"))
    with env.begin(write=True) as txn:
        txn.put(b"000001", b"\xff\xd8 truncated jpeg")
    env.close()
    ds = load_dataset("lsun", root=fx.root)
    with pytest.raises(DataError, match=r"bedroom_train_lmdb\[000001\]: cannot decode image"):
        ds[1]


def test_broken_jpg_in_cifar_export_names_it(tmp_path):
    fx = make_cifar10_jpg(tmp_path / "cifar")
    broken = fx.root / "test" / "dog" / "0001.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=str(broken)):
        load_dataset("cifar10", "test", root=fx.root)


def test_malformed_idx_file_is_a_data_error(tmp_path):
    _, fx = build("mnist", tmp_path)
    (fx.root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x09\x09 not idx")
    with pytest.raises(DataError, match="cannot read the IDX files"):
        load_dataset("mnist", "test", root=fx.root)


def test_malformed_batch_file_is_a_data_error(tmp_path):
    _, fx = build("imagenet-downsampled", tmp_path)
    (fx.root / "val_data").write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}))
    with pytest.raises(DataError, match=r"val_data: expected 'data' of N rows of 3\*S\*S bytes"):
        load_dataset("imagenet-downsampled", "val", root=fx.root)


def test_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets
    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirror ...")
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(DataError, match=r"^could not download mnist to .*\(Error downloading train-images-idx3-ubyte.gz:\)$"):
        load_dataset("mnist", root=tmp_path, download=True)


# ---- batch files are unpickled with a restricted unpickler -------------------------------------------

def _cifar_test_batch(tmp_path) -> tuple[Fixture, Path, dict]:
    """The CIFAR-10 fixture, its test batch's path and that batch as plain pickle reads it."""
    _, fx = build("cifar10-batches", tmp_path)
    path = fx.root / "cifar-10-batches-py" / "test_batch"
    return fx, path, pickle.loads(path.read_bytes(), encoding="latin1")


@pytest.mark.parametrize("protocol", [0, 2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
def test_batch_pickled_by_python3_at_any_protocol_loads(protocol, tmp_path):
    """A batch as pickle.dump writes it (bytes keys, a uint8 array, a list of labels), read as CIFAR's are."""
    fx, path, batch = _cifar_test_batch(tmp_path)
    expected = load_dataset("cifar10", "test", root=fx.root)
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"testing batch 1 of 1", b"data": batch[b"data"],
                     b"labels": [int(k) for k in batch[b"labels"]], b"filenames": batch[b"filenames"]}, f,
                    protocol=protocol)
    ds = load_dataset("cifar10", "test", root=fx.root)
    assert torch.equal(ds.images, expected.images) and ds.labels.tolist() == [9, 0, 5]


def test_batch_pickled_by_python2_and_numpy1_loads(tmp_path):
    """The official files: Python 2 strs for keys and array bytes, numpy.core.multiarray._reconstruct."""
    fx, path, batch = _cifar_test_batch(tmp_path)
    expected = load_dataset("cifar10", "test", root=fx.root)
    path.write_bytes(python2_batch_pickle(batch[b"data"], batch[b"labels"]))
    ds = load_dataset("cifar10", "test", root=fx.root)
    assert torch.equal(ds.images, expected.images) and ds.labels.tolist() == [9, 0, 5]


class _CreatesFile:
    """Pickles into a call that creates ``marker`` when unpickled, as a crafted batch file would."""

    def __init__(self, marker: Path, how: str):
        self.marker, self.how = marker, how

    def __reduce__(self):
        if self.how == "os.system":
            return os.system, (f"touch '{self.marker}'",)
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("how", ["os.system", "exec"])
@pytest.mark.parametrize("format_id, split, batch_file", [
    ("cifar10-batches", "test", "cifar-10-batches-py/test_batch"),
    ("imagenet-downsampled", "val", "val_data"),
])
def test_crafted_batch_pickle_runs_no_code(format_id, split, batch_file, how, tmp_path):
    name, fx = build(format_id, tmp_path)
    marker = tmp_path / "pwned"
    path = fx.root / batch_file
    path.write_bytes(pickle.dumps({b"data": _CreatesFile(marker, how), b"labels": [1]}, protocol=2))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: refusing to unpickle \w+\.(system|exec);"):
        load_dataset(name, split, root=fx.root)
    assert not marker.exists()


def test_npz_batch_with_pickled_objects_is_refused(tmp_path):
    name, fx = build("imagenet-downsampled-npz", tmp_path)
    marker = tmp_path / "pwned"
    path = fx.root / "val_data.npz"
    np.savez(path, data=np.array([_CreatesFile(marker, "exec")], dtype=object), labels=np.array([1]))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: cannot read batch file \(Object arrays"):
        load_dataset(name, "val", root=fx.root)
    assert not marker.exists()


# ---- real data (opt-in) ----------------------------------------------------------------------------------

@pytest.mark.realdata
def test_real_fashion_mnist(shared_data):
    root = shared_data / "fashion-mnist"
    if not (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real Fashion-MNIST not found under {root}")
    ds = load_dataset("fashion-mnist", "train", root=root, image_size=32)
    assert len(ds) == 60000 and ds.images.shape == (60000, 1, 32, 32)
    assert ds.labels.bincount().tolist() == [6000] * 10
    assert 60 < ds.images.float().mean() < 90  # Fashion-MNIST's mean intensity is about 0.286
