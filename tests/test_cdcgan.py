"""The conditional DCGAN: each conditioning's label path against an independent computation, the
family registry, configs and checkpoints that record family, conditioning and classes (and old
files without a family loading as DCGAN's), labelled sampling, and one-line errors for bad input."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan.checkpoint import export_models, load_net, read_checkpoint
from dcgan.config import DCGANConfig
from dcgan.errors import CheckpointError, ConfigError
from dcgan.generate import balanced_labels, class_rows, default_labels, generate
from dcgan.models import FAMILIES, build_net, config_from_dict, family_of, register_family
from dcgan.models.cdcgan import (G_CONDS, CDCGANConfig, ClassBatchNorm2d, ConditionalDCGAN,
                                 ConditionalDiscriminator, ConditionalGenerator)
from dcgan.models.dcgan import DCGAN
from dcgan.nets import sample_z

K = 10
CPU = torch.device("cpu")


def _cfg(**kw) -> CDCGANConfig:
    return CDCGANConfig(**{"image_size": 32, "nc": 1, "ngf": 8, "ndf": 8, **kw})


def _calibrated(net: nn.Module, *inputs, labels) -> nn.Module:
    """``net`` in eval mode with batch-norm statistics of one batch of its own activations: a fresh net's
    unit running variances would shrink its eval-mode outputs to near constants, hiding any label effect."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    with torch.no_grad():
        net.train()(*inputs, labels=labels)
    return net.eval()


def _calibrated_d(d_cond: str) -> tuple[ConditionalDiscriminator, torch.Tensor, torch.Tensor]:
    """A seeded conditional D of ``d_cond``, calibrated on a batch of 6 random images at balanced labels,
    with that batch and its labels."""
    torch.manual_seed(0)
    D = ConditionalDiscriminator(_cfg(d_cond=d_cond))  # initialised before the batch is drawn
    x, y = torch.randn(6, 1, 32, 32), balanced_labels(6, K)
    return _calibrated(D, x, labels=y), x, y


def _batch(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 100, 1, 1, generator=g), balanced_labels(n, K)


@pytest.mark.parametrize("g_cond", G_CONDS)
def test_a_wrong_label_changes_that_sample_alone(g_cond):
    """In eval mode each sample depends on its own z and label only: changing one sample's label changes
    its image, no other, and a G that ignored its labels would leave all of them equal."""
    torch.manual_seed(0)
    z, y = _batch()
    G = _calibrated(ConditionalGenerator(_cfg(g_cond=g_cond)), z, labels=y)
    other = y.clone()
    other[3] = (y[3] + 1) % K
    with torch.no_grad():
        a, b = G(z, labels=y), G(z, labels=other)
    assert a.shape == (20, 1, 32, 32) and a.abs().max() <= 1
    changed = (a - b).flatten(1).abs().amax(1)
    assert changed[3] > 1e-2 and torch.equal(a[torch.arange(20) != 3], b[torch.arange(20) != 3])


def test_class_batch_norm_is_batch_norm_with_a_gain_and_bias_per_class():
    torch.manual_seed(0)
    cbn = ClassBatchNorm2d(6, K)
    with torch.no_grad():
        cbn.shift.weight.normal_()
    x, y = torch.randn(8, 6, 4, 4), torch.tensor([0, 1, 2, 3, 3, 2, 1, 9])
    by_hand = F.batch_norm(x, None, None, training=True, eps=cbn.norm.eps)
    by_hand = by_hand * cbn.gain.weight[y][:, :, None, None] + cbn.shift.weight[y][:, :, None, None]
    torch.testing.assert_close(cbn(x, y), by_hand)


def test_concat_g_sees_the_one_hot_label_beside_z_and_every_layer():
    G = ConditionalGenerator(_cfg(g_cond="concat"))
    convs = [m for m in G.main if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert convs[0].in_channels == 100 + K
    assert all(c.in_channels == prev.out_channels + K for prev, c in zip(convs, convs[1:]))
    assert not any(isinstance(m, ClassBatchNorm2d) for m in G.modules())


def test_projection_d_adds_the_inner_product_of_the_class_embedding_with_its_last_features():
    D, x, y = _calibrated_d("projection")
    with torch.no_grad():
        phi = D.forward_intermediates(x)[D.layer_names[-1]].flatten(1)  # label-free features
        unconditional = D.main[-1](D.forward_intermediates(x)[D.layer_names[-1]]).flatten()
        for labels in (y, (y + 3) % K):
            torch.testing.assert_close(D(x, labels=labels), unconditional + (D.embed.weight[labels] * phi).sum(1))
        assert (D(x, labels=y) - D(x, labels=(y + 3) % K)).abs().min() > 1e-4
    assert not D.features_take_labels


def test_acgan_d_has_an_unconditional_logit_and_a_class_head():
    D, x, y = _calibrated_d("acgan")
    with torch.no_grad():
        logit, classes = D(x, labels=y, classes=True)
        assert classes.shape == (6, K)
        assert torch.equal(logit, D(x)) and torch.equal(logit, D(x, labels=(y + 1) % K))
        last = D.forward_intermediates(x)[D.layer_names[-1]]
        torch.testing.assert_close(classes, F.conv2d(last, D.classifier.weight).flatten(1))
    assert isinstance(D.classifier, nn.Conv2d) and not D.features_take_labels


def test_concat_d_takes_the_label_at_every_layer():
    D, x, y = _calibrated_d("concat")
    assert all(c.in_channels in (1 + K, 8 + K, 16 + K, 32 + K) for c in D.modules() if isinstance(c, nn.Conv2d))
    with torch.no_grad():
        assert (D(x, labels=y) - D(x, labels=(y + 1) % K)).abs().min() > 1e-5
        feats = D.forward_intermediates(x, ["conv2"], labels=y)["conv2"]
        assert not torch.equal(feats, D.forward_intermediates(x, ["conv2"], labels=(y + 1) % K)["conv2"])
    assert D.features_take_labels
    with pytest.raises(ConfigError, match="needs a class label per image"):
        D.forward_intermediates(x)


@pytest.mark.parametrize("net", ["generator", "discriminator"])
def test_labels_are_required_by_conditional_nets_and_refused_by_unconditional_ones(net):
    conditional = build_net(net, _cfg(d_cond="projection"))
    plain = build_net(net, DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8))
    x = torch.randn(4, 100, 1, 1) if net == "generator" else torch.randn(4, 1, 32, 32)
    for module, labels, match in [(conditional, None, "is conditional \\(10 classes\\)"),
                                  (conditional, torch.zeros(3, dtype=torch.long), "for 4 images"),
                                  (plain, torch.zeros(4, dtype=torch.long), "is unconditional")]:
        with pytest.raises(ConfigError, match=match) as e:
            module(x, labels=labels)
        assert "\n" not in str(e.value)
    assert plain.num_classes == 0 and conditional.num_classes == K


# ---- configs, the registry, checkpoints ------------------------------------------------------------

@pytest.mark.parametrize("kwargs,expected", [
    ({"num_classes": 1}, "parameter num_classes=1: expected an integer in [2, 4096]"),
    ({"num_classes": 5000}, "parameter num_classes=5000: expected an integer in [2, 4096]"),
    ({"num_classes": 10.0}, "parameter num_classes=10.0: expected an integer in [2, 4096]"),
    ({"g_cond": "projection"}, "parameter g_cond='projection': expected one of concat, cbn"),
    ({"d_cond": "cbn"}, "parameter d_cond='cbn': expected one of concat, projection, acgan"),
    ({"image_size": 48}, "image size 48 is not supported"),
])
def test_bad_conditional_settings_are_one_line_errors(kwargs, expected):
    with pytest.raises(ConfigError) as e:
        _cfg(**kwargs)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_the_family_registry():
    assert FAMILIES.names() == ["cdcgan", "dcgan", "srgan", "stargan"]
    assert family_of(DCGANConfig()) is DCGAN and family_of(_cfg()) is ConditionalDCGAN
    assert isinstance(build_net("generator", _cfg()), ConditionalGenerator)
    assert type(build_net("discriminator", DCGANConfig())).__name__ == "Discriminator"
    with pytest.raises(ValueError, match="registered twice"):
        register_family(DCGAN)
    with pytest.raises(ConfigError, match="did you mean 'cdcgan'"):
        config_from_dict({**_cfg().to_dict(), "family": "cdgan"})


@pytest.mark.parametrize("cfg", [DCGANConfig(image_size=32, ngf=8), _cfg(g_cond="concat", d_cond="acgan", num_classes=3)])
def test_configs_round_trip_with_their_family(cfg):
    d = cfg.to_dict()
    assert d["family"] == family_of(cfg).name and config_from_dict(d) == cfg
    assert config_from_dict({k: v for k, v in d.items() if k != "family"} if cfg.family == "dcgan" else d) == cfg
    with pytest.raises(ConfigError, match="unknown .* model config keys \\['colour'\\]"):
        config_from_dict({**d, "colour": "red"})


def test_a_config_without_a_family_is_a_dcgan_and_cannot_hold_conditional_settings():
    """Files written before model families existed hold no family: DCGAN's."""
    assert type(config_from_dict({"image_size": 32})) is DCGANConfig
    with pytest.raises(ConfigError, match="unknown dcgan model config keys \\['d_cond', 'g_cond', 'num_classes'\\]"):
        config_from_dict({k: v for k, v in _cfg().to_dict().items() if k != "family"})


def test_checkpoints_record_family_conditioning_and_classes(tmp_path):
    cfg = _cfg(g_cond="concat", d_cond="acgan", num_classes=4, nc=3)
    torch.manual_seed(0)
    g_path, d_path = export_models(tmp_path, cfg, build_net("generator", cfg), build_net("discriminator", cfg))
    blob = read_checkpoint(g_path)
    assert {k: blob["config"][k] for k in ("family", "g_cond", "d_cond", "num_classes")} == \
        {"family": "cdcgan", "g_cond": "concat", "d_cond": "acgan", "num_classes": 4}
    G, g_cfg, _ = load_net(g_path, "generator")
    D, d_cfg, _ = load_net(d_path, "discriminator")
    assert g_cfg == d_cfg == cfg and G.num_classes == D.num_classes == 4 and hasattr(D, "classifier")
    # weights of a projection D under an acgan config: refused, naming the file
    blob = torch.load(d_path, weights_only=True)
    blob["config"]["d_cond"] = "projection"
    torch.save(blob, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_net(tmp_path / "wrong.pt", "discriminator")


def test_a_dcgan_checkpoint_written_before_families_loads_unchanged(tmp_path):
    cfg = DCGANConfig(image_size=32, nc=1, ngf=8, ndf=8)
    torch.manual_seed(0)
    G = build_net("generator", cfg)
    g_path, _ = export_models(tmp_path, cfg, G, build_net("discriminator", cfg))
    blob = torch.load(g_path, weights_only=True)
    old = {**blob, "config": {k: v for k, v in blob["config"].items() if k != "family"}}  # as files were then
    torch.save(old, tmp_path / "old.pt")
    loaded, old_cfg, _ = load_net(tmp_path / "old.pt", "generator")
    assert old_cfg == cfg and loaded.num_classes == 0
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in loaded.state_dict().items())


# ---- sampling -------------------------------------------------------------------------------------

def test_generate_with_labels_equals_a_plain_loop_and_checks_its_labels():
    torch.manual_seed(0)
    z, y = _batch(13)
    G = _calibrated(ConditionalGenerator(_cfg()), z, labels=y)
    with torch.no_grad():
        plain = torch.cat([G(zc, labels=yc) for zc, yc in zip(z.split(4), y.split(4))])
    assert torch.equal(generate(G, z, batch_size=4, device=CPU, labels=y), plain)
    for labels, match in [(None, "is conditional \\(10 classes\\): give the class of each sample"),
                          (y.int(), "expected a LongTensor of 13 classes"),
                          (y[:5], "expected a LongTensor of 13 classes"),
                          (torch.full((13,), 10), "label 10: the generator draws classes 0 to 9"),
                          (torch.full((13,), -1), "label -1")]:
        with pytest.raises(ConfigError, match=match):
            generate(G, z, batch_size=4, device=CPU, labels=labels)
    plain_g = build_net("generator", DCGANConfig(image_size=32, nc=1, ngf=8))
    with pytest.raises(ConfigError, match="unconditional: it draws no classes"):
        generate(plain_g, z, batch_size=4, device=CPU, labels=y)


def test_balanced_labels_and_class_rows():
    assert balanced_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert default_labels(build_net("generator", DCGANConfig()), 5) is None
    assert torch.equal(default_labels(ConditionalGenerator(_cfg(num_classes=3)), 4), torch.tensor([0, 1, 2, 0]))
    z = torch.randn(2, 100, 1, 1)
    rows, labels = class_rows(z, 3)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert all(torch.equal(rows[2 * c + j], z[j]) for c in range(3) for j in range(2))


def test_the_training_grid_has_one_row_per_class():
    z = sample_z(64, _cfg(), torch.Generator().manual_seed(0))
    rows, labels, columns = ConditionalDCGAN.grid(_cfg(num_classes=10), z)
    assert columns == 7 and len(rows) == 70 and labels.view(10, 7).tolist() == [[c] * 7 for c in range(10)]
    assert torch.equal(rows[7:14], z[:7])  # row 1: the same z as row 0, at class 1
    assert DCGAN.grid(DCGANConfig(), z) == (z, None, None)


def test_a_family_refuses_data_it_cannot_train_on():
    from dcgan.data import get_spec, load_dataset

    with pytest.raises(ConfigError, match="data set 'folder' has no labels: model family 'cdcgan' needs a labelled"):
        ConditionalDCGAN.configure(get_spec("folder"))
    assert ConditionalDCGAN.configure(get_spec("digits"), image_size=32, nc=1).num_classes == 10
    with pytest.raises(ConfigError, match="num_classes=4 is conditioned on 4 classes, data set 'digits' has 10"):
        ConditionalDCGAN.configure(get_spec("digits"), num_classes=4)
    with pytest.raises(ConfigError, match="model family 'dcgan' has no setting d_cond"):
        DCGAN.configure(get_spec("digits"), d_cond="acgan")
    digits = load_dataset("digits", image_size=32, subset=10)
    with pytest.raises(ConfigError, match="is conditioned on 3 classes, data set 'digits' has 10"):
        ConditionalDCGAN.check_data(_cfg(num_classes=3), digits)
    ConditionalDCGAN.check_data(dataclasses.replace(_cfg(), num_classes=10), digits)


# ---- the command line -----------------------------------------------------------------------------

TRAIN = ["train", "--model", "cdcgan", "--dataset", "synthetic", "--subset", "64", "--image-size", "32", "--ngf", "8",
         "--ndf", "8", "--batch-size", "32", "--device", "cpu", "--epochs", "1"]


def _bench(*args):
    from click.testing import CliRunner

    from bench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    """A 1-epoch c-GAN (cbn G, acgan D) trained by `bench train` on the synthetic shapes."""
    out = tmp_path_factory.mktemp("cgan") / "run"
    r = _bench(*TRAIN, "--g-cond", "cbn", "--d-cond", "acgan", "--out", out)
    assert r.exit_code == 0, r.output
    return out


def _tiles(path, side=32, pad=2) -> tuple[int, int]:
    """(rows, columns) of a grid of side-pixel tiles with pad pixels around and between them."""
    from PIL import Image

    with Image.open(path) as image:
        w, h = image.size
    return (h - pad) // (side + pad), (w - pad) // (side + pad)


def test_train_records_the_family_and_draws_a_row_per_class(cgan_run):
    config = read_checkpoint(cgan_run / "g.pt")["config"]
    assert (config["family"], config["g_cond"], config["d_cond"], config["num_classes"]) == ("cdcgan", "cbn", "acgan", 10)
    assert _tiles(cgan_run / "samples" / "epoch001.png") == (10, 7)  # 64 samples: 7 columns of 10 classes
    G, _, _ = load_net(cgan_run / "g.pt", "generator")
    assert isinstance(G, ConditionalGenerator)


def test_sample_a_class_or_a_grid_of_every_class(cgan_run, tmp_path):
    r = _bench("sample", "--ckpt", cgan_run / "g.pt", "--class", 3, "--samples", 8, "--out", tmp_path / "c3.png",
               "--no-numbers")
    assert r.exit_code == 0 and "8 samples of class 3" in r.output, r.output
    assert torch.load(tmp_path / "c3.png.labels.pt").tolist() == [3] * 8
    r = _bench("sample", "--ckpt", cgan_run / "g.pt", "--samples", 20, "--out", tmp_path / "grid.png", "--no-numbers")
    assert r.exit_code == 0 and "10 classes x 2 samples" in r.output, r.output
    assert _tiles(tmp_path / "grid.png") == (10, 2)
    z, labels = torch.load(tmp_path / "grid.png.z.pt"), torch.load(tmp_path / "grid.png.labels.pt")
    assert labels.tolist() == [c for c in range(10) for _ in range(2)] and torch.equal(z[0], z[2])  # a column: one z


@pytest.mark.parametrize("args,expected", [
    (["sample", "--ckpt", "{plain_g}", "--class", "3"], "is unconditional, it draws no classes"),
    (["sample", "--ckpt", "{cgan_g}", "--class", "10"], "label 10: the generator draws classes 0 to 9"),
    (["run", "vector-arithmetic", "--ckpt", "{cgan_g}", "--set", "z=x"], "a conditional generator's samples depend on"),
    (["run", "latent-walk", "--ckpt", "{cgan5_g}", "--dataset", "synthetic"],
     "checkpoint {cgan5_g} is conditioned on 5 classes, data set 'synthetic' has 10"),
    (["run", "svm", "--ckpt", "{cgan5_d}", "--dataset", "digits"], "is conditioned on 5 classes, data set 'digits' has 10"),
    (["run", "fid", "--ckpt", "{cgan5_g}", "--dataset", "synthetic"], "conditioned on 5 classes, data set 'synthetic' has 10"),
    (["run", "svm", "--ckpt", "{concat_d}", "--dataset", "synthetic"],
     "takes the class label at every layer (conditioning concat), so its features are no representation"),
    (["run", "guided-backprop", "--ckpt", "{concat_d}", "--dataset", "synthetic"], "takes the class label at every"),
    (["evaluate", "--g", "{cgan_g}", "--d", "{plain_d}", "--dataset", "synthetic"], "are not one model"),
    ([*TRAIN, "--d-cond", "projectoin", "--out", "{tmp}/x"], "parameter d_cond='projectoin': expected one of concat"),
    ([*TRAIN, "--dataset", "folder", "--data-root", "{tmp}", "--out", "{tmp}/x"],
     "data set 'folder' has no labels: model family 'cdcgan' needs a labelled data set"),
    (["train", "--g-cond", "cbn", "--dataset", "synthetic", "--out", "{tmp}/x"], "model family 'dcgan' has no setting g_cond"),
    (["train", "--model", "cgan", "--dataset", "synthetic", "--out", "{tmp}/x"], "unknown model family 'cgan'"),
])
def test_a_model_of_the_wrong_family_or_classes_is_one_line_exit_2(tmp_path, args, expected):
    from fixtures_tasks import tiny_checkpoints

    models = {"plain": DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8), "cgan": _cfg(nc=3),
              "cgan5": _cfg(nc=3, num_classes=5), "concat": _cfg(nc=3, d_cond="concat")}
    paths = {"tmp": tmp_path}
    for name, config in models.items():
        paths[f"{name}_g"], paths[f"{name}_d"] = tiny_checkpoints(tmp_path / name, config=config)
    r = _bench(*[a.format(**paths) for a in args])
    assert r.exit_code == 2, r.output
    assert expected.format(**paths) in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x" / "checkpoint.pt").exists() and not (tmp_path / "results").exists()


def test_evaluate_runs_what_applies_to_a_conditional_gan_and_notes_the_rest(tmp_path):
    """A c-GAN whose D takes the label at every layer: the generator's tasks run (latent walks at a fixed
    class), the probe and the D-feature studies are skipped with their reason on the card."""
    from fixtures_fid import write_tiny_weights

    run = tmp_path / "run"
    assert _bench(*TRAIN, "--d-cond", "concat", "--out", run).exit_code == 0
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
description = "tests"
[[task]]
name = "svm"
params = {{ labels_per_class = 5, val_size = 60, selection_draws = 2, c_grid = [1e-3, 1e-2] }}
[[task]]
name = "fid"
params = {{ samples = 40, metrics = ["fid"], extractor = "tiny", inception_weights = "{write_tiny_weights(tmp_path / 'w.pt')}" }}
[[task]]
name = "latent-walk"
params = {{ walks = 2, points = 3, steps = 2 }}
[[task]]
name = "guided-backprop"
params = {{ images = 40, features = 2, top = 2 }}
""")
    r = _bench("evaluate", run, "--suite", suite, "--results", tmp_path / "results", "--device", "cpu")
    assert r.exit_code == 0, r.output
    lines = {line.split("] ")[1].split(":")[0]: line for line in r.output.splitlines() if line.startswith("[")}
    assert "skipped" in lines["svm"] and "conditioning concat" in lines["svm"]
    assert "skipped" in lines["guided-backprop"]
    assert "rows ->" in lines["fid"] and "rows ->" in lines["latent-walk"], r.output
    card = (tmp_path / "results" / "report" / "run" / "report.md").read_text()
    assert "conditioning concat" in card


# ---- real data (opt-in) ----------------------------------------------------------------------------

@pytest.mark.realdata
def test_a_few_hundred_steps_on_fashion_mnist_draw_samples_of_their_class(shared_data, tmp_path):
    """300 steps (6,400 images, batch 64, 32 px) of the default c-GAN: a nearest-class-centroid classifier
    fitted on real training pixels (an independent judge, 67% on the real test images) puts most samples
    in the class they were drawn at, far above its score with the labels shuffled (chance, 10%)."""
    from dcgan.data import load_dataset
    from dcgan.train import TrainConfig, train

    root = shared_data / "fashion-mnist"
    if not (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip(f"real Fashion-MNIST not found under {root}")
    cfg = TrainConfig(model=CDCGANConfig(image_size=32, nc=1), dataset="fashion-mnist", data_root=str(root),
                      subset=6400, epochs=3, batch_size=64, checkpoint_every=1000)
    G = train(cfg, tmp_path / "run", device="cpu").G
    real = load_dataset("fashion-mnist", "train", root=root, image_size=32)
    pixels = real.images.float().flatten(1) / 127.5 - 1
    centroids = torch.stack([pixels[real.labels == c].mean(0) for c in range(K)])
    labels = balanced_labels(2000, K)
    samples = generate(G, sample_z(2000, cfg.model, torch.Generator().manual_seed(1)), batch_size=256, device=CPU,
                       labels=labels)
    judged = torch.cdist(samples.flatten(1), centroids).argmin(1)
    shuffled = labels[torch.randperm(2000, generator=torch.Generator().manual_seed(2))]
    assert (judged == labels).float().mean() > 0.5 > 0.2 > (judged == shuffled).float().mean()
