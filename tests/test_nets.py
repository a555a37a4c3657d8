"""The paper's architecture rules, checked on every supported configuration of every model family."""
import itertools

import pytest
import torch
from torch import nn

from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError
from dcgan.generate import default_labels
from dcgan.models import build_net
from dcgan.models.cdcgan import D_CONDS, G_CONDS, CDCGANConfig, ClassBatchNorm2d
from dcgan.nets import Discriminator, sample_z

CONFIGS = [("dcgan", 32, 1), ("dcgan", 32, 3), ("dcgan", 64, 3), ("dcgan", 128, 3), ("imagenet32", 32, 3)]
MODELS = ([DCGANConfig(image_size=size, nc=nc, arch=arch, ngf=16, ndf=16) for arch, size, nc in CONFIGS]
          + [CDCGANConfig(image_size=size, nc=nc, arch=arch, ngf=16, ndf=16, num_classes=5, g_cond=g, d_cond=d)
             for (arch, size, nc), g, d in itertools.product([("dcgan", 32, 1), ("dcgan", 64, 3), ("imagenet32", 32, 3)],
                                                             G_CONDS, D_CONDS)])


@pytest.mark.parametrize("cfg", MODELS, ids=lambda c: "-".join(str(v) for v in c.to_dict().values()))
def test_architecture_rules(cfg):
    size, nc = cfg.image_size, cfg.nc
    G, D = build_net("generator", cfg), build_net("discriminator", cfg)
    for net in (G, D):
        kinds = {type(m) for m in net.modules()}
        assert not kinds & {nn.MaxPool2d, nn.AvgPool2d, nn.Linear}, "no pooling, no fully connected layers"
    g_layers, d_layers = list(G.main), list(D.main)
    # G: ReLU inside, Tanh on the output, no batch norm on the output layer
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d | nn.Conv2d)
    acts = [m for m in g_layers if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh))]
    assert all(isinstance(a, nn.ReLU) for a in acts[:-1])
    # G: every hidden convolution followed by a batch norm (class-conditional or not), then its ReLU
    convs = [i for i, m in enumerate(g_layers) if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(isinstance(g_layers[i + 1], (nn.BatchNorm2d, ClassBatchNorm2d)) and isinstance(g_layers[i + 2], nn.ReLU)
               for i in convs[:-1])
    # D: no batch norm right after the input layer, LeakyReLU(0.2) everywhere
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    n_bn_d = sum(isinstance(m, nn.BatchNorm2d) for m in d_layers)
    assert n_bn_d == len(D.layer_names) - 1
    # strided convolutions do the downsampling
    assert any(m.stride == (2, 2) for m in d_layers if isinstance(m, nn.Conv2d))

    z = sample_z(4, cfg, torch.Generator().manual_seed(0))
    labels = default_labels(G, 4)
    x = G(z, labels=labels)
    assert x.shape == (4, nc, size, size)
    assert x.abs().max() <= 1
    assert D(x, labels=labels).shape == (4,)
    feats = D.forward_intermediates(x, labels=labels)
    assert list(feats) == list(D.layer_names)
    assert feats[D.layer_names[-1]].shape[-1] == 4, "the last feature layer is 4x4"


def test_feature_widths_match_the_paper():
    """Max-pooled to 4x4: 7168 (canonical, 32 px), 15360 (canonical, 64 px), 28672 (authors' ImageNet-32 D)."""
    for cfg, dims in [(DCGANConfig(image_size=32), 7168), (DCGANConfig(image_size=64), 15360),
                      (DCGANConfig(image_size=32, arch="imagenet32"), 28672)]:
        assert sum(Discriminator(cfg).feature_channels.values()) * 16 == dims


def test_init_is_n_0_002_and_bn_gain_n_1_002():
    torch.manual_seed(0)
    D = Discriminator(DCGANConfig(image_size=64))
    w = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, nn.Conv2d)])
    g = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3
    assert abs(g.mean() - 1) < 5e-3 and abs(g.std() - 0.02) < 5e-3


def test_intermediates_stop_early_and_reject_unknown_layers():
    D = Discriminator(DCGANConfig(image_size=64, ndf=8))
    out = D.forward_intermediates(torch.randn(2, 3, 64, 64), ["conv2"])
    assert list(out) == ["conv2"] and out["conv2"].shape == (2, 16, 16, 16)
    with pytest.raises(ConfigError, match="conv9"):
        D.forward_intermediates(torch.randn(2, 3, 64, 64), ["conv9"])


@pytest.mark.parametrize("kwargs,match", [
    ({"image_size": 48}, "image size 48"),
    ({"arch": "imagenet32", "image_size": 64}, "imagenet32"),
    ({"nc": 2}, "nc=2"),
    ({"arch": "resnet"}, "resnet"),
])
def test_bad_config_is_a_one_line_error(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        DCGANConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_uniform_z_is_bounded():
    z = sample_z(1000, DCGANConfig(z_dist="uniform"), torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and z.shape == (1000, 100, 1, 1)
