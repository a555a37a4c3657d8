"""Content fingerprints of data sets (dcgan/data/fingerprint.py) and what they key: the feature cache, the
run id and FID's real-side cache name. Files replaced by others of the same count are other data, even
when every file keeps its size and modification time."""
import builtins
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.run import TASKS
from dcgan.data import data_fingerprint, fingerprint, get_spec, load_dataset
from dcgan.data.fingerprint import files_fingerprint, sample_spans
from fixtures_data import FORMATS
from fixtures_tasks import digits_images, tiny_checkpoints, write_digits_as
from test_svm import _quick


def _flip_byte(path, offset: int) -> None:
    """Change one byte of ``path`` in place and set its modification time back: same size, same time."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def _swap_contents(a, b) -> None:
    """Exchange two files' bytes (files of one size), each keeping its modification time."""
    times = [os.stat(p) for p in (a, b)]
    data = [a.read_bytes(), b.read_bytes()]
    assert len(data[0]) == len(data[1])
    a.write_bytes(data[1])
    b.write_bytes(data[0])
    for path, st in zip((a, b), times):
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _recording_open(opened: list):
    real_open = builtins.open

    def recording(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            opened.append(os.path.abspath(file))
        return real_open(file, *args, **kwargs)
    return recording


# ---- the fingerprint of every format ----------------------------------------------------------------

@pytest.mark.parametrize("format_id", sorted(FORMATS))
def test_every_format_is_fingerprinted_by_its_files_content_not_their_place(format_id, tmp_path):
    name, make = FORMATS[format_id]
    fx = make(tmp_path / "data")
    copy = shutil.copytree(fx.root, tmp_path / "copy")  # copy2: the times come along
    for split in fx.items:
        before = data_fingerprint(name, split, root=fx.root)
        assert data_fingerprint(name, split, root=copy) == before  # relative paths: the same data elsewhere
        path = get_spec(name).files(fx.root, split)[-1]
        _flip_byte(path, os.path.getsize(path) // 2)
        assert data_fingerprint(name, split, root=fx.root) != before, path
        _flip_byte(path, os.path.getsize(path) // 2)  # back: a file may serve every split (CelebA's labels)


@pytest.mark.parametrize("format_id", sorted(FORMATS))
def test_every_loader_reads_the_files_it_lists(format_id, tmp_path, monkeypatch):
    """What a split's fingerprint covers is what its loader reads: no more, no fewer files."""
    name, make = FORMATS[format_id]
    fx = make(tmp_path / "data")
    root = str(fx.root.resolve())
    for split in fx.items:
        listed = {os.path.abspath(p) for p in get_spec(name).files(fx.root, split)}
        opened = []
        with monkeypatch.context() as m:
            m.setattr(builtins, "open", _recording_open(opened))
            data = load_dataset(name, split, root=fx.root)
            for i in range(len(data)):
                data[i]
        if format_id == "lsun-lmdb":  # lmdb maps its data file in C, past Python's open
            assert listed == {os.path.join(data.lmdb_path, "data.mdb")}
        else:
            assert {p for p in opened if p.startswith(root)} == listed


def test_a_large_files_sampled_blocks_are_hashed_and_the_bytes_between_them_are_not(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(np.random.default_rng(0).bytes(1 << 20))
    before = files_fingerprint([path])
    spans = sample_spans(1 << 20)
    assert spans[0] == (0, 64 * 1024) and spans[-1] == ((1 << 20) - 64 * 1024, 64 * 1024) and len(spans) == 18
    inside = spans[5][0] + 10
    _flip_byte(path, inside)
    assert files_fingerprint([path]) != before
    _flip_byte(path, inside)  # back as it was
    assert files_fingerprint([path]) == before
    between = spans[5][0] + spans[5][1] + 100
    assert not any(offset <= between < offset + length for offset, length in spans)
    _flip_byte(path, between)
    assert files_fingerprint([path]) == before  # the documented limit: same size and time, never sampled


def test_an_unchanged_root_is_fingerprinted_again_from_the_disk_cache_without_reading_its_files(tmp_path,
                                                                                                 monkeypatch):
    root = write_digits_as("cifar10", tmp_path / "cifar")
    batches = {str(p) for p in (root / "cifar-10-batches-py").iterdir()}
    opened = []
    with monkeypatch.context() as m:
        m.setattr(builtins, "open", _recording_open(opened))
        first = data_fingerprint("cifar10", "train", root=root)
        assert set(opened) & batches == {str(root / "cifar-10-batches-py" / f"data_batch_{i}") for i in range(1, 6)}
        monkeypatch.setattr(fingerprint, "_MEMO", {})  # as in a new process
        opened.clear()
        assert data_fingerprint("cifar10", "train", root=root) == first
        assert not set(opened) & batches


# ---- what the fingerprint keys --------------------------------------------------------------------------

def _svm(tmp_path, root):
    """`bench run svm` on the cifar10 data at root, quick settings, with one D: (CLI output, result rows)."""
    d = tmp_path / "ckpt" / "d.pt"
    if not d.exists():
        tiny_checkpoints(d.parent, nc=3)
    args = ["run", "svm", "--ckpt", str(d), "--dataset", "cifar10", "--data-root", str(root), "--device", "cpu",
            "--results", str(tmp_path / "results")]
    for k, v in _quick(TASKS.get("svm")).items():
        args += ["--set", f"{k}={v}"]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output, pd.read_csv(tmp_path / "results" / "svm.csv")


def _cached(output: str) -> tuple[int, int]:
    hits, extracted = re.search(r"features cached: (\d+) hit\(s\), (\d+) extracted", output).groups()
    return int(hits), int(extracted)


def _accuracy(rows: pd.DataFrame) -> pd.Series:
    return rows[rows.metric == "accuracy"].groupby("model").value.mean()


def test_other_batches_under_the_same_root_are_other_data_for_the_features_and_the_run(tmp_path):
    root = write_digits_as("cifar10", tmp_path / "cifar")
    output, first = _svm(tmp_path, root)
    assert _cached(output) == (0, 6)  # 3 models x (train, test)
    write_digits_as("cifar10", root, first=60)  # other digits, as many, and their labels
    output, both = _svm(tmp_path, root)
    assert _cached(output) == (0, 6)
    assert both.run_id.nunique() == 2 and len(both) == 2 * len(first)  # the first run's rows are kept
    second = both[both.run_id != first.run_id[0]]
    assert (_accuracy(second) != _accuracy(first)).all()
    assert (_accuracy(second) > 0.3).all()  # the new features with the new labels (chance is 0.1)


def _write_folder_export(root):
    """The digits as a cifar10 image-folder export, <split>/<digit>/NNNN.png, stored uncompressed: every
    file has one size, so one image's bytes can replace another's without changing any size."""
    for split, (x, y) in digits_images(32).items():
        for i, (image, label) in enumerate(zip(x, y)):
            path = root / split / str(label) / f"{i:04d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).convert("RGB").save(path, compress_level=0)
    return root


def test_an_image_folder_whose_files_changed_at_the_same_size_and_time_is_other_data(tmp_path):
    root = _write_folder_export(tmp_path / "cifar")
    output, first = _svm(tmp_path, root)
    assert _cached(output) == (0, 6)
    # two test images of different digits exchange their bytes: both files keep their size and time
    _swap_contents(sorted((root / "test" / "0").iterdir())[0], sorted((root / "test" / "1").iterdir())[0])
    output, both = _svm(tmp_path, root)
    assert _cached(output) == (3, 3)  # the training split is unchanged, the test split is extracted again
    assert both.run_id.nunique() == 2 and len(both) == 2 * len(first)
    assert (_accuracy(both[both.run_id != first.run_id[0]]) != _accuracy(first)).any()


def test_fids_real_side_cache_name_changes_with_a_folders_content(tmp_path):
    from bench.fidelity import real_cache_name

    root = _write_folder_export(tmp_path / "imgs") / "test" / "0"
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"any weights file")

    def cache_name():
        return real_cache_name(load_dataset("folder", root=root, image_size=32, channels=3), "inception-v3",
                               weights, "fp32")

    before = cache_name()
    assert cache_name() == before
    _flip_byte(sorted(root.iterdir())[3], 2000)  # a pixel byte of an uncompressed 32x32 PNG
    assert cache_name() != before


def test_fingerprints_are_cache_entries_that_bench_cache_lists_and_prunes(tmp_path, monkeypatch):
    from bench.cache import list_lines, prune
    from dcgan.fsutil import cache_dir

    root = write_digits_as("svhn", tmp_path / "svhn")
    first = data_fingerprint("svhn", "test", root=root)
    lines = [line for line in list_lines(cache_dir()) if line.startswith("fingerprint ")]
    assert len(lines) == 1 and lines[0].endswith("the content fingerprint of a data set's files, for their paths, "
                                                 "sizes and times")
    prune(cache_dir(), 0)
    monkeypatch.setattr(fingerprint, "_MEMO", {})  # as in a new process
    assert not list((cache_dir() / "fingerprints").iterdir())
    assert data_fingerprint("svhn", "test", root=root) == first
