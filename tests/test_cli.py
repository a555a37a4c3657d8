"""The `bench` command end to end: training, sampling, listing, and one-line errors for bad input."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench.cli import main


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


TRAIN = ["train", "--dataset", "synthetic", "--subset", "64", "--image-size", "32", "--ngf", "8", "--ndf", "8",
         "--batch-size", "32", "--device", "cpu"]


def test_train_then_sample_then_resume(tmp_path):
    out = tmp_path / "run"
    r = _bench(*TRAIN, "--epochs", "1", "--out", out)
    assert r.exit_code == 0, r.output
    assert (out / "g.pt").is_file() and (out / "samples" / "epoch001.png").is_file()
    r = _bench("sample", "--ckpt", out / "g.pt", "--samples", "16", "--out", tmp_path / "grid.png")
    assert r.exit_code == 0 and (tmp_path / "grid.png").is_file() and (tmp_path / "grid.png.z.pt").is_file()
    # an existing run is never overwritten silently
    r = _bench(*TRAIN, "--epochs", "2", "--out", out)
    assert r.exit_code == 2 and "--resume" in r.output
    r = _bench(*TRAIN, "--epochs", "2", "--out", out, "--resume")
    assert r.exit_code == 0 and "done: 4 steps" in r.output


def test_a_preset_fills_in_the_options_not_given_and_a_given_one_wins(tmp_path):
    import json

    from dcgan.presets import PRESETS

    preset = PRESETS["paper-cifar10"]
    # the data set given on the command line (synthetic, not the preset's cifar10), the rest from the preset
    r = _bench("train", "--preset", "paper-cifar10", "--dataset", "synthetic", "--subset", "32", "--ngf", "4",
               "--ndf", "4", "--batch-size", "16", "--device", "cpu", "--max-steps", "1", "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["dataset"] == "synthetic" and config["model"]["ndf"] == 4
    for key, value in preset.settings.items():
        if key not in ("dataset",):
            assert (config["model"] if key in ("arch", "image_size") else config)[key] == value, key
    r = _bench("train", "--preset", "paper-cifar10", "--dataset", "synthetic", "--subset", "32", "--arch", "dcgan",
               "--precision", "fp32", "--ngf", "4", "--ndf", "4", "--batch-size", "16", "--device", "cpu",
               "--max-steps", "1", "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["model"]["arch"] == "dcgan" and config["precision"] == "fp32"
    assert config["model"]["image_size"] == preset.settings["image_size"]


def test_every_preset_sets_options_bench_train_has_to_values_it_accepts():
    """A preset key click does not know would be silently ignored as a default: each must name a real option,
    and its value pass that option's type."""
    from bench.cli_train import train
    from dcgan.presets import PRESETS

    params = {p.name: p for p in train.params}
    for preset in PRESETS.values():
        for key, value in preset.settings.items():
            assert key in params, (preset.name, key)
            assert params[key].type_cast_value(click.Context(train), value) == value, (preset.name, key)


@pytest.mark.parametrize("args,expected", [
    (["train", "--preset", "paper-svhn", "--out", "x"],
     "unknown preset 'paper-svhn'; expected one of paper-cifar10, paper-fashion-mnist"),
    (["train", "--dataset", "cifar", "--out", "x"], "did you mean 'cifar10'"),
    (["train", "--dataset", "mnist", "--data-root", "{tmp}/nothing", "--out", "{tmp}/x"], "MNIST/raw"),
    (["train", "--dataset", "synthetic", "--arch", "imagenet32", "--image-size", "64", "--out", "{tmp}/x"],
     "image size 64 is not supported by arch 'imagenet32'"),
    (["sample", "--ckpt", "{tmp}/missing.pt"], "does not exist"),
    (["train", "--dataset", "synthetic", "--device", "cuda", "--out", "{tmp}/x"], "CUDA is not available"),
    (["train", "--dataset", "synthetic", "--lr", "-1", "--out", "{tmp}/x"],
     "parameter lr=-1: expected a number > 0 or none"),
    (["train", "--dataset", "synthetic", "--lr", "nan", "--out", "{tmp}/x"],
     "parameter lr=nan: expected a number > 0 or none"),
    (["train", "--dataset", "synthetic", "--beta1", "2", "--out", "{tmp}/x"],
     "parameter beta1=2: expected a number in [0, 1) or none"),
    (["train", "--dataset", "synthetic", "--batch-size", "100000000", "--out", "{tmp}/x"],
     "parameter batch_size=100000000: expected at most 512, the training images of data set 'synthetic'"),
    (["train", "--dataset", "synthetic", "--subset", "64", "--batch-size", "100000000", "--out", "{tmp}/x"],
     "parameter batch_size=100000000: expected at most subset=64"),
    (["train", "--dataset", "synthetic", "--seed", "-1", "--out", "{tmp}/x"], "parameter seed=-1: expected an integer"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    r = _bench(*[a.format(tmp=tmp_path) for a in args])
    assert r.exit_code == 2, r.output
    assert expected in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x" / "checkpoint.pt").exists()


@pytest.mark.parametrize("command,expected", [
    ([*TRAIN, "--epochs", "1", "--out", "{blocked}/run"], "run folder {blocked}/run is not writable (Not a directory)"),
    (["sample", "--ckpt", "{g}", "--out", "{blocked}/grid.png"], "output folder {blocked} is a file, expected a folder"),
    (["run", "svm", "--dataset", "digits", "--ckpt", "{d}", "--results", "{blocked}/results"],
     "results folder {blocked}/results is not writable (Not a directory)"),
    (["report", "--out", "{blocked}/report.md"], "output folder {blocked} is a file, expected a folder"),
])
def test_an_unwritable_output_is_refused_before_any_work(tmp_path, command, expected):
    """An output folder that cannot be written (here: a file is in the way) was a NotADirectoryError or
    PermissionError traceback, for training after the data set was loaded, for sampling after the samples."""
    from fixtures_tasks import tiny_checkpoints

    g, d = tiny_checkpoints(tmp_path / "ckpt")
    (tmp_path / "file").write_text("in the way")
    paths = {"blocked": tmp_path / "file", "g": g, "d": d}
    r = _bench(*[str(a).format(**paths) for a in command])
    assert r.exit_code == 2 and r.output.strip() == f"Error: {expected.format(**paths)}"


def _without_root_powers() -> list[str]:
    """A command prefix under which a read-only folder is read-only: root (as in containers) writes
    anywhere unless it drops the capability to override file permissions."""
    if os.geteuid() != 0:
        return []
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-dac_override,-dac_read_search"]
    if shutil.which("setpriv") is None or subprocess.run([*drop, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and cannot drop the permission override with setpriv")
    return drop


def test_a_read_only_out_is_refused_before_any_work(tmp_path):
    """A read-only --out was a PermissionError traceback."""
    (tmp_path / "ro").mkdir(mode=0o555)
    cmd = [*_without_root_powers(), sys.executable, "-m", "bench.cli", *TRAIN, "--epochs", "1",
           "--out", str(tmp_path / "ro" / "run")]
    proc = subprocess.run(cmd, cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip() == f"Error: run folder {tmp_path / 'ro' / 'run'} is not writable (Permission denied)"


def test_a_checkpoint_from_a_newer_version_is_refused(tmp_path):
    import torch

    out = tmp_path / "run"
    assert _bench(*TRAIN, "--epochs", "1", "--out", out).exit_code == 0
    torch.save({**torch.load(out / "g.pt", weights_only=True), "version": 99}, out / "g.pt")
    r = _bench("sample", "--ckpt", out / "g.pt")
    assert r.exit_code == 2 and "was written by a newer dcgan-bench" in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_d_checkpoint_given_as_g_is_refused(tmp_path):
    out = tmp_path / "run"
    assert _bench(*TRAIN, "--epochs", "1", "--out", out).exit_code == 0
    r = _bench("sample", "--ckpt", out / "d.pt")
    assert r.exit_code == 2 and "holds a discriminator, expected a generator" in r.output


def test_list_shows_every_dataset():
    from dcgan.data import dataset_names

    r = _bench("list")
    assert r.exit_code == 0
    for name in dataset_names():
        assert name in r.output


def test_quickstart_trains_on_digits_and_probes_the_features(tmp_path):
    out, results = tmp_path / "qs", tmp_path / "results"
    r = _bench("quickstart", "--out", out, "--epochs", "1", "--device", "cpu", "--results", results)
    assert r.exit_code == 0, r.output
    assert (out / "d.pt").is_file() and (out / "samples" / "epoch001.png").is_file()
    import pandas as pd

    df = _all_labels(pd.read_csv(results / "svm.csv"))
    acc = df[df.metric == "accuracy"].set_index("model").value
    assert set(acc.index) == {"trained-d", "random-d", "raw-pixels"}
    assert acc["raw-pixels"] > 0.9  # 8x8 digits are easy for a linear SVM on pixels
    assert "| svm | digits | labels_per_class=all | trained-d |" in r.output
    # the smoke evaluation of its own run: the probe with few labels too, and the report card
    few = pd.read_csv(results / "svm.csv").query("metric == 'accuracy' and features == 'all/max4'")
    assert (few.groupby("run_id").size() == 2 * 50).sum() == 1  # 10 labels a class: 50 draws of both Ds
    assert "| svm | digits | labels_per_class=10 | trained-d |" in r.output
    page = results / "report" / "qs" / "index.html"
    assert page.is_file() and f"report card: {page}" in r.output


def _all_labels(df):
    """The rows of the probe with every training label (the smoke evaluation adds other protocols)."""
    import json

    return df[[json.loads(p)["labels_per_class"] is None and json.loads(p)["features"] == "all/max4"
               for p in df.params]]


@pytest.mark.slow
def test_the_full_quickstart_trains_a_discriminator_whose_features_beat_raw_pixels(tmp_path):
    """The README's first command as it is (80 epochs, a few CPU minutes): the probe on the trained D's
    features must beat the linear SVM on raw pixels (opt-in: pytest -m slow)."""
    import pandas as pd

    results = tmp_path / "results"
    r = _bench("quickstart", "--out", tmp_path / "qs", "--device", "cpu", "--results", results)
    assert r.exit_code == 0, r.output
    acc = _all_labels(pd.read_csv(results / "svm.csv")).query("metric == 'accuracy'").set_index("model").value
    assert acc["trained-d"] > acc["raw-pixels"] + 0.02, acc
