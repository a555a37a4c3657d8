"""Checkpoints: exports round-trip, wrong kinds and broken files are one-line errors, and
pytorch/examples' own state dicts load."""
import pytest
import torch
from torch import nn

from dcgan.checkpoint import export_models, fingerprint, load_net, save_checkpoint
from dcgan.config import DCGANConfig
from dcgan.errors import CheckpointError, NotApplicable
from dcgan.nets import Discriminator, Generator


class _Examples(nn.Module):
    """pytorch/examples keeps each net's layers in ``self.main``."""

    def __init__(self, *layers):
        super().__init__()
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x)


def _examples_netD(nc=3, ndf=64):
    """pytorch/examples' dcgan Discriminator (64 px), written out here independently of dcgan.nets."""
    return _Examples(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )


def _examples_netG(nz=100, ngf=64, nc=3):
    return _Examples(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )


def _randomise_bn(net):
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)


def test_exports_round_trip(tmp_path):
    cfg = DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8)
    torch.manual_seed(0)
    G, D = Generator(cfg).eval(), Discriminator(cfg).eval()
    _randomise_bn(D)
    g_path, d_path = export_models(tmp_path, cfg, G, D)
    G2, cfg_g, _ = load_net(g_path, "generator")
    D2, cfg_d, _ = load_net(d_path, "discriminator")
    assert cfg_g == cfg_d == cfg
    z = torch.randn(3, cfg.nz, 1, 1)
    assert torch.equal(G(z), G2(z))
    x = G(z)
    assert torch.equal(D(x), D2(x))
    assert fingerprint(g_path) != fingerprint(d_path) and len(fingerprint(g_path)) == 64


def test_wrong_kind_and_broken_files_are_one_line_errors(tmp_path):
    cfg = DCGANConfig(image_size=32, ngf=8, ndf=8)
    g_path, d_path = export_models(tmp_path, cfg, Generator(cfg), Discriminator(cfg))
    with pytest.raises(CheckpointError, match="holds a generator, expected a discriminator"):
        load_net(g_path, "discriminator")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(d_path.read_bytes()[: d_path.stat().st_size // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    for bad in (truncated, garbage, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError) as e:
            load_net(bad, "discriminator")
        assert str(bad) in str(e.value) and "\n" not in str(e.value)
    # a checkpoint whose weights do not fit its config
    wrong = tmp_path / "wrong.pt"
    save_checkpoint(wrong, "discriminator", DCGANConfig(image_size=64, ngf=8, ndf=8),
                    D=Discriminator(cfg).state_dict())
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_net(wrong, "discriminator")


def test_pytorch_examples_state_dicts_load_with_sizes_read_off_the_weights(tmp_path):
    torch.manual_seed(1)
    netD, netG = _examples_netD(ndf=16).eval(), _examples_netG(nz=20, ngf=16).eval()
    _randomise_bn(netD)
    torch.save(netD.state_dict(), tmp_path / "netD_epoch_24.pth")
    # saved from a DataParallel-wrapped net, as multi-GPU runs of the example do
    torch.save({f"module.{k}": v for k, v in netG.state_dict().items()}, tmp_path / "netG_epoch_24.pth")
    D, cfg_d, _ = load_net(tmp_path / "netD_epoch_24.pth", "discriminator")
    G, cfg_g, _ = load_net(tmp_path / "netG_epoch_24.pth", "generator")
    assert (cfg_d.image_size, cfg_d.nc, cfg_d.ndf) == (64, 3, 16)
    assert (cfg_g.image_size, cfg_g.nc, cfg_g.nz, cfg_g.ngf) == (64, 3, 20, 16)
    z = torch.randn(4, 20, 1, 1)
    assert torch.allclose(G(z), netG(z))
    x = netG(z)
    assert torch.allclose(torch.sigmoid(D(x)), netD(x).flatten(), atol=1e-6)
    with pytest.raises(CheckpointError, match="pytorch/examples generator, expected a discriminator"):
        load_net(tmp_path / "netG_epoch_24.pth", "discriminator")
    # its G is a DCGAN's, of z: refused where an image is fed to G (an SRGAN run's --init), as our exports are
    with pytest.raises(NotApplicable, match="family 'dcgan', whose generator takes noise z .* a low-resolution image"):
        load_net(tmp_path / "netG_epoch_24.pth", "generator", takes="lr")


def _without(blob, key):
    return {k: v for k, v in blob.items() if k != key}


_CFG = DCGANConfig(image_size=32, ngf=8, ndf=8)
_D_STATE = Discriminator(_CFG).state_dict()
_D_EXPORT = {"format": "dcgan-bench", "version": 1, "kind": "discriminator", "config": _CFG.to_dict(),
             "D": _D_STATE, "meta": {}}


@pytest.mark.parametrize("blob,expected", [
    (_without(_D_EXPORT, "config"), "(discriminator) has no 'config'"),
    (_without(_D_EXPORT, "D"), "(discriminator) has no 'D'"),
    ({**_D_EXPORT, "config": "hello"}, "'config' is a str, expected a dict"),
    ({**_D_EXPORT, "config": {**_CFG.to_dict(), "ndf": "8"}}, "parameter ndf='8': expected an integer"),
    ({**_D_EXPORT, "version": 99}, "was written by a newer dcgan-bench (format version 99"),
    ({**_D_EXPORT, "version": "1"}, "has version '1', expected an integer from 1 to 1"),
    ({**_D_EXPORT, "kind": "optimiser"}, "is of kind 'optimiser'"),
    ({**_D_EXPORT, "D": {"main.0.weight": "not a tensor"}}, "'D' is not a state dict"),
    ({"main.1.running_mean": torch.zeros(3)}, "has 0 convolution weights, expected at least 2"),
    ({"main.0.weight": torch.zeros(8, 3, 4, 4), "main.2.weight": torch.zeros(1, 8, 4, 4)},
     "the sizes read off its weights are no DCGAN's"),
    ({"main.x.weight": torch.zeros(1)}, "neither a dcgan-bench checkpoint nor a pytorch/examples state dict"),
])
def test_malformed_checkpoints_are_one_line_errors_naming_the_file(tmp_path, blob, expected):
    """Each of these was a KeyError, an IndexError, a ValueError or, for a newer version, silently accepted."""
    path = tmp_path / "bad.pt"
    torch.save(blob, path)
    with pytest.raises(CheckpointError) as e:
        load_net(path, "discriminator")
    assert expected in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_training_checkpoint_missing_its_optimiser_state_cannot_be_resumed(tmp_path):
    from dcgan.train import TrainConfig, train

    cfg = TrainConfig(model=_CFG, dataset="synthetic", subset=32, epochs=1, batch_size=16)
    run = tmp_path / "run"
    train(cfg, run, device="cpu")
    blob = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save(_without(blob, "optD"), run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=r"\(training\) has no 'optD'"):
        train(cfg, run, device="cpu", resume=True)
    torch.save({**blob, "train_config": {**blob["train_config"], "lr": "fast"}}, run / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="parameter lr='fast': expected a number > 0"):
        train(cfg, run, device="cpu", resume=True)
    torch.save({**blob, "optD": blob["optG"]}, run / "checkpoint.pt")  # G's optimiser state in D's place
    with pytest.raises(CheckpointError, match="does not fit its own settings"):
        train(cfg, run, device="cpu", resume=True)
