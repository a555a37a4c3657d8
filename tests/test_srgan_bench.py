"""SRGAN in the benchmark: the linear probe (and every task of a D) reads an SRGAN's D as a DCGAN's, its
features equal to an independent max-pooling of the D's activations and its random-D baseline a fresh D
of that architecture; ``bench sample`` super-resolves image files with an SRGAN's G (sizes, pixels, names),
and refuses in one line what does not fit the generator it is given."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.features import FeatureCache, LayerSpec, to_uint8
from bench.run import run
from bench.tasks.base import RunContext
from dcgan.checkpoint import load_net
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.models.srgan import SRGANConfig, super_resolve
from dcgan.models.srgan_nets import SRDiscriminator
from fixtures_tasks import tiny_checkpoints

SMOKE = {"c_grid": "1e-3,1e-2", "val_size": "60", "selection_draws": "2"}


def _cfg(**kw) -> SRGANConfig:
    return SRGANConfig(**{"image_size": 32, "nc": 1, "ngf": 8, "ndf": 8, "blocks": 2, "scale": 4, "hr_size": 16,
                          "stage": "gan", **kw})


@pytest.fixture
def sr(tmp_path):
    """A tiny SRGAN's G and D exports (grey, x4), random weights through the real export."""
    return tiny_checkpoints(tmp_path / "sr", config=_cfg(), seed=3)


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _by_hand(D, images_u8: torch.Tensor) -> np.ndarray:
    """The paper's features computed independently: every activation of D on the images in [-1, 1],
    max-pooled to 4x4, flattened and concatenated in layer order."""
    with torch.no_grad():
        acts = D.eval().forward_intermediates(images_u8.float() / 127.5 - 1)
    return torch.cat([F.adaptive_max_pool2d(a, 4).flatten(1) for a in acts.values()], 1).numpy()


# ---- the probe ----------------------------------------------------------------------------------------

def test_the_probe_features_of_an_srgan_d_and_its_random_baseline_equal_an_independent_extraction(sr, tmp_path):
    _, d = sr
    ctx = RunContext(dataset="digits", ckpt=d, subset=60, seed=4, cache=FeatureCache(tmp_path / "cache"))
    images = load_dataset("digits", "train", image_size=32, channels=1, subset=60, seed=4).images
    trained = load_net(d, "discriminator")[0]
    torch.manual_seed(4)  # the run's seed: the random-init D of the baseline
    fresh = SRDiscriminator(_cfg())
    for model, D in (("trained-d", trained), ("random-d", fresh)):
        X = ctx.features(model, "train", LayerSpec())
        assert X.shape == (60, 16 * (8 + 8 + 16 + 16 + 32 + 32 + 64 + 64))  # 8 layers, each pooled to 4x4
        np.testing.assert_allclose(X, _by_hand(D, images), rtol=1e-4, atol=1e-5)
    assert not np.allclose(*(ctx.features(model, "train", LayerSpec()) for model in ("trained-d", "random-d")))
    # at 32 px conv8's map is 2x2: pooled to 4x4, each of its cells fills a 2x2 block of the grid
    conv8 = torch.from_numpy(np.array(X[:, -64 * 16:])).view(60, 64, 4, 4)
    assert torch.equal(conv8, conv8[:, :, ::2, ::2].repeat_interleave(2, 2).repeat_interleave(2, 3))
    # bn-train re-estimates the statistics of a copy of the SRGAN D, never of the checkpoint's own
    before = {k: v.clone() for k, v in ctx.net("discriminator")[0].state_dict().items()}
    copy = ctx.discriminator("trained-d", LayerSpec(bn="train"))
    assert isinstance(copy, SRDiscriminator) and copy is not ctx.net("discriminator")[0]
    assert not torch.equal(copy.state_dict()["main.3.running_var"], before["main.3.running_var"])  # conv2's norm
    assert all(torch.equal(v, before[k]) for k, v in ctx.net("discriminator")[0].state_dict().items())


def test_the_feature_size_of_the_paper_wide_srgan_d_is_that_of_the_paper_probe():
    """ndf 64, the paper's width: 64+64+128+128+256+256+512+512 channels, 16 cells each, 30720 features,
    about the 28672 of the paper's own ImageNet-32 D (section 5.1)."""
    assert LayerSpec().dims(SRDiscriminator(SRGANConfig(image_size=32, hr_size=32, nc=3))) == 30720


def test_bench_run_svm_on_an_srgan_d_writes_its_rows_beside_both_baselines(sr, tmp_path):
    _, d = sr
    args = ["run", "svm", "--ckpt", d, "--dataset", "digits", "--subset", "300", "--device", "cpu",
            "--results", tmp_path / "results", *[a for k, v in SMOKE.items() for a in ("--set", f"{k}={v}")]]
    r = _bench(*args)
    assert r.exit_code == 0, r.output
    rows = pd.read_csv(tmp_path / "results" / "svm.csv", keep_default_na=False)
    accuracy = rows[rows.metric == "accuracy"].set_index("model")
    assert sorted(accuracy.index) == ["random-d", "raw-pixels", "trained-d"]
    assert accuracy.loc["trained-d", "features"] == "all/max4" and accuracy.loc["raw-pixels", "features"] == "pixels"
    assert (accuracy.value > 0.5).all()  # ten classes: chance is 0.1
    assert _bench(*args).exit_code == 0 and len(pd.read_csv(tmp_path / "results" / "svm.csv")) == len(rows)


def test_memorisation_searches_an_srgan_ds_feature_space_for_a_gan_of_zs_samples(sr, tmp_path):
    """An SRGAN's G draws no samples (refused: tests/test_srgan.py); its D serves a DCGAN's samples."""
    g, _ = tiny_checkpoints(tmp_path / "dcgan", config=DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8))
    result = run("memorisation", ckpt=g, dataset="digits", subset=100, device="cpu", results_dir=tmp_path / "results",
                 overrides={"samples": "20", "neighbours": "2", "show": "2", "discriminator": str(sr[1])})
    d_rows = [r for r in result.rows if r["features"] == "all/max4"]
    assert d_rows and all(np.isfinite(float(r["value"])) for r in d_rows if "/" not in r["model"])


def test_evaluate_of_an_srgan_d_alone_probes_it_and_describes_the_model_by_its_family(sr, tmp_path):
    suite = tmp_path / "suite.toml"
    suite.write_text('[[task]]\nname = "svm"\nsubset = 300\n'
                     'params = { c_grid = [1e-3, 1e-2], val_size = 60, selection_draws = 2 }\n')
    r = _bench("evaluate", "--d", sr[1], "--dataset", "digits", "--suite", suite, "--results", tmp_path / "results",
               "--device", "cpu")
    assert r.exit_code == 0, r.output
    card = next((tmp_path / "results" / "report").glob("*/report.md")).read_text()
    assert "| architecture | SRResNet x4, 2 residual blocks of width 8; VGG-style D of width 8; 16 px HR crops of 32 px " \
           "images, 1 channel(s); stage gan, content loss mse |" in card
    assert "| model family | srgan: scale 4, hr_size 16, blocks 2, ngf 8, ndf 8, stage gan, content_loss mse |" in card
    assert set(pd.read_csv(tmp_path / "results" / "svm.csv").model) == {"trained-d", "random-d", "raw-pixels"}


# ---- bench sample on an SRGAN G ---------------------------------------------------------------------------

def _write(path, size, mode="L", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _expected(g, path, mode="L") -> torch.Tensor:
    """super_resolve's output of the image at ``path`` (read as ``mode``), rounded to 8 bits."""
    G = load_net(g, "generator", takes="lr")[0]
    with Image.open(path) as image:
        lr = torch.from_numpy(np.array(image.convert(mode))).reshape(1, *image.size[::-1], -1).permute(0, 3, 1, 2)
    return to_uint8(super_resolve(G, lr, batch_size=1, device="cpu"))[0]


def _read(path) -> torch.Tensor:
    with Image.open(path) as image:
        array = np.array(image)
    return torch.from_numpy(array).reshape(*array.shape[:2], -1).permute(2, 0, 1)


def test_sample_super_resolves_a_folder_into_scale_times_its_sizes_under_the_same_names(sr, tmp_path):
    g, _ = sr
    photos = tmp_path / "photos"
    inputs = {"a.png": _write(photos / "a.png", (8, 6), seed=1), "b.png": _write(photos / "b.png", (8, 6), seed=2),
              "c.jpg": _write(photos / "c.jpg", (5, 7), "RGB", seed=3),  # another size, RGB: read as grey
              "sub/d.png": _write(photos / "sub" / "d.png", (3, 3), seed=4)}
    (photos / "notes.txt").write_text("not an image")
    r = _bench("sample", "--ckpt", g, "--input", photos, "--out", tmp_path / "x4", "--device", "cpu")
    assert r.exit_code == 0 and "wrote 4 image(s) upscaled x4 into" in r.output, r.output
    written = sorted(p.relative_to(tmp_path / "x4").as_posix() for p in (tmp_path / "x4").rglob("*.*"))
    assert written == ["a.png", "b.png", "c.png", "sub/d.png"]
    for name, path in inputs.items():
        out = _read((tmp_path / "x4" / name).with_suffix(".png"))
        with Image.open(path) as image:
            assert out.shape == (1, 4 * image.height, 4 * image.width)
        assert torch.equal(out, _expected(g, path)), name  # a batch of a and b gives each its own pixels


def test_sample_super_resolves_one_rgb_file_at_bf16(tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "rgb", config=_cfg(nc=3, scale=2), seed=5)
    image = _write(tmp_path / "in" / "photo.png", (6, 4), "RGB")
    r = _bench("sample", "--ckpt", g, "--input", image, "--out", tmp_path / "out", "--precision", "bf16")
    assert r.exit_code == 0, r.output
    out = _read(tmp_path / "out" / "photo.png")
    assert out.shape == (3, 8, 12)
    assert (out.int() - _expected(g, image, "RGB").int()).abs().float().mean() < 8  # bf16: close, not equal


@pytest.mark.parametrize("args,expected", [
    (["--ckpt", "{sr_g}", "--input", "{tmp}/missing", "--out", "{tmp}/o"],
     "--input {tmp}/missing does not exist: expected an image file or a folder of images"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/empty", "--out", "{tmp}/o"], "no images found under {tmp}/empty"),
    (["--ckpt", "{sr_g}", "--out", "{tmp}/o"],
     "generator {sr_g} (model family 'srgan') super-resolves images: pass --input, an image file or a folder"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/photos", "--samples", "8", "--seed", "1"],
     "--samples, --seed: generator {sr_g} (model family 'srgan') super-resolves images; those options are for a "
     "generator that draws samples from noise z"),
    (["--ckpt", "{dcgan_g}", "--input", "{tmp}/photos"],
     "--input: generator {dcgan_g} (model family 'dcgan') draws samples from noise z; that option is for a "
     "generator that super-resolves images"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/photos", "--out", "{tmp}/photos"],
     "--out {tmp}/photos: the output of {tmp}/photos/a.png would overwrite it"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/twins", "--out", "{tmp}/o"],
     "--input {tmp}/twins: {tmp}/twins/a.jpg and {tmp}/twins/a.png would both be written to {tmp}/o/a.png"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/broken.png", "--out", "{tmp}/o"], "{tmp}/broken.png: cannot decode image"),
    (["--ckpt", "{sr_g}", "--input", "{tmp}/photos", "--out", "{tmp}/photos/a.png"],
     "output folder {tmp}/photos/a.png is a file, expected a folder"),
])
def test_bad_sample_input_is_one_line_exit_2(sr, tmp_path, args, expected):
    paths = {"tmp": tmp_path, "sr_g": sr[0],
             "dcgan_g": tiny_checkpoints(tmp_path / "dcgan", config=DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8))[0]}
    _write(tmp_path / "photos" / "a.png", (4, 4))
    _write(tmp_path / "twins" / "a.png", (4, 4))
    _write(tmp_path / "twins" / "a.jpg", (4, 4))
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    r = _bench("sample", *[a.format(**paths) for a in args])
    assert r.exit_code == 2, r.output
    assert expected.format(**paths) in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not list(tmp_path.glob("o/*")) and not list(tmp_path.glob("*.z.pt"))
