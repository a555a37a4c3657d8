"""The section-6 studies end to end on tiny checkpoints and real digits: forget (dropping G's feature
maps), guided-backprop (D's features) and memorisation (nearest training images), each checked
against an independent computation, run twice for determinism, and fed bad input."""
import json
import shlex
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.run import run as bench_run
from bench.cli import main
from bench.pictures import RED, numbered_sheet
from bench.tasks.guided_backprop import _GuidedLeakyReLU, guided, guided_map
from bench.tasks.memorisation import nearest
from dcgan.checkpoint import export_models, load_net
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.nets import Discriminator, Generator, sample_z
from fixtures_tasks import tiny_checkpoints

BOXES = "sample,x0,y0,x1,y1\n0,0,0,16,16\n1,8,8,32,20\n2,16,16,32,32\n3,0,20,12,32\n4,4,4,28,12\n"
RUNS = {  # task -> (checkpoint kind, bench.run keyword arguments, pictures written)
    "forget": ("g", {"overrides": {"samples": "12", "show": "6"}}, ("samples.png", "forget.png")),
    "guided-backprop": ("d", {"dataset": "digits", "overrides": {"images": "40", "features": "3", "top": "2"}},
                        ("maps.png",)),
    "memorisation": ("g", {"dataset": "digits", "overrides": {"samples": "30", "neighbours": "3", "show": "4"}},
                     ("neighbours-pixels.png", "neighbours-d.png", "distances.png")),
}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    g, d = tiny_checkpoints(tmp_path_factory.mktemp("ckpt"))
    boxes = g.parent / "boxes.csv"
    boxes.write_text(BOXES)
    return {"g": g, "d": d, "boxes": boxes}


def _run(task, ckpts, results, **kw):
    kind, args, _ = RUNS[task]
    args = {**args, **kw}
    overrides = dict(args.pop("overrides"))
    if task == "forget":
        overrides["boxes"] = str(ckpts["boxes"])
    return bench_run(task, ckpt=ckpts[kind], device="cpu", results_dir=results, overrides=overrides, **args)


@pytest.mark.parametrize("task", list(RUNS))
def test_runs_twice_with_the_same_numbers_and_pictures(task, ckpts, tmp_path):
    first = _run(task, ckpts, tmp_path / "a")
    second = _run(task, ckpts, tmp_path / "b")
    assert [r["value"] for r in first.rows] == [r["value"] for r in second.rows] and first.rows
    assert all(np.isfinite(float(r["value"])) for r in first.rows)
    for name in RUNS[task][2]:
        [a] = (tmp_path / "a" / task).glob(f"*/{name}")
        [b] = (tmp_path / "b" / task).glob(f"*/{name}")
        with Image.open(a) as image:
            assert 150 <= image.width <= 2000 and 100 <= image.height <= 2500, image.size
            assert len(np.unique(np.asarray(image.convert("L")))) > 10  # pictures, not a blank page
        if name != "distances.png":  # matplotlib's PNG metadata may differ; our sheets are pixel-exact
            assert a.read_bytes() == b.read_bytes()
    df = pd.read_csv(first.path)
    assert len(df) == len(first.rows)


# ---- forget --------------------------------------------------------------------------------------

def test_a_channel_mask_equals_zeroing_those_maps_by_hand():
    cfg = DCGANConfig(image_size=32, nc=1, ngf=8)
    torch.manual_seed(1)
    G = Generator(cfg).eval()
    z = sample_z(5, cfg, torch.Generator().manual_seed(0))
    drop = [0, 3, 7]
    mask = torch.ones(G.feature_channels["layer2"])
    mask[drop] = 0
    with torch.no_grad():
        x = z
        for i, module in enumerate(G.main):
            x = module(x)
            if i == 5:  # layer2: projection (0-2), then ConvTranspose 3, BatchNorm 4, ReLU 5
                x[:, drop] = 0
        masked = G(z, {"layer2": mask})
        acts = G.forward_intermediates(z, ["layer2"], {"layer2": mask})["layer2"]
        plain = G(z)
    torch.testing.assert_close(masked, x, rtol=1e-6, atol=1e-12)  # a random-init G draws values near 1e-4
    assert (acts[:, drop] == 0).all() and acts.shape == (5, 16, 8, 8)
    assert (masked - plain).abs().max() > 0.05 * plain.abs().max()  # the dropped maps did draw something
    assert G.layer_names == ("layer1", "layer2", "layer3")


def test_forget_finds_and_drops_a_planted_map(ckpts, tmp_path):
    """Boxes drawn around each sample's strongest location of one layer2 map: that map must be dropped."""
    G, cfg, _ = load_net(ckpts["g"], "generator")
    with torch.no_grad():
        acts = G.forward_intermediates(sample_z(12, cfg, torch.Generator().manual_seed(0)), ["layer2"])["layer2"]
    planted = 5
    peaks = [divmod(int(a.argmax()), 8) for a in acts[:, planted]]  # (row, column) of the 8x8 grid, 4 px each
    boxes = tmp_path / "planted.csv"
    boxes.write_text("sample,x0,y0,x1,y1\n" + "".join(f"{i},{4 * c},{4 * r},{4 * c + 4},{4 * r + 4}\n"
                                                       for i, (r, c) in enumerate(peaks)))
    result = bench_run("forget", ckpt=ckpts["g"], device="cpu", results_dir=tmp_path,
                       overrides={"samples": "12", "boxes": str(boxes)})
    values = {r["metric"]: float(r["value"]) for r in result.rows}
    dropped = json.loads(result.rows[0]["details"])["dropped_maps"]
    assert planted in dropped and values["maps_dropped"] == len(dropped) < values["maps_total"] == 16
    assert values["heldout_accuracy"] > values["heldout_chance"]
    assert values["activation_dropped_inside"] > values["activation_dropped_outside"]
    # the edit: the dropped maps' activations are zero in the redrawn samples, and the pixels changed
    assert values["pixel_change_inside"] > 0


def test_forget_without_boxes_writes_the_numbered_samples_and_says_what_to_do_next(ckpts, tmp_path, monkeypatch):
    r = CliRunner().invoke(main, ["run", "forget", "--ckpt", str(ckpts["g"]), "--set", "samples=7", "--device", "cpu",
                                  "--results", str(tmp_path)])
    assert r.exit_code == 0, r.output
    [sheet] = (tmp_path / "forget").glob("*/samples.png")
    assert str(sheet) in r.output and "sample,x0,y0,x1,y1" in r.output and "32x32" in r.output
    assert not (tmp_path / "forget.csv").exists()  # nothing was measured
    with Image.open(sheet) as image:
        assert image.size == (4 * (7 * 34 + 2), 4 * (34 + 2))  # one row of seven 32 px samples, 4x enlarged
    # the command it prints, run with boxes, draws the same samples and measures them
    command = shlex.split(r.output.strip().splitlines()[-1])
    assert command[:3] == ["bench", "run", "forget"] and "samples=7" in command and command[-1] == "boxes=boxes.csv"
    (tmp_path / "boxes.csv").write_text(BOXES)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, [*command[1:], "--device", "cpu", "--results", str(tmp_path / "next")])
    assert r.exit_code == 0 and "heldout_accuracy" in r.output, r.output
    [boxed] = (tmp_path / "next" / "forget").glob("*/samples.png")
    first, second = (np.asarray(Image.open(path).convert("RGB")) for path in (sheet, boxed))
    assert first.shape == second.shape and (first == second).all(-1).mean() > 0.9  # the same tiles, boxes added


def test_the_numbered_sheet_outlines_boxes_along_their_inside_edge(tmp_path):
    numbered_sheet(torch.zeros(3, 1, 8, 8), tmp_path / "s.png", columns=3, legible=32, boxes=[(1, 2, 4, 6, 7)])
    red = (np.asarray(Image.open(tmp_path / "s.png").convert("RGB")) == RED).all(-1)
    box = np.zeros((8, 8), bool)  # in pixels of the sample: x 2..5, y 4..6, its edge
    box[4:7, 2:6] = True
    box[5:6, 3:5] = False
    expected = np.zeros_like(red)
    x, y = 4 * 2 + 4 * 10, 4 * 2  # the second tile's corner: 2 px padding, 8 px tiles, 4x enlarged
    expected[y: y + 32, x: x + 32] = box.repeat(4, 0).repeat(4, 1)
    assert np.array_equal(red, expected)


def test_forget_samples_at_the_runs_precision(ckpts, tmp_path, monkeypatch):
    drawn = []  # the dtype G's images come out in: bfloat16 under bf16 autocast
    forward = Generator.forward_with_intermediates

    def spy(self, *args, **kwargs):
        x, named = forward(self, *args, **kwargs)
        drawn.append(x.dtype)
        return x, named

    monkeypatch.setattr(Generator, "forward_with_intermediates", spy)
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        drawn.clear()
        result = _run("forget", ckpts, tmp_path / precision, precision=precision)
        assert drawn == [dtype, dtype]  # the samples with their activations, then the edited samples
        assert all(np.isfinite(float(r["value"])) for r in result.rows)


@pytest.mark.parametrize("text,expected", [
    ("sample,x0,y0,x1\n0,0,0,4\n", "missing column(s) y1"),
    ("sample,x0,y0,x1,y1\n", "holds no boxes"),
    ("sample,x0,y0,x1,y1\n0,0,0,8,8\n12,0,0,8,8\n", "line 3: sample 12 is outside 0..11"),
    ("sample,x0,y0,x1,y1\n0,0,0,33,8\n", "box (0, 0, 33, 8) is not inside the 32x32 image"),
    ("sample,x0,y0,x1,y1\n0,8,0,4,8\n", "not inside the 32x32 image with x0 < x1"),
    ("sample,x0,y0,x1,y1\n0,a,0,4,8\n", "expected integers"),
    ("sample,x0,y0,x1,y1\n0,0,0,8,8\n", "boxes on at least 2 samples"),
    ("sample,x0,y0,x1,y1\n0,0,0,1,1\n1,0,0,1,1\n", "hold no centre of a layer2 location"),
])
def test_bad_boxes_are_one_line_errors(ckpts, tmp_path, text, expected):
    boxes = tmp_path / "b.csv"
    boxes.write_text(text)
    r = CliRunner().invoke(main, ["run", "forget", "--ckpt", str(ckpts["g"]), "--set", f"boxes={boxes}",
                                  "--set", "samples=12", "--device", "cpu", "--results", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert expected in r.output and str(boxes) in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


# ---- guided-backprop -----------------------------------------------------------------------------

def test_the_guided_rule_passes_positive_gradients_of_positive_inputs():
    x = torch.tensor([-1.0, 2.0, 3.0, 0.5], requires_grad=True)
    y = _GuidedLeakyReLU.apply(x, 0.2)
    y.backward(torch.tensor([1.0, -1.0, 2.0, 0.0]))
    assert torch.equal(y.detach(), torch.tensor([-0.2, 2.0, 3.0, 0.5]))  # the forward is LeakyReLU's
    assert torch.equal(x.grad, torch.tensor([0.0, 0.0, 2.0, 0.0]))


def test_guided_backprop_equals_plain_gradients_when_nothing_is_negative():
    cfg = DCGANConfig(image_size=32, nc=1, ndf=8)
    torch.manual_seed(0)
    D = Discriminator(cfg).eval()
    image = torch.rand(1, 32, 32) + 0.1
    x = image[None].clone().requires_grad_(True)
    D.forward_intermediates(x, ["conv3"])["conv3"][0, 2].max().backward()
    assert not torch.allclose(guided_map(guided(D), image, "conv3", 2), x.grad)  # negative parts: they differ
    with torch.no_grad():  # positive weights on a positive image: every unit positive, every gradient too
        for m in D.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.abs_()
    x.grad = None
    D.forward_intermediates(x, ["conv3"])["conv3"][0, 2].max().backward()
    assert torch.allclose(guided_map(guided(D), image, "conv3", 2), x.grad, rtol=1e-5, atol=1e-7)
    assert x.grad.abs().sum() > 0


def test_guided_backprop_reports_the_largest_responses_over_the_searched_images(ckpts, tmp_path):
    result = _run("guided-backprop", ckpts, tmp_path)
    D, cfg, _ = load_net(ckpts["d"], "discriminator")
    data = load_dataset("digits", "train", image_size=32, channels=1)
    with torch.no_grad():
        images = torch.stack([data[i][0] for i in range(40)]).float() / 127.5 - 1
        act = D.forward_intermediates(images, ["conv3"])["conv3"]  # (40, 32, 4, 4)
    best = act.amax((2, 3)).max(0).values
    rows = {(r["model"], r["features"], r["metric"]): float(r["value"]) for r in result.rows}
    for c in range(3):
        assert rows[("trained-d", f"conv3/f{c}", "max_response")] == pytest.approx(best[c].item(), rel=1e-5)
    assert {m for m, _, _ in rows} == {"trained-d", "random-d"} and len(rows) == 2 * 3 * 2


# ---- memorisation --------------------------------------------------------------------------------

def test_faiss_nearest_neighbours_equal_brute_force():
    rng = np.random.default_rng(0)
    base, queries = rng.normal(size=(500, 24)).astype(np.float32), rng.normal(size=(40, 24)).astype(np.float32)
    dist, idx = nearest(base, queries, 4, chunk=64)
    full = np.sqrt(((queries[:, None].astype(np.float64) - base[None]) ** 2).sum(-1))
    assert np.array_equal(idx, np.argsort(full, 1)[:, :4])
    assert np.allclose(dist, np.sort(full, 1)[:, :4], rtol=1e-4)


def test_memorisation_pixel_distances_match_a_numpy_computation(ckpts, tmp_path):
    result = _run("memorisation", ckpts, tmp_path)
    G, cfg, _ = load_net(ckpts["g"], "generator")
    with torch.no_grad():
        fake = G(sample_z(30, cfg, torch.Generator().manual_seed(0)))
    fake = ((fake * 0.5 + 0.5) * 255 + 0.5).clamp(0, 255).floor() / 127.5 - 1  # 8-bit pixels, as saved
    data = load_dataset("digits", "train", image_size=32, channels=1)
    train = torch.stack([data[i][0] for i in range(len(data))]).float() / 127.5 - 1
    nn = torch.cdist(fake.flatten(1).double(), train.flatten(1).double()).min(1).values.numpy()
    rows = {(r["model"], r["features"], r["metric"]): float(r["value"]) for r in result.rows}
    assert rows[("generator", "pixels", "nn_distance_mean")] == pytest.approx(nn.mean(), rel=1e-4)
    assert rows[("generator", "pixels", "nn_distance_q50")] == pytest.approx(np.median(nn), rel=1e-4)
    ratio = rows[("generator", "all/max4", "nn_distance_mean")] / rows[("test-images", "all/max4", "nn_distance_mean")]
    assert rows[("generator/test", "all/max4", "nn_distance_mean")] == pytest.approx(ratio)


def test_memorisation_without_a_discriminator_is_a_one_line_error(ckpts, tmp_path):
    alone = tmp_path / "alone" / "g.pt"
    alone.parent.mkdir()
    shutil.copy(ckpts["g"], alone)
    other = DCGANConfig(image_size=64, nc=1, ngf=8, ndf=8)
    _, big_d = export_models(tmp_path / "big", other, Generator(other), Discriminator(other))
    for extra, expected in (([], f"{alone.parent / 'd.pt'} does not exist; pass --set discriminator=PATH"),
                            (["--set", f"discriminator={big_d}"], "takes 1x64x64 images, the generator draws 1x32x32"),
                            (["--set", f"discriminator={ckpts['g']}"], "holds a generator, expected a discriminator")):
        r = CliRunner().invoke(main, ["run", "memorisation", "--ckpt", str(alone), "--dataset", "digits",
                                      "--device", "cpu", "--results", str(tmp_path), *extra])
        assert r.exit_code == 2 and expected in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
