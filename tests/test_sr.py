"""The sr task and its metrics: PSNR/SSIM against scikit-image on real photographs, the Y channel, the
bicubic baseline against PIL, the rows of a run against an independent computation (per image and FID),
the SRResNet baseline a GAN run records, DIV2K's paired folders, the picture, and one-line errors."""
import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import linalg
from skimage import data as photos
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.features import to_uint8
from bench.sr_metrics import luma, psnr, shave, ssim
from dcgan.checkpoint import export_models, fingerprint, load_net
from dcgan.data.pairs import bicubic, make_pair, mod_crop, read_test_folder
from dcgan.errors import DataError
from dcgan.models import build_net
from dcgan.models.srgan import SRGANConfig
from fixtures_fid import TinyExtractor, write_tiny_weights


def _photo(name: str, h: int, w: int) -> torch.Tensor:
    """A real photograph from scikit-image, cropped to h x w, uint8 3 x h x w."""
    return torch.from_numpy(getattr(photos, name)()[:h, :w].copy()).permute(2, 0, 1).contiguous()


def _y(images_u8: torch.Tensor, border: int) -> np.ndarray:
    """Y by hand (BT.601 in MATLAB's scaling) for scikit-image, float64, border cropped."""
    x = images_u8.double().permute(0, 2, 3, 1).numpy()
    y = 16 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255
    return y[:, border:y.shape[1] - border, border:y.shape[2] - border]


# ---- the metrics ---------------------------------------------------------------------------------

def test_luma_is_bt601_in_matlab_scaling_and_grey_is_its_own():
    x = torch.tensor([[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]], dtype=torch.uint8)
    y = luma(x.T.reshape(1, 3, 1, 5))[0, 0]
    assert torch.allclose(y, torch.tensor([16, 235, 16 + 65.481, 16 + 128.553, 16 + 24.966], dtype=torch.float64))
    grey = torch.randint(0, 256, (2, 1, 4, 4), dtype=torch.uint8)
    assert torch.equal(luma(grey), grey[:, 0].double())


@pytest.mark.parametrize("name,scale", [("astronaut", 4), ("coffee", 2), ("chelsea", 3)])
def test_psnr_and_ssim_equal_scikit_image_on_real_photographs(name, scale):
    """The bicubic x scale of a photograph, and the photograph with noise: both metrics to 1e-4 of
    scikit-image's on the same Y images with the same border."""
    hr = mod_crop(_photo(name, 300, 400), scale)[None]
    noisy = (hr.int() + torch.randint(-20, 21, hr.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 255)
    for sr in (bicubic(bicubic(hr, (hr.shape[2] // scale, hr.shape[3] // scale)), hr.shape[2:]),
               noisy.to(torch.uint8)):
        a, b = _y(sr, scale)[0], _y(hr, scale)[0]
        assert abs(float(psnr(sr, hr, scale)) - peak_signal_noise_ratio(b, a, data_range=255)) < 1e-4
        expected = structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False)
        assert abs(float(ssim(sr, hr, scale)) - expected) < 1e-4
    assert float(ssim(hr, hr, scale)) == pytest.approx(1.0) and float(psnr(hr, hr, scale)) == float("inf")


def test_the_border_is_cropped_before_measuring():
    hr = _photo("astronaut", 64, 64)[None]
    sr = hr.clone()
    sr[..., :3, :] = 0  # wrong only within the border
    assert float(psnr(sr, hr, 3)) == float("inf") and float(psnr(sr, hr, 2)) < 30
    assert shave(torch.zeros(5, 10, 12), 2).shape == (5, 6, 8)


def test_bicubic_is_keys_a_half_as_pil_computes_it_and_nearest_repeats_pixels():
    """Our bicubic (up and down) against PIL's float resampling, rounded: equal wherever the value is not
    within 1e-3 of a rounding tie (PIL's 8-bit path clips between its two passes, so it is the float one
    that is the kernel's exact answer)."""
    lr = _photo("coffee", 23, 31)[None]
    for size in ((92, 124), (46, 62), (11, 15)):
        ours = bicubic(lr, size)[0]
        for c in range(3):
            pil = np.asarray(Image.fromarray(lr[0, c].numpy().astype(np.float32), mode="F")
                             .resize(size[::-1], Image.BICUBIC), dtype=np.float64)
            exact = np.clip(np.round(pil), 0, 255)
            clear = np.abs(pil - np.floor(pil) - 0.5) > 1e-3
            assert np.array_equal(ours[c].numpy()[clear], exact[clear])
    nearest = F.interpolate(lr, size=(46, 62), mode="nearest")
    assert torch.equal(nearest, lr.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_a_test_pair_is_the_mod_cropped_hr_and_its_bicubic():
    image = _photo("chelsea", 101, 75)
    pair = make_pair("cat", image, 4)
    assert pair.hr.shape == (3, 100, 72) and torch.equal(pair.hr, image[:, :100, :72])
    assert torch.equal(pair.lr, bicubic(pair.hr[None], (25, 18))[0])


# ---- the task ------------------------------------------------------------------------------------

def _sr_export(folder, stage="gan", seed=1, **kw):
    cfg = SRGANConfig(**{"image_size": 32, "nc": 3, "ngf": 8, "ndf": 8, "blocks": 2, "scale": 4, "hr_size": 16,
                         "stage": stage, **kw})
    torch.manual_seed(seed)
    return export_models(folder, cfg, build_net("generator", cfg), build_net("discriminator", cfg))[0]


def _bench(*args):
    from click.testing import CliRunner

    from bench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _photo_folder(folder):
    """Four real photographs at their own, odd sizes (cropped from scikit-image's) as PNG files."""
    folder.mkdir(parents=True)
    for name, h, w in (("astronaut", 90, 70), ("coffee", 61, 83), ("chelsea", 77, 77), ("rocket", 50, 66)):
        Image.fromarray(_photo(name, h, w).permute(1, 2, 0).numpy()).save(folder / f"{name}.png")
    return folder


def _rows(results) -> pd.DataFrame:
    return pd.read_csv(results / "sr.csv")


def test_sr_on_a_folder_of_photographs_measures_every_method_as_an_independent_computation(tmp_path):
    g = _sr_export(tmp_path / "gan", stage="srresnet")
    folder = _photo_folder(tmp_path / "photos")
    r = _bench("run", "sr", "--ckpt", g, "--dataset", "folder", "--data-root", folder, "--device", "cpu",
               "--results", tmp_path / "results")
    assert r.exit_code == 0, r.output
    rows = _rows(tmp_path / "results")
    assert sorted(set(rows.model)) == ["bicubic", "nearest", "srresnet"] and set(rows.metric) == {"psnr", "ssim"}
    assert set(rows.features) == {"Y, border 4"} and set(rows.split) == {"train"}
    G, _, _ = load_net(g, "generator", takes="lr")
    expected = {"nearest": [], "bicubic": [], "srresnet": []}
    for name in ("astronaut", "chelsea", "coffee", "rocket"):  # the folder's sorted order
        image = torch.from_numpy(np.array(Image.open(folder / f"{name}.png"))).permute(2, 0, 1)
        h, w = image.shape[1] // 4 * 4, image.shape[2] // 4 * 4
        hr = image[None, :, :h, :w]
        lr = bicubic(hr, (h // 4, w // 4))
        with torch.no_grad():
            outs = {"nearest": lr.repeat_interleave(4, 2).repeat_interleave(4, 3), "bicubic": bicubic(lr, (h, w)),
                    "srresnet": to_uint8(G(lr.float() / 127.5 - 1))}
        for method, sr in outs.items():
            a, b = _y(sr, 4)[0], _y(hr, 4)[0]
            expected[method].append((peak_signal_noise_ratio(b, a, data_range=255),
                                     structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                                           use_sample_covariance=False)))
    for method, values in expected.items():
        got = rows[rows.model == method].set_index("metric").value
        assert got["psnr"] == pytest.approx(np.mean([v[0] for v in values]), abs=1e-4)
        assert got["ssim"] == pytest.approx(np.mean([v[1] for v in values]), abs=1e-4)
    run_dir = next((tmp_path / "results" / "sr").iterdir())
    per_image = list(csv.DictReader(open(run_dir / "per_image.csv")))
    assert [r["image"] for r in per_image[:4]] == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    assert float(per_image[1]["psnr"]) == pytest.approx(expected["nearest"][1][0], abs=1e-3)
    picture = Image.open(run_dir / "crops.png")
    assert picture.width > 3 * 128 and picture.height > 4 * 128  # 3 columns (bicubic, srresnet, HR), 4 rows
    assert not (tmp_path / "results" / "fid.csv").exists() and "fid" not in set(rows.metric)  # 4 images: no FID


def test_a_gan_run_measures_the_srresnet_it_started_from_and_says_when_it_is_gone(tmp_path):
    """Stage 1 then stage 2 by the CLI on the synthetic shapes: the GAN's g.pt records its stage-1 G (path and hash),
    the sr rows hold an srresnet baseline with that checkpoint; once the file changes, the rows say so."""
    train = ["train", "--model", "srgan", "--dataset", "synthetic", "--subset", "64", "--image-size", "32",
             "--hr-size", "16", "--ngf", "8", "--ndf", "8", "--blocks", "2", "--batch-size", "32", "--device", "cpu",
             "--epochs", "1", "--channels", "3"]
    assert _bench(*train, "--stage", "srresnet", "--out", tmp_path / "one").exit_code == 0
    r = _bench(*train, "--stage", "gan", "--init", tmp_path / "one" / "g.pt", "--out", tmp_path / "two")
    assert r.exit_code == 0, r.output
    stage1 = tmp_path / "one" / "g.pt"
    meta = load_net(tmp_path / "two" / "g.pt", "generator", takes="lr")[2]["meta"]
    assert meta["init"] == str(stage1) and meta["init_sha256"] == fingerprint(stage1)
    run = ["run", "sr", "--ckpt", tmp_path / "two" / "g.pt", "--dataset", "synthetic", "--subset", "20", "--device",
           "cpu", "--results", tmp_path / "results"]
    assert _bench(*run).exit_code == 0
    rows = _rows(tmp_path / "results")
    assert sorted(set(rows.model)) == ["bicubic", "nearest", "srgan", "srresnet"]
    base = rows[rows.model == "srresnet"]
    assert set(base.ckpt) == {str(stage1)} and set(base.ckpt_sha256) == {fingerprint(stage1)}
    for model in ("srresnet", "srgan"):
        note = json.loads(rows[rows.model == model].details.iloc[0])["srresnet_baseline"]
        assert note == f"the run's stage-1 G, {stage1}"

    _sr_export(tmp_path / "one", stage="srresnet", seed=9, scale=4, nc=3)  # the stage-1 file changes
    assert _bench(*run, "--seed", "1").exit_code == 0
    rows = _rows(tmp_path / "results")
    again = rows[rows.seed == 1]
    assert "srresnet" not in set(again.model)
    note = json.loads(again[again.model == "srgan"].details.iloc[0])["srresnet_baseline"]
    assert note == f"none: {stage1} has changed since the run started from it"


def test_bench_evaluate_on_an_srgan_run_measures_sr_and_the_probe_and_skips_the_gan_of_z_tasks(tmp_path):
    """Stage 1 then stage 2 on the synthetic shapes, then bench evaluate on the GAN's run folder: sr runs with
    the run's SRResNet baseline, the probe on its D, and every task needing a G of z is skipped with the line
    that says why; the card shows the sr table and crops.png."""
    train = ["train", "--model", "srgan", "--dataset", "synthetic", "--image-size", "32", "--hr-size", "16",
             "--ngf", "8", "--ndf", "8", "--blocks", "2", "--batch-size", "64", "--device", "cpu", "--epochs", "1"]
    assert _bench(*train, "--stage", "srresnet", "--out", tmp_path / "one").exit_code == 0
    assert _bench(*train, "--stage", "gan", "--init", tmp_path / "one" / "g.pt", "--out", tmp_path / "two").exit_code == 0
    suite = tmp_path / "suite.toml"
    suite.write_text('[[task]]\nname = "sr"\nsubset = 20\n\n[[task]]\nname = "svm"\nsubset = 200\n\n'
                     '[[task]]\nname = "latent-walk"\n\n[[task]]\nname = "fid"\nparams = { samples = 40 }\n')
    r = _bench("evaluate", tmp_path / "two", "--suite", suite, "--device", "cpu", "--results", tmp_path / "results")
    assert r.exit_code == 0, r.output
    for task in ("latent-walk", "fid"):
        assert f"{task}: skipped: checkpoint " in r.output and "whose generator takes a low-resolution image" in r.output
    rows = _rows(tmp_path / "results")
    assert sorted(set(rows.model)) == ["bicubic", "nearest", "srgan", "srresnet"]
    probe = pd.read_csv(tmp_path / "results" / "svm.csv")
    assert {"trained-d"} <= set(probe.model) and probe.value.between(0, 1).all()
    card = (tmp_path / "results" / "report" / "two" / "index.html").read_text()
    assert "SRResNet x4, 2 residual blocks of width 8" in card and "crops.png" in card and "psnr" in card


def test_fid_rows_when_the_set_is_large_enough_equal_an_independent_frechet_distance(tmp_path):
    g = _sr_export(tmp_path / "gan", stage="srresnet")
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    r = _bench("run", "sr", "--ckpt", g, "--dataset", "synthetic", "--subset", "40", "--device", "cpu",
               "--set", "fid_min_images=40", "--set", "extractor=tiny", "--set", f"inception_weights={weights}",
               "--results", tmp_path / "results")
    assert r.exit_code == 0, r.output
    rows = _rows(tmp_path / "results")
    fid = rows[rows.metric == "fid"].set_index("model").value
    assert sorted(fid.index) == ["bicubic", "nearest", "srresnet"]
    net = TinyExtractor("tiny", ["16"], feature_extractor_weights_path=str(weights))
    from dcgan.data import load_dataset

    hr = load_dataset("synthetic", "test", image_size=32, channels=3, subset=40, seed=0).images
    lr = bicubic(hr, 8)
    with torch.no_grad():
        a, b = (net(x)[0].double().numpy() for x in (bicubic(lr, 32), hr))
    mu = a.mean(0) - b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = mu @ mu + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid["bicubic"] == pytest.approx(expected, rel=1e-3)
    assert np.isfinite(fid).all() and fid["nearest"] != fid["bicubic"]


def test_div2k_paired_folders_are_read_as_they_are_and_must_pair_up(tmp_path):
    root = tmp_path / "div2k"
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    hr = _photo("coffee", 61, 80)  # one pixel over 2 x 30
    lr = torch.randint(0, 256, (3, 30, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    Image.fromarray(hr.permute(1, 2, 0).numpy()).save(root / "HR" / "0801.png")
    Image.fromarray(lr.permute(1, 2, 0).numpy()).save(root / "LR_bicubic" / "X2" / "0801x2.png")
    [pair] = read_test_folder(root, 2, 3)
    assert pair.name == "HR/0801.png" and torch.equal(pair.lr, lr) and torch.equal(pair.hr, hr[:, :60])

    Image.fromarray(lr.permute(1, 2, 0).numpy()).save(root / "LR_bicubic" / "X2" / "0802x2.png")
    with pytest.raises(DataError, match=r"do not pair up: LR_bicubic/X2/0802x2.png has no HR image"):
        read_test_folder(root, 2, 3)
    Image.fromarray(hr.permute(1, 2, 0).numpy()).save(root / "HR" / "0803.png")
    with pytest.raises(DataError, match=r"HR/0802.png|HR/0803.png has no LR_bicubic/X2/0803x2.png"):
        read_test_folder(root, 2, 3)
    with pytest.raises(DataError, match=r"holds HR/ but no LR_bicubic/X4/"):
        read_test_folder(root, 4, 3)
    (root / "LR_bicubic" / "X2" / "0802x2.png").unlink()
    Image.fromarray(lr[:, :20].permute(1, 2, 0).numpy()).save(root / "LR_bicubic" / "X2" / "0803x2.png")
    with pytest.raises(DataError, match=r"0803.png is 61x80: expected 2 x its LR's 20x40 = 40x80"):
        read_test_folder(root, 2, 3)


@pytest.mark.parametrize("args,expected", [
    (["--ckpt", "{dcgan}"], "is of model family 'dcgan', whose generator takes noise z (cdcgan, dcgan): this needs "
                            "a model whose generator takes a low-resolution image (srgan)"),
    (["--ckpt", "{sr}", "--dataset", "folder", "--data-root", "{tiny}"], "image tiny.png is 16x16 after cropping to a "
                                                                          "multiple of 4: PSNR/SSIM with a border of 4"),
    (["--ckpt", "{sr}", "--dataset", "folder", "--data-root", "{paired}"], "do not pair up"),
    (["--ckpt", "{sr}", "--set", "srresnet={sr}"], "is itself a stage-1 SRResNet"),
    (["--ckpt", "{gan}", "--set", "srresnet={x2}"], "expected a stage-1 SRResNet G of scale x4"),
    (["--ckpt", "{sr}", "--set", "border=-1"], "parameter border=-1"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, expected):
    from dcgan.config import DCGANConfig

    dcgan = DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8)
    paths = {"dcgan": export_models(tmp_path / "dcgan", dcgan, build_net("generator", dcgan),
                                    build_net("discriminator", dcgan))[0],
             "sr": _sr_export(tmp_path / "sr", stage="srresnet"), "gan": _sr_export(tmp_path / "gan"),
             "x2": _sr_export(tmp_path / "x2", stage="srresnet", scale=2), "tiny": tmp_path / "tiny",
             "paired": tmp_path / "paired"}
    paths["tiny"].mkdir()
    Image.fromarray(_photo("astronaut", 19, 16).permute(1, 2, 0).numpy()).save(paths["tiny"] / "tiny.png")
    (paths["paired"] / "HR").mkdir(parents=True)
    (paths["paired"] / "LR_bicubic" / "X4").mkdir(parents=True)
    Image.fromarray(_photo("astronaut", 64, 64).permute(1, 2, 0).numpy()).save(paths["paired"] / "HR" / "a.png")
    Image.fromarray(_photo("astronaut", 16, 16).permute(1, 2, 0).numpy()).save(paths["paired"] / "LR_bicubic" / "X4" / "b.png")
    r = _bench("run", "sr", *[a.format(**paths) for a in args], "--device", "cpu", "--results", tmp_path / "results")
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "results" / "sr.csv").exists()
