"""StarGAN: the label tiling, both heads' shapes, the gradient penalty against a per-image hand
computation, the step's losses against the paper's formulas recomputed independently, the rate's linear
decay, the per-epoch grid, training from `bench train` (classes and attributes), and one-line errors.
Exact resume and DDP: tests/test_train.py, with the other families."""
import csv
import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from bench.cli import main as cli
from dcgan.checkpoint import load_net, read_checkpoint
from dcgan.errors import ConfigError, NotApplicable
from dcgan.models import build_net, config_from_dict
from dcgan.models.stargan import StarGAN, StarGANConfig, gradient_penalty, target_grid, translate
from dcgan.models.stargan_nets import PatchDiscriminator, Translator, trunk_depth
from dcgan.train import TrainConfig, train

DOMAINS = ("disc", "square", "ring")


def _cfg(**kw) -> StarGANConfig:
    return StarGANConfig(**{"image_size": 32, "nc": 3, "ngf": 8, "ndf": 8, "res_blocks": 1, "domains": DOMAINS,
                            "n_critic": 2, **kw})


def _train_cfg(model=None, **kw) -> TrainConfig:
    return TrainConfig(**{"model": model or _cfg(), "dataset": "synthetic", "epochs": 2, "batch_size": 32,
                          "seed": 4, "checkpoint_every": 100, **kw})


def _log(trainer) -> list[dict]:
    with open(trainer.log_path) as f:
        return list(csv.DictReader(f))


# ---- the nets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["class", "attribute"])
def test_the_target_domain_is_tiled_into_constant_maps_beside_the_image(kind):
    cfg = _cfg(domain_kind=kind, domains=("a", "b", "c", "d"))
    G = Translator(cfg)
    seen = {}
    G.main[0].register_forward_hook(lambda m, args, out: seen.update(input=args[0]))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    labels = torch.tensor([2, 0]) if kind == "class" else torch.tensor([[1, 0, 1, 1], [0, 0, 0, 1]])
    with torch.no_grad():
        out = G(x, labels=labels)
    assert out.shape == x.shape and out.abs().max() <= 1
    h = seen["input"]
    assert h.shape == (2, 3 + 4, 32, 32) and torch.equal(h[:, :3], x)
    want = F.one_hot(labels, 4).float() if kind == "class" else labels.float()
    assert torch.equal(h[:, 3:], want[:, :, None, None].expand(-1, -1, 32, 32))


@pytest.mark.parametrize("side", [32, 64, 128])
def test_d_halves_the_image_to_2x2_patches_and_has_a_source_and_a_domain_head(side):
    D = PatchDiscriminator(_cfg(image_size=side, domains=("a", "b", "c", "d", "e")))
    depth = trunk_depth(side)
    assert depth == {32: 4, 64: 5, 128: 6}[side]  # the paper's six at 128 px
    with torch.no_grad():
        src, cls = D(torch.zeros(3, 3, side, side))
        acts = D.forward_intermediates(torch.zeros(3, 3, side, side))
    assert src.shape == (3, 4) and cls.shape == (3, 5)
    assert list(acts) == [f"conv{i + 1}" for i in range(depth)]
    assert acts[f"conv{depth}"].shape == (3, 8 * 2 ** (depth - 1), 2, 2)
    assert all(m.negative_slope == 0.01 for m in D.modules() if isinstance(m, torch.nn.LeakyReLU))
    with pytest.raises(ConfigError, match="takes no labels"):
        D(torch.zeros(1, 3, side, side), labels=torch.tensor([0]))


def test_g_has_the_papers_layers_and_refuses_labels_of_the_wrong_shape():
    G = Translator(_cfg(ngf=64, res_blocks=6))
    convs = [m for m in G.main.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [(type(c).__name__, c.kernel_size[0], c.stride[0], c.out_channels) for c in convs[:3] + convs[-3:]] == [
        ("Conv2d", 7, 1, 64), ("Conv2d", 4, 2, 128), ("Conv2d", 4, 2, 256),
        ("ConvTranspose2d", 4, 2, 128), ("ConvTranspose2d", 4, 2, 64), ("Conv2d", 7, 1, 3)]
    assert len(convs) == 6 + 2 * 6  # and six residual blocks of two convolutions
    for labels, match in [(None, "none for 2 images"), (torch.tensor([[0, 1, 0]] * 2), r"shape \(2, 3\)")]:
        with pytest.raises(ConfigError, match=match):
            G(torch.zeros(2, 3, 32, 32), labels=labels)


def test_the_gradient_penalty_is_the_per_image_gradient_norm_computed_by_hand():
    torch.manual_seed(0)
    D = PatchDiscriminator(_cfg())
    x_hat = torch.randn(4, 3, 32, 32, requires_grad=True)
    gp = gradient_penalty(D(x_hat)[0], x_hat)
    by_hand = []
    for i in range(4):  # each image alone: its own patch scores' gradient, the norm, (norm - 1)^2
        xi = x_hat[i:i + 1].detach().requires_grad_(True)
        grad, = torch.autograd.grad(D(xi)[0].sum(), xi)
        by_hand.append((math.sqrt(float((grad.double() ** 2).sum())) - 1) ** 2)
    assert gp.item() == pytest.approx(sum(by_hand) / 4, rel=1e-4)
    # a linear score w.x has gradient w everywhere: (||w|| - 1)^2 exactly
    w = torch.full((3, 8, 8), 0.1)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    assert gradient_penalty((x * w).flatten(1).sum(1), x).item() == pytest.approx((0.1 * math.sqrt(192) - 1) ** 2)
    gp.backward()  # the graph is kept: D's weights get the penalty's gradient
    assert D.main[0].weight.grad is not None


# ---- the step -----------------------------------------------------------------------------------

def test_a_step_computes_the_papers_losses(tmp_path, monkeypatch):
    """The numbers logged at a G step, recomputed from the nets before the step with the same draws (the
    targets a permutation of the batch's labels, the interpolation weights), by the paper's formulas."""
    from dcgan.train import Trainer

    t = Trainer(_train_cfg(model=_cfg(n_critic=1)), tmp_path / "run", "cpu")
    images, labels = next(iter(t.epoch_batches(0, 0)))
    G0, D0 = [{k: v.clone() for k, v in n.state_dict().items()} for n in (t.G, t.D)]
    noise = t.noise.get_state()
    got = t.train_step(images, labels)

    G, D = build_net("generator", t.cfg.model), build_net("discriminator", t.cfg.model)
    G.load_state_dict(G0)
    D.load_state_dict(D0)
    g = torch.Generator().set_state(noise)
    x = images.float() / 127.5 - 1
    targets = labels[torch.randperm(len(x), generator=g)]
    alpha = torch.rand(len(x), 1, 1, 1, generator=g)
    fake = G(x, labels=targets).detach()
    x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
    assert got["d_real"] == pytest.approx(-D(x)[0].mean().item(), abs=1e-5)
    assert got["d_fake"] == pytest.approx(D(fake)[0].mean().item(), abs=1e-5)
    assert got["d_cls"] == pytest.approx(F.cross_entropy(D(x)[1], labels).item(), abs=1e-5)
    grad, = torch.autograd.grad(D(x_hat)[0].sum(), x_hat)
    assert got["d_gp"] == pytest.approx(((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().item(), rel=1e-4)
    # G's losses are taken against the D after its update
    D.load_state_dict(t.D.state_dict())
    assert got["g_fake"] == pytest.approx(-D(fake)[0].mean().item(), abs=1e-4)
    assert got["g_cls"] == pytest.approx(F.cross_entropy(D(fake)[1], targets).item(), abs=1e-4)
    assert got["g_rec"] == pytest.approx((x - G(fake, labels=labels)).abs().mean().item(), abs=1e-5)


def test_g_is_updated_once_every_n_critic_steps_and_logs_its_losses_then(tmp_path):
    trainer = train(_train_cfg(model=_cfg(n_critic=2), epochs=1), tmp_path / "run", device="cpu")
    rows = _log(trainer)
    assert len(rows) == trainer.steps_per_epoch == 4
    assert [r["g_rec"] == "nan" for r in rows] == [True, False, True, False]
    assert all(math.isfinite(float(r["d_gp"])) for r in rows)


def test_the_rate_is_constant_then_decays_linearly_to_zero():
    cfg = _cfg(decay_from=0.5)
    rates = [StarGAN.learning_rate(cfg, 1e-4, s, 10) for s in range(10)]
    assert rates[:5] == [1e-4] * 5
    assert rates[5:] == pytest.approx([1e-4 * k / 5 for k in (5, 4, 3, 2, 1)])
    assert [StarGAN.learning_rate(_cfg(decay_from=1.0), 1e-4, s, 10) for s in range(10)] == [1e-4] * 10


def test_training_on_attributes_uses_the_binary_cross_entropy():
    cfg = _cfg(domain_kind="attribute", domains=("a", "b"))
    logits, labels = torch.tensor([[2.0, -1.0]]), torch.tensor([[1, 0]])
    want = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="sum")
    assert StarGAN.classification_loss(cfg, logits, labels).item() == pytest.approx(want.item())
    grid = target_grid(torch.tensor([[1, 0]]), cfg)
    assert grid.tolist() == [[[0, 0], [1, 1]]]  # each attribute flipped in turn


def test_training_lowers_the_reconstruction_error_and_the_grid_shows_every_domain(tmp_path):
    """16 G updates at a rate of 1e-3 bring the cycle's L1 from about 0.85 to under 0.3 (0.19 when written)."""
    trainer = train(_train_cfg(model=_cfg(n_critic=1), epochs=4, lr=1e-3), tmp_path / "run", device="cpu")
    rec = [float(r["g_rec"]) for r in _log(trainer)]
    assert rec[0] > 0.6 and max(rec[-4:]) < 0.3
    from PIL import Image
    grid = Image.open(tmp_path / "run" / "samples" / "epoch004.png")
    assert grid.size == (2 + 4 * 34, 2 + 8 * 34)  # the input and its three domains, for eight images
    G, cfg, _ = load_net(tmp_path / "run" / "g.pt", "generator", takes="image")
    assert cfg == trainer.cfg.model and cfg.domains == DOMAINS
    x = trainer.data.images[:2]
    out = translate(G, x, torch.tensor([1, 2]), batch_size=1, device="cpu")
    assert out.shape == (2, 3, 32, 32) and torch.isfinite(out).all()


# ---- configs, checkpoints and the command line -----------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"image_size": 48}, "image_size=48: expected a power of two"),
    ({"domains": ("a", "a")}, "a domain is named twice"),
    ({"domains": ("a",)}, "at least two classes"),
    ({"domains": ()}, "expected at least one value"),
    ({"n_critic": 0}, "n_critic=0"),
    ({"decay_from": 1.5}, "decay_from=1.5"),
    ({"domain_kind": "style"}, "domain_kind='style'"),
])
def test_bad_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        _cfg(**kwargs)
    assert "\n" not in str(e.value)


def test_a_config_round_trips_through_json_lists():
    cfg = _cfg()
    d = cfg.to_dict()
    assert config_from_dict({**d, "domains": list(d["domains"])}) == cfg


def test_bench_train_translates_among_the_domains_given_and_its_g_serves_no_gan_of_z(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model", "stargan", "--dataset", "synthetic", "--domains", "disc,square,ring",
            "--image-size", "32", "--ngf", "8", "--ndf", "8", "--res-blocks", "1", "--n-critic", "2",
            "--epochs", "1", "--batch-size", "32", "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    blob = read_checkpoint(out / "g.pt")
    assert blob["config"]["family"] == "stargan" and tuple(blob["config"]["domains"]) == DOMAINS
    with pytest.raises(NotApplicable, match="an image and a target domain"):
        load_net(out / "g.pt", "generator", takes="z")
    bad = CliRunner().invoke(cli, [*args[:5], "disc,sqaure", *args[6:-1], str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "sqaure" in bad.output, bad.output


def test_bf16_channels_last_tracks_fp32(tmp_path):
    runs = [train(_train_cfg(model=_cfg(n_critic=1), epochs=1, precision=p), tmp_path / p, device="cpu")
            for p in ("bf16", "fp32")]
    assert runs[0].cfg.channels_last
    assert all(torch.isfinite(p).all() for t in runs for net in (t.G, t.D) for p in net.parameters())
    logs = [_log(t) for t in runs]
    assert max(abs(float(a[k]) - float(b[k])) for a, b in zip(*logs) for k in ("d_cls", "g_cls", "g_rec")) < 0.05
