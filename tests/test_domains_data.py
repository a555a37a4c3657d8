"""Tests of the data a multi-domain translation reads: ``load_dataset(classes=..., attrs=...)``, the
``class-folders`` data set (AFHQ's layout) and CelebA, on files written in their exact formats
(tests/fixtures_data.py)."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dcgan.data import DATASETS, get_spec, load_dataset, resolved_spec
from dcgan.data.registry import data_fingerprint, subset_indices
from dcgan.errors import ConfigError, DataError
from fixtures_data import (CELEBA_ATTRIBUTES, CELEBA_PARTITION, celeba_attribute, colours, make_celeba,
                           make_cifar10_batches, make_class_folders, make_imagenet_downsampled, write_celeba_text, write_files)

STARGAN_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")  # the StarGAN paper's CelebA domains


def one_line_error(match: str):
    """``pytest.raises(DataError)`` whose message must be one line matching ``match`` from its start."""
    return pytest.raises(DataError, match=rf"^(?!.*\n){match}")


# ---- class names, attributes and what a spec may declare ------------------------------------------------------

def test_built_data_sets_name_their_classes(tmp_path):
    from fixtures_data import make_folder, make_imagenet

    assert load_dataset("synthetic", "test").class_names == get_spec("synthetic").class_names  # fixed in the spec
    imagenet = load_dataset("imagenet", root=make_imagenet(tmp_path / "in").root)  # found: the wnids
    assert imagenet.class_names == ("n01440764", "n01443537", "n01484850") and imagenet.num_classes == 1000
    folder = load_dataset("folder", root=make_folder(tmp_path / "f").root)
    assert (folder.class_names, folder.attributes, folder.num_classes) == ((), (), None)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_classes": -1}, "num_classes must be None, 0 \\(found in the data\\) or a count, got -1"),
    ({"num_classes": 0, "class_names": ("a",)}, "1 class names for 0 classes"),
    ({"num_classes": 2, "attributes": ("Male",)}, "labels are classes or attributes, not both"),
])
def test_a_spec_that_contradicts_itself_is_refused(kwargs, message):
    from dcgan.data import register_dataset

    with pytest.raises(ValueError, match=rf"^data set 'bad': {message}$"):
        register_dataset("bad", splits=("train",), channels=3, description="bad", **kwargs)
    assert "bad" not in DATASETS


# ---- choosing classes ------------------------------------------------------------------------------------

def test_classes_keep_their_images_relabelled_in_the_order_given():
    full = load_dataset("synthetic")
    chosen = load_dataset("synthetic", classes=("ring", "disc"))
    ring, disc = full.labels == 5, full.labels == 0
    assert torch.equal(chosen.images, full.images[ring | disc])
    assert torch.equal(chosen.keep, (ring | disc).nonzero().flatten())
    assert chosen.labels.tolist() == [0 if label == 5 else 1 for label in full.labels[ring | disc].tolist()]
    assert (chosen.num_classes, chosen.class_names) == (2, ("ring", "disc"))
    assert chosen.labels.bincount().tolist() == [int(ring.sum()), int(disc.sum())]
    swapped = load_dataset("synthetic", classes=("disc", "ring"))
    assert torch.equal(swapped.images, chosen.images) and torch.equal(swapped.labels, 1 - chosen.labels)
    assert swapped.class_names == ("disc", "ring")


def test_a_class_by_its_index_or_its_name_in_another_case():
    by_name = load_dataset("synthetic", "test", classes=("ring", "cross"))
    for classes in (("5", "6"), ("Ring", "CROSS"), ("5", "Cross")):
        other = load_dataset("synthetic", "test", classes=classes)
        assert torch.equal(other.images, by_name.images) and torch.equal(other.labels, by_name.labels)
        assert other.class_names == ("ring", "cross")  # the data set's own spelling


def test_one_class_is_a_data_set_of_one_domain():
    one = load_dataset("digits", "test", classes=("7",))
    sevens = load_dataset("digits", "test").labels == 7
    assert one.num_classes == 1 and one.labels.unique().tolist() == [0] and len(one) == int(sevens.sum()) > 0


def test_classes_without_names_are_chosen_by_index(tmp_path):
    fx = make_imagenet_downsampled(tmp_path / "in32")  # labels 0, 999, 5, 7, 42; no class names
    ds = load_dataset("imagenet-downsampled", root=fx.root, classes=("999", "5"))
    assert ds.labels.tolist() == [0, 1] and ds.class_names == ("999", "5") and ds.num_classes == 2
    with one_line_error(r"data set 'imagenet-downsampled' has no class 'cat': its classes have no names, give "
                        r"their indices '0' to '999'"):
        load_dataset("imagenet-downsampled", root=fx.root, classes=("cat",))


def test_the_fingerprint_follows_the_selection_and_its_order():
    full = load_dataset("synthetic")
    chosen = load_dataset("synthetic", classes=("ring", "disc"))
    swapped = load_dataset("synthetic", classes=("disc", "ring"))
    assert len({full.fingerprint(), chosen.fingerprint(), swapped.fingerprint()}) == 3
    assert chosen.fingerprint() == load_dataset("synthetic", classes=("5", "Disc")).fingerprint()
    assert (chosen.selection, swapped.selection) == ("classes=5,0", "classes=0,5")
    # a whole data set keeps the fingerprint it always had: caches keyed on it stay valid
    h = hashlib.sha256(f"{full.data_fingerprint}\0{full.transform_id}\0".encode())
    h.update(b"all")
    assert full.selection == "" and full.fingerprint() == h.hexdigest()


def test_a_subset_is_drawn_among_the_chosen_classes():
    chosen = load_dataset("synthetic", classes=("ring", "disc"))
    sub = load_dataset("synthetic", classes=("ring", "disc"), subset=10, seed=3)
    at = subset_indices(len(chosen), 10, 3)
    assert len(sub) == 10 and sub.num_classes == 2
    assert torch.equal(sub.images, chosen.images[at]) and torch.equal(sub.labels, chosen.labels[at])
    assert torch.equal(sub.keep, chosen.keep[at])  # indices into the whole split
    assert sub.fingerprint() not in (chosen.fingerprint(), load_dataset("synthetic", subset=10, seed=3).fingerprint())
    everything = load_dataset("synthetic", classes=("ring", "disc"), subset=10**6)
    assert torch.equal(everything.images, chosen.images)


def test_classes_of_a_lazy_data_set(tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    ds = load_dataset("class-folders", root=fx.root, classes=("wild", "cat"))
    assert [Path(p).parent.name for p in ds.items] == ["cat", "cat", "wild", "wild", "wild"]
    assert ds.labels.tolist() == [1, 1, 0, 0, 0] and [ds[i][1] for i in range(len(ds))] == [1, 1, 0, 0, 0]
    assert (ds.num_classes, ds.class_names) == (2, ("wild", "cat"))


@pytest.mark.parametrize("kwargs, message", [
    ({"classes": ("rnig",)}, r"data set 'synthetic' has no class 'rnig' \(did you mean 'ring'\?\); classes: disc, "),
    ({"classes": ("ring", "disc", "Ring")}, r"classes=ring,disc,Ring names 'ring' twice"),
    ({"classes": ("5", "ring")}, r"classes=5,ring names 'ring' twice"),
    ({"classes": ("10",)}, r"class '10' of data set 'synthetic' is out of range: its classes are 0 to 9"),
    ({"classes": "ring"}, r"classes= must be a sequence of class names \(strings\), got 'ring'"),
    ({"classes": (5,)}, r"classes= must be a sequence of class names \(strings\), got \(5,\)"),
    ({"classes": ()}, r"classes= must name at least one class"),
    ({"classes": ("ring",), "attrs": ("Male",)}, r"give classes= \(which classes\) or attrs= \(which attributes\), "),
])
def test_bad_classes_are_one_line_errors(kwargs, message):
    with one_line_error(message):
        load_dataset("synthetic", **kwargs)


def test_a_class_without_images_in_the_split_is_named(tmp_path):
    fx = make_cifar10_batches(tmp_path / "c")  # test labels: 9, 0, 5
    assert load_dataset("cifar10", "test", root=fx.root, classes=("truck", "dog")).labels.tolist() == [0, 1]
    with one_line_error(r"class 'bird' has no images in split 'test' of data set 'cifar10'$"):
        load_dataset("cifar10", "test", root=fx.root, classes=("truck", "bird"))


def test_labels_a_data_set_lacks_are_refused_before_its_files_are_read(tmp_path):
    nowhere = tmp_path / "nowhere"
    with one_line_error(r"data set 'folder' has no class labels: classes= needs a labelled data set$"):
        load_dataset("folder", root=nowhere, classes=("a",))
    with one_line_error(r"data set 'celeba' has no class labels \(its labels are attributes: choose some with "
                        r"attrs=\): classes= needs"):
        load_dataset("celeba", root=nowhere, classes=("Male",))
    with one_line_error(r"data set 'cifar10' has no attributes: attrs= is for data sets with per-image attributes "
                        r"\(celeba\)$"):
        load_dataset("cifar10", root=nowhere, attrs=("Male",))


# ---- class-folders: classes found in the data ---------------------------------------------------------------

def test_class_folders_finds_its_classes_in_the_folders(tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    spec = get_spec("class-folders")
    assert spec.num_classes == 0 and spec.classes_from_data and spec.splits == ("train", "val", "test")
    for split, items in fx.items.items():
        ds = load_dataset("class-folders", split, root=fx.root)
        assert (ds.num_classes, ds.class_names) == (3, ("cat", "dog", "wild"))
        assert ds.labels.tolist() == [label for label, _, _ in items]
    with one_line_error(rf"class-folders not found under {fx.root}: expected {fx.root / 'test'}/<class>/\*"):
        load_dataset("class-folders", "test", root=fx.root)
    with one_line_error(r"data set 'class-folders' needs a folder of splits of class folders .*: pass --data-root"):
        load_dataset("class-folders")


def test_class_folders_may_have_more_classes(tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    for split in ("train", "val"):
        write_files([fx.root / split / "bird" / "b.png"], [(3, *colours(9, 3))], 40, 50)
    ds = load_dataset("class-folders", "val", root=fx.root)
    assert (ds.num_classes, ds.class_names) == (4, ("bird", "cat", "dog", "wild"))
    assert ds.labels.tolist() == [0, 1, 2, 3] and Path(ds.items[0]).parent.name == "bird"


@pytest.mark.parametrize("damage, message", [
    ("extra", r"{val}: class folders differ from {train}'s \(val has fox, which train lacks\): every split needs the "
              r"same classes"),
    ("missing", r"{val}: class folders differ from {train}'s \(val lacks wild\): every split needs"),
    ("empty", r"{val}/dog: class folder without images \(looked for .jpg, "),
])
def test_class_folders_splits_must_have_the_same_classes(damage, message, tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    val = fx.root / "val"
    if damage == "extra":
        write_files([val / "fox" / "f.png"], [(3, *colours(9, 3))], 40, 50)
    else:
        folder = val / ("wild" if damage == "missing" else "dog")
        for f in folder.iterdir():
            f.unlink()
        if damage == "missing":
            folder.rmdir()
    expected = message.format(val=re.escape(str(val)), train=re.escape(str(fx.root / "train")))
    with one_line_error(expected):
        load_dataset("class-folders", "val", root=fx.root)
    with one_line_error(expected):  # the content fingerprint lists the same files, checked the same way
        data_fingerprint("class-folders", "val", root=fx.root)


def test_a_file_moved_to_another_class_changes_the_data_fingerprint(tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    before = data_fingerprint("class-folders", root=fx.root)
    (fx.root / "train" / "wild" / "train_005.png").rename(fx.root / "train" / "dog" / "train_005.png")
    assert data_fingerprint("class-folders", root=fx.root) != before
    assert load_dataset("class-folders", root=fx.root).labels.tolist() == [0, 0, 1, 1, 2, 2]


def test_resolved_spec_counts_the_classes_found(tmp_path):
    fx = make_class_folders(tmp_path / "afhq")
    spec = resolved_spec("class-folders", fx.root)
    assert (spec.num_classes, spec.class_names, spec.name) == (3, ("cat", "dog", "wild"), "class-folders")
    assert resolved_spec("cifar10", tmp_path / "nowhere") is get_spec("cifar10")  # a fixed count reads no file


def test_a_conditional_model_on_class_folders_draws_the_classes_found(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main
    from dcgan.checkpoint import read_checkpoint
    from dcgan.models.cdcgan import ConditionalDCGAN

    fx = make_class_folders(tmp_path / "afhq")
    with pytest.raises(ConfigError, match=r"num_classes=0"):  # the unresolved spec has no count to configure
        ConditionalDCGAN.configure(get_spec("class-folders"))
    args = ["train", "--model", "cdcgan", "--dataset", "class-folders", "--data-root", fx.root, "--image-size", 32,
            "--ngf", 8, "--ndf", 8, "--batch-size", 3, "--device", "cpu", "--epochs", 1, "--out", tmp_path / "run"]
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert read_checkpoint(tmp_path / "run" / "g.pt")["config"]["num_classes"] == 3


# ---- CelebA -----------------------------------------------------------------------------------------------

def celeba_rows(split: str, attrs: tuple[str, ...]) -> list[list[int]]:
    """The fixture's attributes ``attrs`` (0/1) of the images of ``split``, in file order."""
    code = ("train", "valid", "test").index(split)
    columns = [CELEBA_ATTRIBUTES.index(a) for a in attrs]
    return [[(celeba_attribute(i, j) + 1) // 2 for j in columns] for i, c in enumerate(CELEBA_PARTITION) if c == code]


def test_celeba_attributes_are_the_files_values_as_0_1(tmp_path):
    fx = make_celeba(tmp_path / "data")
    assert len(CELEBA_ATTRIBUTES) == 40 and get_spec("celeba").attributes == tuple(CELEBA_ATTRIBUTES)
    for split in ("train", "valid", "test"):
        ds = load_dataset("celeba", split, root=fx.root, attrs=STARGAN_ATTRS)
        assert ds.attributes == STARGAN_ATTRS and ds.num_classes is None and ds.class_names == ()
        assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == celeba_rows(split, STARGAN_ATTRS)
        assert [Path(p).name for p in ds.items] == [f"{i + 1:06d}.jpg" for i, c in enumerate(CELEBA_PARTITION)
                                                    if c == ("train", "valid", "test").index(split)]
    # another order: other columns, another fingerprint
    train = load_dataset("celeba", root=fx.root, attrs=STARGAN_ATTRS)
    other = load_dataset("celeba", root=fx.root, attrs=("Young", "male", "Wearing_Necktie"))
    assert other.attributes == ("Young", "Male", "Wearing_Necktie")
    assert other.labels.tolist() == celeba_rows("train", ("Young", "Male", "Wearing_Necktie"))
    assert other.fingerprint() != train.fingerprint() != load_dataset("celeba", root=fx.root).fingerprint()


def test_celeba_items_batch_into_rows_of_attributes(tmp_path):
    fx = make_celeba(tmp_path / "data")
    ds = load_dataset("celeba", root=fx.root, attrs=STARGAN_ATTRS, image_size=16)
    x, y = ds[1]
    assert x.shape == (3, 16, 16) and y.tolist() == celeba_rows("train", STARGAN_ATTRS)[1]
    images, labels = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert images.shape == (3, 3, 16, 16) and labels.shape == (3, 5) and labels.dtype == torch.int64
    assert labels.tolist() == celeba_rows("train", STARGAN_ATTRS)[:3]


def test_celeba_without_attrs_is_unlabelled(tmp_path):
    fx = make_celeba(tmp_path / "data")
    ds = load_dataset("celeba", "valid", root=fx.root)
    assert ds.labels is None and ds.attributes == () and ds[0][1] == -1 and len(ds) == 2


def test_celeba_root_may_hold_the_files_directly(tmp_path):
    fx = make_celeba(tmp_path / "data")
    direct = load_dataset("celeba", "test", root=fx.root / "celeba", attrs=("Male",))
    assert direct.labels.tolist() == celeba_rows("test", ("Male",)) and len(direct) == 1


def test_celeba_lists_its_text_files_for_the_fingerprint(tmp_path):
    fx = make_celeba(tmp_path / "data")
    folder = fx.root / "celeba"
    files = get_spec("celeba").files(fx.root, "valid")
    assert files == [str(folder / "img_align_celeba" / n) for n in ("000003.jpg", "000006.jpg")] + [
        str(folder / "list_eval_partition.txt"), str(folder / "list_attr_celeba.txt")]
    before = data_fingerprint("celeba", "valid", root=fx.root)
    assert load_dataset("celeba", "valid", root=fx.root, attrs=("5_o_Clock_Shadow",)).labels.tolist() == [[0], [1]]
    text = (folder / "list_attr_celeba.txt").read_text()
    (folder / "list_attr_celeba.txt").write_text(text.replace("000003.jpg -1", "000003.jpg  1"))  # same size
    assert load_dataset("celeba", "valid", root=fx.root, attrs=("5_o_Clock_Shadow",)).labels.tolist() == [[1], [1]]
    assert data_fingerprint("celeba", "valid", root=fx.root) != before


@pytest.mark.parametrize("name, attrs, message", [
    ("celeba", ("Blond",), r"data set 'celeba' has no attribute 'Blond' \(did you mean 'Blond_Hair'\?\); "
                           r"attributes: 5_o_Clock_Shadow, "),
    ("celeba", ("Male", "Young", "male"), r"attrs=Male,Young,male names 'Male' twice$"),
    ("celeba", (), r"attrs= must name at least one attribute$"),
    ("celeba", "Male", r"attrs= must be a sequence of attribute names \(strings\), got 'Male'$"),
])
def test_bad_attrs_are_one_line_errors(name, attrs, message, tmp_path):
    fx = make_celeba(tmp_path / "data")
    with one_line_error(message):
        load_dataset(name, root=fx.root, attrs=attrs)


def _edit_attributes(fx, edit) -> Path:
    path = fx.root / "celeba" / "list_attr_celeba.txt"
    lines = path.read_text().split("\n")
    edit(lines)
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines.__setitem__(1, lines[1].replace("Black_Hair Blond_Hair", "Blond_Hair Black_Hair")),
     r"{path}, line 2: expected CelebA's 40 attribute names in order; name 9 is 'Blond_Hair' where 'Black_Hair' "
     r"was expected$"),
    (lambda lines: lines.__setitem__(1, lines[1].replace(" Young", "")),
     r"{path}, line 2: expected CelebA's 40 attribute names in order; found 39 names$"),
    (lambda lines: lines.__setitem__(4, lines[4][:-3]),
     r"{path}, line 5: expected an image name and 40 values, found 39 values$"),
    (lambda lines: lines.__setitem__(4, lines[4] + "  1"),
     r"{path}, line 5: expected an image name and 40 values, found 41 values$"),
    (lambda lines: lines.__setitem__(3, lines[3][:-2] + " 0"),
     r"{path}, line 4: attribute values must be -1 or 1, found '0'$"),
    (lambda lines: lines.__setitem__(3, lines[3][:-2] + " y"),
     r"{path}, line 4: attribute values must be -1 or 1, found 'y'$"),
    (lambda lines: lines.__setitem__(0, "8"), r"{path}, line 1: expected the number of images \(7\), got '8'$"),
    (lambda lines: (lines.__delitem__(6), lines.__setitem__(0, "6")),
     r"{path}: no attributes for 000005.jpg, which .*list_eval_partition.txt lists$"),
])
def test_a_malformed_attribute_file_is_refused(edit, message, tmp_path):
    fx = make_celeba(tmp_path / "data")
    path = _edit_attributes(fx, edit)
    with one_line_error(message.format(path=re.escape(str(path)))):
        load_dataset("celeba", "test" if "no attributes" in message else "train", root=fx.root)


def test_a_header_of_other_names_is_refused_even_without_attrs(tmp_path):
    fx = make_celeba(tmp_path / "data")
    write_celeba_text(fx.root / "celeba", header=[a.lower() for a in CELEBA_ATTRIBUTES])
    with one_line_error(r".*list_attr_celeba.txt, line 2: expected CelebA's 40 attribute names in order; name 1 is "
                        r"'5_o_clock_shadow' where '5_o_Clock_Shadow' was expected$"):
        load_dataset("celeba", root=fx.root)


def test_a_malformed_partition_file_is_refused(tmp_path):
    fx = make_celeba(tmp_path / "data")
    path = fx.root / "celeba" / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000004.jpg 0", "000004.jpg 3"))
    with one_line_error(rf"{re.escape(str(path))}, line 4: expected '<image> 0\|1\|2' \(train, valid, test\), got "
                        r"'000004.jpg 3'$"):
        load_dataset("celeba", root=fx.root)
    path.write_text("000001.jpg 0\n")
    with one_line_error(rf"{re.escape(str(path))}: no image of split 'test' \(code 2\)$"):
        load_dataset("celeba", "test", root=fx.root)


def test_celeba_missing_files_are_named(tmp_path):
    fx = make_celeba(tmp_path / "data")
    (fx.root / "celeba" / "list_eval_partition.txt").unlink()
    with one_line_error(rf"celeba not found under {re.escape(str(fx.root))}: expected "
                        rf"{re.escape(str(fx.root / 'celeba' / 'list_eval_partition.txt'))}, torchvision's layout; "
                        r"pass --download"):
        load_dataset("celeba", root=fx.root)
    make_celeba(tmp_path / "data")
    (fx.root / "celeba" / "img_align_celeba" / "000001.jpg").unlink()
    with one_line_error(r".*000001.jpg: listed in .*list_eval_partition.txt but not found$"):
        load_dataset("celeba", root=fx.root)


def test_a_failed_celeba_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(self):
        raise RuntimeError("To download files from GDrive, 'gdown' is required.\nYou can install it")
    monkeypatch.setattr(torchvision.datasets.CelebA, "download", offline)
    with one_line_error(rf"could not download celeba to {re.escape(str(tmp_path))} \(To download files from "
                        r"GDrive, 'gdown' is required.\)$"):
        load_dataset("celeba", root=tmp_path, download=True)


def test_celeba_download_goes_through_torchvision(tmp_path, monkeypatch):
    """``--download`` asks torchvision's CelebA for the split with attributes, into ``<root>/celeba``."""
    import torchvision.datasets

    calls = []

    def fake_celeba(root, split, target_type, download):
        calls.append((root, split, target_type, download))
        make_celeba(Path(root))
    monkeypatch.setattr(torchvision.datasets, "CelebA", fake_celeba)
    ds = load_dataset("celeba", "valid", root=tmp_path, download=True, attrs=("Male",))
    assert calls == [(str(tmp_path), "valid", "attr", True)] and len(ds) == 2
    load_dataset("celeba", "valid", root=tmp_path, download=True)
    assert len(calls) == 1  # present: not downloaded again


def test_celeba_pixels_are_stargans_centre_square(tmp_path):
    """StarGAN's CenterCrop(178) then Resize(128) and our resize-then-crop keep the same square of a 178x218
    face (see dcgan/data/celeba.py): on an image of gradients, waves and a bar just inside the square's top
    edge, the two pipelines agree to a grey level or two (a square 20 rows off would differ by about 20)."""
    from torchvision import transforms as T

    fx = make_celeba(tmp_path / "data")
    yy, xx = np.mgrid[0:218, 0:178]
    image = np.stack([xx * 255 / 177, yy * 255 / 217, 128 + 60 * np.sin(xx / 9) * np.cos(yy / 11)], -1)
    image[22:26] = (250, 20, 20)  # inside the square (rows 20 to 198)
    pixels = image.round().astype(np.uint8)
    path = fx.root / "celeba" / "img_align_celeba" / "000001.jpg"
    Image.fromarray(pixels).save(path, quality=98, subsampling=0)
    ours = load_dataset("celeba", root=fx.root, image_size=128)[0][0].float()
    with Image.open(path) as decoded:
        stargan = T.Compose([T.CenterCrop(178), T.Resize(128), T.PILToTensor()])(decoded.convert("RGB")).float()
    assert ours.shape == stargan.shape == (3, 128, 128)
    assert (ours - stargan).abs().mean() < 2.0  # the same region: a shift of a third of a pixel at most
    red = [(x[0] - x[1]).mean(1) for x in (ours, stargan)]  # by row: the bar's rows stand out
    assert red[0].argmax() == red[1].argmax() < 5 and red[0].max() > 100


# ---- the real Fashion-MNIST (opt-in) -------------------------------------------------------------------------

@pytest.mark.realdata
def test_real_fashion_mnist_two_classes(shared_data):
    root = shared_data / "fashion-mnist"
    if not (root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"real Fashion-MNIST not found under {root}")
    full = load_dataset("fashion-mnist", "test", root=root)
    ds = load_dataset("fashion-mnist", "test", root=root, classes=("Trouser", "Sneaker"))
    assert len(ds) == 2000 and ds.labels.bincount().tolist() == [1000, 1000]
    assert (ds.num_classes, ds.class_names) == (2, ("trouser", "sneaker"))
    assert torch.equal(ds.images[ds.labels == 0], full.images[full.labels == 1])
    assert torch.equal(ds.images[ds.labels == 1], full.images[full.labels == 7])
    swapped = load_dataset("fashion-mnist", "test", root=root, classes=("Sneaker", "Trouser"))
    assert torch.equal(swapped.labels, 1 - ds.labels) and swapped.fingerprint() != ds.fingerprint()
