"""SRGAN: the nets' shapes and sub-pixel shuffle against known answers, D's named features at two patch
sizes, the LR/HR pairs against an independent interpolation, the two training stages (pixel MSE falls;
the gan stage starts from a stage-1 G and refuses another), exact resume, bf16 channels-last, the sample
grid, what checkpoints record, and one-line errors for bad settings and for SRGAN generators where a
G of z is needed (the probe on its D and `bench sample` super-resolving: tests/test_srgan_bench.py)."""
import csv

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.checkpoint import export_models, load_net, read_checkpoint
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.data.pairs import bicubic, centre_corners, crops, lr_hr_pairs, random_corners
from dcgan.errors import CheckpointError, ConfigError, NotApplicable
from dcgan.models import build_net, config_from_dict, family_of
from dcgan.models.family import to_unit
from dcgan.models.srgan import SRGAN, SRGANConfig
from dcgan.models.srgan_nets import SRDiscriminator, SRResNet, SubPixel
from dcgan.train import Trainer, TrainConfig, train


def _cfg(**kw) -> SRGANConfig:
    return SRGANConfig(**{"image_size": 32, "nc": 1, "ngf": 8, "ndf": 8, "blocks": 2, "scale": 4, "hr_size": 16, **kw})


def _train_cfg(model=None, **kw) -> TrainConfig:
    return TrainConfig(**{"model": model or _cfg(), "dataset": "synthetic", "subset": 64, "epochs": 2, "batch_size": 32,
                          "seed": 5, "checkpoint_every": 2, **kw})


def _state(net: nn.Module) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- the nets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_g_upsamples_by_its_scale_with_one_sub_pixel_block_per_doubling(scale):
    G = SRResNet(_cfg(scale=scale, nc=3, hr_size=32))
    with torch.no_grad():
        sr = G(torch.rand(2, 3, 5, 7) * 2 - 1)  # fully convolutional: any LR size
    assert sr.shape == (2, 3, 5 * scale, 7 * scale) and sr.abs().max() <= 1
    assert len([m for m in G.modules() if isinstance(m, SubPixel)]) == {2: 1, 4: 2, 8: 3}[scale]
    assert len(G.blocks) == 2 and G.head[0].kernel_size == G.tail.kernel_size == (9, 9)


def test_a_sub_pixel_block_is_a_conv_then_pixel_shuffle():
    """A conv whose four output channels are 1, 2, 3, 4 times the input pixel (centre taps alone): the
    shuffle puts channel 2i + j at sub-pixel (i, j) of each 2x2 output cell, as Shi et al. define it."""
    block = SubPixel(1)
    with torch.no_grad():
        block[0].weight.zero_()
        block[0].bias.zero_()
        block[0].weight[:, 0, 1, 1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    x = torch.tensor([[[[1.0, 10.0], [100.0, 1000.0]]]])  # positive: the PReLU passes it
    expected = torch.tensor([[1, 2, 10, 20],
                             [3, 4, 30, 40],
                             [100, 200, 1000, 2000],
                             [300, 400, 3000, 4000]], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(block(x)[0, 0], expected)
    assert isinstance(block[1], nn.PixelShuffle) and block[0].out_channels == 4


def test_g_has_the_long_skip_from_its_first_convolution():
    """With the residual trunk's last batch norm zeroed, the trunk adds nothing: G is then head -> long skip
    -> upsampling -> tail, whatever its blocks compute."""
    G = SRResNet(_cfg()).eval()
    with torch.no_grad():
        G.trunk[1].weight.zero_()
        G.trunk[1].bias.zero_()
        lr = torch.rand(2, 1, 4, 4) * 2 - 1
        assert torch.allclose(G(lr), torch.tanh(G.tail(G.upsample(G.head(lr)))))


@pytest.mark.parametrize("side", [32, 64])
def test_d_judges_32_and_64_px_patches_and_names_its_eight_convolutions(side):
    D = SRDiscriminator(_cfg(nc=3))
    x = torch.randn(3, 3, side, side)
    with torch.no_grad():
        logit = D(x)
        feats = D.forward_intermediates(x)
        assert torch.equal(D.forward_intermediates(x, ["conv3"])["conv3"], feats["conv3"])
        assert torch.allclose(D.head(feats["conv8"]).flatten(), logit)
    assert logit.shape == (3,)
    assert D.layer_names == tuple(f"conv{i}" for i in range(1, 9))
    sides = [side, side // 2, side // 2, side // 4, side // 4, side // 8, side // 8, side // 16]
    widths = [8, 8, 16, 16, 32, 32, 64, 64]
    assert [tuple(f.shape[1:]) for f in feats.values()] == [(w, s, s) for w, s in zip(widths, sides)]
    assert D.feature_channels == dict(zip(D.layer_names, widths))
    with pytest.raises(ConfigError, match="unknown discriminator layer"):
        D.forward_intermediates(x, ["conv9"])
    with pytest.raises(ConfigError, match="unconditional"):
        D(x, labels=torch.zeros(3, dtype=torch.long))


# ---- LR/HR pairs ---------------------------------------------------------------------------------

def test_the_lr_of_a_constant_image_is_that_constant():
    for value in (0, 37, 255):
        hr = torch.full((2, 3, 32, 32), value, dtype=torch.uint8)
        for scale in (2, 4, 8):
            assert torch.equal(bicubic(hr, 32 // scale), torch.full((2, 3, 32 // scale, 32 // scale), value,
                                                                    dtype=torch.uint8))


def test_pairs_are_crops_and_their_antialiased_bicubic_computed_independently():
    images = load_dataset("synthetic", image_size=32, subset=6).images
    corners = random_corners(6, 32, 16, torch.Generator().manual_seed(0))
    lr, hr = lr_hr_pairs(images, 16, 4, corners)
    by_hand = torch.stack([img[:, y:y + 16, x:x + 16] for img, (y, x) in zip(images, corners.tolist())])
    assert torch.equal(hr, by_hand) and hr.dtype == torch.uint8
    ref = F.interpolate(by_hand.double(), scale_factor=0.25, mode="bicubic", antialias=True)
    assert lr.shape == (6, 3, 4, 4) and lr.dtype == torch.uint8
    assert (lr.double() - ref.clamp(0, 255)).abs().max() <= 0.5 + 1e-3  # rounded to the nearest uint8
    assert not torch.equal(lr, F.interpolate(by_hand.float(), scale_factor=0.25, mode="bicubic").round()
                           .clamp(0, 255).to(torch.uint8))  # not the aliasing, un-antialiased kernel
    assert torch.equal(crops(images, 16, centre_corners(6, 32, 16)), images[:, :, 8:24, 8:24])


def test_the_batch_crops_from_the_run_noise_so_a_seed_gives_the_same_crops(tmp_path):
    t = Trainer(_train_cfg(model=_cfg(nc=3), dataset="synthetic"), tmp_path / "run", "cpu")
    images = t.data.images[:8]
    t.noise.manual_seed(3)
    first = SRGAN.batch(t, images, None)
    t.noise.manual_seed(3)
    again = SRGAN.batch(t, images, None)
    other = SRGAN.batch(t, images, None)
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and not torch.equal(first[1], other[1])
    assert first[0].shape == (8, 3, 4, 4) and first[1].shape == (8, 3, 16, 16)


# ---- training -------------------------------------------------------------------------------------

def _log(trainer) -> list[dict[str, float]]:
    with open(trainer.log_path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_stage_srresnet_lowers_the_pixel_mse_on_real_digits(tmp_path):
    """40 steps of G alone, x2, on the digits at their own 8 px (lr 1e-3 to see it in so few): the batch MSE
    of the last steps is well under that of the first, and G beats its own start on held images in eval mode."""
    cfg = _train_cfg(model=_cfg(image_size=8, hr_size=8, scale=2), dataset="digits", subset=640, epochs=1,
                     batch_size=16, lr=1e-3, checkpoint_every=1000)
    start = Trainer(cfg, tmp_path / "start", "cpu")
    t = train(cfg, tmp_path / "run", device="cpu")
    log = _log(t)
    assert len(log) == 40 and set(log[0]) == {"step", "epoch", "mse", "psnr", "seconds"}
    first, last = (sum(r["mse"] for r in rows) / len(rows) for rows in (log[:5], log[-5:]))
    assert last < 0.5 * first
    held = load_dataset("digits", "test", image_size=8, subset=64).images
    lr, hr = lr_hr_pairs(held, 8, 2, centre_corners(64, 8, 8))
    with torch.no_grad():
        errors = [F.mse_loss(G.eval()(to_unit(lr, False)), to_unit(hr, False)).item() for G in (start.G, t.G)]
    assert errors[1] < 0.5 * errors[0]
    assert not (tmp_path / "run" / "d.pt").exists()  # no D trained, none exported


def _stage1(tmp_path, **kw):
    """A stage-1 G export (random weights, a real export) of ``_cfg(**kw)``."""
    cfg = _cfg(**kw)
    torch.manual_seed(1)
    return export_models(tmp_path / "stage1", cfg, build_net("generator", cfg), build_net("discriminator", cfg))[0]


def test_stage_gan_starts_from_a_stage1_g_and_refuses_another(tmp_path):
    g_path = _stage1(tmp_path, hr_size=32)  # hr_size may differ between the stages
    t = Trainer(_train_cfg(model=_cfg(stage="gan"), init=str(g_path)), tmp_path / "gan", "cpu")
    assert _same(_state(t.G), _state(load_net(g_path, "generator", takes="lr")[0]))
    fresh = Trainer(_train_cfg(model=_cfg(stage="gan")), tmp_path / "fresh", "cpu")
    assert not _same(_state(t.G), _state(fresh.G))

    dcgan_g, _ = export_models(tmp_path / "dcgan", DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8),
                               build_net("generator", DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8)),
                               build_net("discriminator", DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8)))
    for path, error, match in [
        (_stage1(tmp_path / "x2", scale=2), ConfigError, "its generator upscales x2, this run's upscales x4"),
        (_stage1(tmp_path / "rgb", nc=3), ConfigError, "its generator has 3 channel\\(s\\), this run's has 1"),
        (_stage1(tmp_path / "deep", blocks=3), ConfigError, "has 3 residual blocks, this run's has 2"),
        (_stage1(tmp_path / "wide", ngf=16), ConfigError, "has width 16, this run's has width 8"),
        (dcgan_g, NotApplicable, "is of model family 'dcgan', whose generator takes noise z"),
        (tmp_path / "missing.pt", CheckpointError, "does not exist"),
    ]:
        with pytest.raises(error, match=match) as e:
            Trainer(_train_cfg(model=_cfg(stage="gan"), init=str(path)), tmp_path / "bad", "cpu")
        assert "\n" not in str(e.value)


def test_stage_srresnet_resumes_bit_exact(tmp_path):
    """The gan stage's resume is tests/test_train.py's (with DCGAN's); here G alone, 2 epochs straight
    against 1 epoch then a resume."""
    straight = train(_train_cfg(), tmp_path / "straight", device="cpu")
    train(_train_cfg(epochs=1), tmp_path / "split", device="cpu")
    resumed = train(_train_cfg(), tmp_path / "split", device="cpu", resume=True)
    assert straight.step == resumed.step == 4 and _same(_state(straight.G), _state(resumed.G))
    assert _log(straight) == [r | {"seconds": s["seconds"]} for r, s in zip(_log(resumed), _log(straight))]


def test_the_gan_stage_drops_the_rate_tenfold_for_its_second_half_and_srresnet_keeps_it(tmp_path, monkeypatch):
    """Paper, section 3.2: 1e-4, then 1e-5 for the second half of the GAN's updates. The rate each step
    ran at, read from both optimisers inside the step, over 2 epochs of 2 steps; a resumed run keeps it."""
    seen = []
    step = SRGAN.step.__func__

    def spy(cls, t, *batch):
        seen.append((t.optG.param_groups[0]["lr"], t.optD.param_groups[0]["lr"]))
        return step(cls, t, *batch)

    monkeypatch.setattr(SRGAN, "step", classmethod(spy))
    train(_train_cfg(model=_cfg(stage="gan"), lr=3e-4), tmp_path / "gan", device="cpu")
    assert seen == [(3e-4, 3e-4)] * 2 + [(pytest.approx(3e-5), pytest.approx(3e-5))] * 2
    seen.clear()
    train(_train_cfg(model=_cfg(stage="gan"), lr=3e-4), tmp_path / "split", device="cpu", max_steps=1)
    train(_train_cfg(model=_cfg(stage="gan"), lr=3e-4), tmp_path / "split", device="cpu", resume=True)
    assert seen == [(3e-4, 3e-4)] * 2 + [(pytest.approx(3e-5), pytest.approx(3e-5))] * 2
    with pytest.raises(ConfigError, match="with epochs 2 -> 3: this model's learning rate follows the run's length"):
        train(_train_cfg(model=_cfg(stage="gan"), lr=3e-4, epochs=3), tmp_path / "split", device="cpu", resume=True)
    seen.clear()
    train(_train_cfg(lr=3e-4), tmp_path / "srresnet", device="cpu")
    assert seen == [(3e-4, 3e-4)] * 4


def test_bf16_channels_last_gan_stage_tracks_fp32(tmp_path):
    model = _cfg(stage="gan", nc=3)
    runs = [train(_train_cfg(model=model, dataset="synthetic", epochs=1, precision=p), tmp_path / p, device="cpu")
            for p in ("bf16", "fp32")]
    assert runs[0].cfg.channels_last
    assert all(torch.isfinite(p).all() for t in runs for net in (t.G, t.D) for p in net.parameters())
    logs = [_log(t) for t in runs]
    assert len(logs[0]) == 2
    assert max(abs(a[k] - b[k]) for a, b in zip(*logs) for k in ("loss_d", "mse")) < 0.05


def test_the_sample_grid_shows_bicubic_sr_and_hr_for_fixed_images(tmp_path):
    t = Trainer(_train_cfg(model=_cfg(nc=3), dataset="synthetic"), tmp_path / "run", "cpu")
    tiles, columns = SRGAN.epoch_grid(t)
    assert columns == 3 and tiles.shape == (24, 3, 16, 16)
    hr = t.data.images[:8, :, 8:24, 8:24]
    assert torch.equal(tiles[2::3], to_unit(hr, False))
    assert torch.equal(tiles[0::3], to_unit(bicubic(bicubic(hr, 4), 16), False))
    with torch.no_grad():
        sr = t.G.eval()(to_unit(bicubic(hr, 4), False))
    assert torch.allclose(tiles[1::3], sr)
    again, _ = SRGAN.epoch_grid(t)
    assert torch.equal(tiles, again)


# ---- configs, checkpoints, errors ------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,expected", [
    ({"scale": 3}, "parameter scale=3: expected one of 2, 4, 8"),
    ({"hr_size": 18}, "parameter hr_size=18: expected a multiple of scale=4"),
    ({"hr_size": 64}, "parameter hr_size=64: expected at most image_size=32, the side the training images are"),
    ({"blocks": 0}, "parameter blocks=0: expected an integer in [1, 256]"),
    ({"stage": "vgg"}, "parameter stage='vgg': expected one of srresnet, gan"),
    ({"content_loss": "vgg"}, "parameter content_loss='vgg': expected one of mse, vgg19, inception"),
])
def test_bad_settings_are_one_line_errors(kwargs, expected):
    with pytest.raises(ConfigError) as e:
        _cfg(**kwargs)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_hr_images_may_not_be_upscaled_ones(tmp_path):
    """The digits are stored at 8 px: loading them at 32 would make HR images of upscaled ones."""
    with pytest.raises(ConfigError, match=r"--image-size 32: data set 'digits' has images of 8 px \(short side\)") as e:
        Trainer(_train_cfg(dataset="digits"), tmp_path / "run", "cpu")
    assert "\n" not in str(e.value)
    from PIL import Image

    (tmp_path / "photos").mkdir()  # a file-backed set: the image headers tell, one 24 px image among 40 px ones
    for i in range(10):
        Image.new("RGB", (40, 24 if i == 9 else 40), (i, 2 * i, 3 * i)).save(tmp_path / "photos" / f"{i}.png")
    with pytest.raises(ConfigError, match=r"data set 'folder' has images of 24 px \(short side\)"):
        Trainer(_train_cfg(dataset="folder", data_root=str(tmp_path / "photos"), subset=None, batch_size=8),
                tmp_path / "run", "cpu")
    Trainer(_train_cfg(model=_cfg(image_size=24), dataset="folder", data_root=str(tmp_path / "photos"), subset=None,
                       batch_size=8), tmp_path / "ok", "cpu")


def _bench(*args):
    from click.testing import CliRunner

    from bench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


TRAIN = ["train", "--model", "srgan", "--dataset", "synthetic", "--subset", "64", "--image-size", "32", "--hr-size", "16",
         "--ngf", "8", "--ndf", "8", "--blocks", "2", "--batch-size", "32", "--device", "cpu", "--epochs", "1"]


def test_bench_train_runs_both_stages_and_checkpoints_record_family_scale_blocks_and_stage(tmp_path):
    r = _bench(*TRAIN, "--stage", "srresnet", "--scale", "2", "--blocks", "3", "--out", tmp_path / "one")
    assert r.exit_code == 0 and "checkpoint " in r.output and "d.pt" not in r.output, r.output
    r = _bench(*TRAIN, "--stage", "gan", "--scale", "2", "--blocks", "3", "--init", tmp_path / "one" / "g.pt",
               "--out", tmp_path / "two")
    assert r.exit_code == 0 and "d.pt" in r.output, r.output
    blob = read_checkpoint(tmp_path / "two" / "checkpoint.pt")
    train_config = TrainConfig.from_dict(blob["train_config"])
    assert train_config.init == str(tmp_path / "one" / "g.pt") and (train_config.lr, train_config.beta1) == (1e-4, 0.9)
    for name in ("g.pt", "d.pt", "checkpoint.pt"):
        config = read_checkpoint(tmp_path / "two" / name)["config"]
        assert {k: config[k] for k in ("family", "scale", "blocks", "stage", "hr_size", "content_loss")} == \
            {"family": "srgan", "scale": 2, "blocks": 3, "stage": "gan", "hr_size": 16, "content_loss": "mse"}
        assert config_from_dict(config) == train_config.model and "nz" not in config
    assert read_checkpoint(tmp_path / "one" / "g.pt")["config"]["stage"] == "srresnet"
    G, cfg, _ = load_net(tmp_path / "two" / "g.pt", "generator", takes="lr")
    D, _, _ = load_net(tmp_path / "two" / "d.pt", "discriminator", takes="lr")
    assert isinstance(G, SRResNet) and isinstance(D, SRDiscriminator) and family_of(cfg) is SRGAN


@pytest.mark.parametrize("args,expected", [
    ([*TRAIN, "--scale", "3"], "parameter scale=3: expected one of 2, 4, 8"),
    ([*TRAIN, "--hr-size", "18"], "parameter hr_size=18: expected a multiple of scale=4"),
    ([*TRAIN, "--hr-size", "64"], "parameter hr_size=64: expected at most image_size=32"),
    ([*TRAIN, "--nz", "10"], "model family 'srgan' has no setting nz"),
    (["train", "--scale", "4", "--dataset", "digits"], "model family 'dcgan' has no setting scale"),
    ([*TRAIN, "--stage", "gan", "--init", "{sr_x2}"], "its generator upscales x2, this run's upscales x4"),
    (["train", "--dataset", "digits", "--init", "{sr_g}"], "whose generator takes a low-resolution image (srgan)"),
    (["sample", "--ckpt", "{sr_g}", "--samples", "8"], "(model family 'srgan') super-resolves images; that option is "
                                                       "for a generator that draws samples from noise z"),
    (["run", "fid", "--ckpt", "{sr_g}", "--dataset", "digits"], "is of model family 'srgan'"),
    (["run", "latent-walk", "--ckpt", "{sr_g}", "--dataset", "digits"],
     "this needs a model whose generator takes noise z"),
    (["run", "memorisation", "--ckpt", "{sr_g}", "--dataset", "digits"], "is of model family 'srgan'"),
])
def test_bad_input_and_srgan_checkpoints_where_a_gan_of_z_is_needed_are_one_line_exit_2(tmp_path, args, expected):
    """Only the SRGAN's G is refused, where a G of z is needed: its D serves the probe (`bench run svm` on this D
    succeeds in tests/test_srgan_bench.py)."""
    paths = {"sr_x2": _stage1(tmp_path / "x2", scale=2, hr_size=16)}
    paths["sr_g"], paths["sr_d"] = export_models(tmp_path / "sr", _cfg(), build_net("generator", _cfg()),
                                                 build_net("discriminator", _cfg()))
    r = _bench(*[a.format(**paths) for a in args], *(["--out", tmp_path / "x"] if args[0] == "train" else []))
    assert r.exit_code == 2, r.output
    assert expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x" / "checkpoint.pt").exists() and not (tmp_path / "results").exists()
