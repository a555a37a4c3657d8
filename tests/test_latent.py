"""latent-walk and vector-arithmetic (paper section 6) end to end on tiny generators, the walk's
interpolation and step measure against hand-computed values, and one-line errors for bad input."""
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.run import run
from bench.tasks.latent import max_step_ratio, walk
from dcgan.checkpoint import export_models, load_net
from dcgan.nets import Discriminator
from fixtures_tasks import varied_generator


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def tiny_generator(out, image_size: int = 32, nc: int = 1):
    """``varied_generator`` exported: its samples differ from z to z, so pictures can tell them apart."""
    G = varied_generator(image_size, nc)
    return export_models(out, G.cfg, G, Discriminator(G.cfg))[0]


def _grid_size(rows: int, cols: int, side: int, scale: int = 1) -> tuple[int, int]:
    """(width, height) of a save_grid-style picture: 2 px padding around and between tiles."""
    return scale * (cols * (side + 2) + 2), scale * (rows * (side + 2) + 2)


def _pixels(path, size=None) -> torch.Tensor:
    """A PNG's RGB pixels as an H x W x 3 int tensor, enlarged (nearest neighbour) to ``size`` if given."""
    image = Image.open(path).convert("RGB")
    return torch.from_numpy(np.array(image.resize(size, Image.NEAREST) if size else image)).int()


def test_max_step_ratio_by_hand():
    # one-pixel images 0, 1, 2, 3, 13: steps 1, 1, 1, 10 -> max 10 / mean 3.25
    assert max_step_ratio(torch.tensor([0.0, 1, 2, 3, 13])[:, None]) == pytest.approx(10 / 3.25)
    # the step is the L2 norm over all pixels: (0,0) -> (3,4) -> (3,5) steps 5 and 1 -> 5 / 3
    assert max_step_ratio(torch.tensor([[0.0, 0], [3, 4], [3, 5]])) == pytest.approx(5 / 3)
    assert max_step_ratio(torch.linspace(-1, 1, 9)[:, None, None]) == pytest.approx(1.0)  # even steps
    assert math.isnan(max_step_ratio(torch.zeros(4, 1, 2, 2)))


def test_walk_passes_through_its_points_and_slerp_keeps_the_norm():
    points = torch.eye(3)  # three orthogonal unit vectors
    for kind in ("linear", "spherical"):
        z = walk(points, 4, kind)
        assert z.shape == (1 + 2 * 4, 3)
        assert torch.allclose(z[::4], points, atol=1e-6)
    middle = walk(points, 2, "spherical")[1]
    assert torch.allclose(middle, torch.tensor([1.0, 1, 0]) / math.sqrt(2), atol=1e-6)  # on the circle
    assert walk(points, 2, "linear")[1].norm() == pytest.approx(math.sqrt(0.5))  # the chord's middle


@pytest.mark.parametrize("image_size,nc", [(32, 1), (64, 3)])
def test_latent_walk_writes_its_rows_and_pictures_deterministically(tmp_path, image_size, nc):
    g = tiny_generator(tmp_path / "ckpt", image_size, nc)
    settings = {"walks": "3", "points": "3", "steps": "2"}
    first, second = (run("latent-walk", ckpt=g, dataset="synthetic", device="cpu", overrides=settings,
                         results_dir=tmp_path / name) for name in ("a", "b"))
    assert [(r["features"], r["draw"], r["metric"]) for r in first.rows] == \
        [(kind, d, "max_step_ratio") for kind in ("linear", "spherical") for d in range(3)]
    assert all(float(r["value"]) >= 1 for r in first.rows)
    assert [r["value"] for r in first.rows] == [r["value"] for r in second.rows]
    other = run("latent-walk", ckpt=g, dataset="synthetic", device="cpu", seed=1, overrides=settings,
                results_dir=tmp_path / "c")
    assert [r["value"] for r in other.rows] != [r["value"] for r in first.rows]  # the seed draws the points
    for kind in ("linear", "spherical"):
        (png,) = (tmp_path / "a" / "latent-walk").glob(f"*/{kind}.png")
        assert Image.open(png).size == _grid_size(rows=3, cols=5, side=image_size)
        twin = tmp_path / "b" / png.relative_to(tmp_path / "a")
        assert png.read_bytes() == twin.read_bytes()


def test_sample_numbers_its_tiles(tmp_path):
    g = tiny_generator(tmp_path / "ckpt")
    assert _bench("sample", "--ckpt", g, "--samples", 10, "--device", "cpu", "--out", tmp_path / "n.png").exit_code == 0
    assert _bench("sample", "--ckpt", g, "--samples", 10, "--device", "cpu", "--no-numbers",
                  "--out", tmp_path / "plain.png").exit_code == 0
    size = _grid_size(rows=3, cols=4, side=32, scale=2)  # 32 px tiles enlarged to 64
    assert Image.open(tmp_path / "plain.png").size == _grid_size(rows=3, cols=4, side=32)
    assert Image.open(tmp_path / "n.png").size == size
    # the numbered grid is the plain one enlarged, except for a label in each tile's top-left corner
    numbered = _pixels(tmp_path / "n.png")
    changed = (numbered != _pixels(tmp_path / "plain.png", size)).any(-1)
    bright = (numbered >= 160).all(-1)  # the (antialiased) white digits on their black box
    corners = torch.zeros_like(changed)
    for i in range(10):
        x, y = 4 + (i % 4) * 68, 4 + (i // 4) * 68
        corners[y: y + 16, x: x + 20] = True
        assert (changed & bright)[y: y + 16, x: x + 20].any(), f"tile {i} has no number"
    assert not changed[~corners].any()


def _sampled(tmp_path, image_size=32, nc=1):
    g = tiny_generator(tmp_path / "ckpt", image_size, nc)
    r = _bench("sample", "--ckpt", g, "--samples", 16, "--device", "cpu", "--out", tmp_path / "grid.png")
    assert r.exit_code == 0, r.output
    return g, tmp_path / "grid.png.z.pt"


ARITHMETIC = ("concept_a=0,1,2", "concept_b=3,4,5", "concept_c=6,7,8", "left=9,10,11", "right=12,13,14")


def test_vector_arithmetic_end_to_end(tmp_path):
    g, z_file = _sampled(tmp_path)
    sets = [a for s in (f"z={z_file}", *ARITHMETIC) for a in ("--set", s)]
    for results in ("a", "b"):
        r = _bench("run", "vector-arithmetic", "--ckpt", g, "--dataset", "synthetic", "--device", "cpu", *sets,
                   "--results", tmp_path / results)
        assert r.exit_code == 0, r.output
    rows = run("vector-arithmetic", ckpt=g, dataset="synthetic", device="cpu", results_dir=tmp_path / "c",
               overrides=dict(s.split("=") for s in (f"z={z_file}", *ARITHMETIC))).rows
    norms = {r["features"]: float(r["value"]) for r in rows if r["metric"] == "z_norm"}
    rms = [float(r["value"]) for r in rows if r["metric"] == "rms_to_pixel_baseline"]
    assert len(rms) == 9 and json.loads(rows[0]["details"])["z_sha256"]

    # the numbers, computed independently from the z file and the generator
    z = torch.load(z_file).flatten(1)
    a, b, c = (z[i: i + 3].mean(0) for i in (0, 3, 6))
    assert norms["a"] == pytest.approx(float(a.norm()), rel=1e-5)
    assert norms["a-b+c"] == pytest.approx(float((a - b + c).norm()), rel=1e-5)
    assert norms["right-left"] == pytest.approx(float((z[12:15].mean(0) - z[9:12].mean(0)).norm()), rel=1e-5)
    G, _, _ = load_net(g, "generator")
    with torch.no_grad():
        images = G(z.view(16, -1, 1, 1))
        y = G((a - b + c).view(1, -1, 1, 1))[0]
    pixel = images[0:3].mean(0) - images[3:6].mean(0) + images[6:9].mean(0)
    assert rms[0] == pytest.approx(float((y - pixel).pow(2).mean().sqrt()), rel=1e-4)

    pictures = {}
    for results in ("a", "b"):
        for png in sorted((tmp_path / results / "vector-arithmetic").glob("*/*.png")):
            pictures.setdefault(png.name, []).append(png.read_bytes())
    assert set(pictures) == {"arithmetic.png", "turn.png"}
    assert all(first == second for first, second in pictures.values())  # same seed, same pictures
    (turn,) = (tmp_path / "a" / "vector-arithmetic").glob("*/turn.png")
    assert Image.open(turn).size == _grid_size(rows=8, cols=8, side=32)
    # scale 0 leaves a row's sample as it was: the first 8 tiles of `bench sample` with the same seed
    _bench("sample", "--ckpt", g, "--samples", 16, "--device", "cpu", "--no-numbers", "--out", tmp_path / "plain.png")
    sampled, turned = _pixels(tmp_path / "plain.png"), _pixels(turn)
    for i in range(8):
        tile = sampled[2 + (i // 4) * 34:][:32, 2 + (i % 4) * 34:][:, :32]
        assert (tile - turned[2 + i * 34:][:32, 2:34]).abs().max() <= 1
    (sheet,) = (tmp_path / "a" / "vector-arithmetic").glob("*/arithmetic.png")
    assert Image.open(sheet).height == 5 * 2 * (32 + 4)  # rows A, B, C, z result, pixels at 64 px tiles


def test_vector_arithmetic_turn_alone_on_an_rgb_64px_generator(tmp_path):
    g, z_file = _sampled(tmp_path, image_size=64, nc=3)
    result = run("vector-arithmetic", ckpt=g, dataset="synthetic", device="cpu", results_dir=tmp_path / "r",
                 overrides={"z": str(z_file), "left": "0,1,2", "right": "3,4,5", "turn_rows": "2",
                            "turn_steps": "3", "turn_scale": "-1,1"})
    assert [(r["metric"], r["features"]) for r in result.rows] == [("z_norm", "right-left")]
    (turn,) = (tmp_path / "r" / "vector-arithmetic").glob("*/*.png")
    assert turn.name == "turn.png" and Image.open(turn).size == _grid_size(rows=2, cols=3, side=64)


@pytest.mark.parametrize("sets,expected", [
    (["z={tmp}/missing.pt", *ARITHMETIC], "z={tmp}/missing.pt: no such file"),
    (["z={z}", "concept_a=0,1,99", "concept_b=3,4,5", "concept_c=6,7,8"], "concept_a=0,1,99: index 99 is out of range for the 16 z vectors"),
    (["z={z}", "concept_a=0,1", "concept_b=3,4,5", "concept_c=6,7,8"], "concept_a=0,1: expected at least 3 sample indices"),
    (["z={tmp}/nz7.pt", *ARITHMETIC], "holds 7-dimensional z vectors, the generator takes nz=100"),
    (["z={tmp}/grid.png", *ARITHMETIC], "not a z file"),
    (["z={z}", "concept_a=0,1,2", "concept_b=3,4,5"], "concept_a, concept_b given without concept_c"),
    (["z={z}"], "vector-arithmetic needs concept_a=, concept_b=, concept_c="),
    ([*ARITHMETIC], "vector-arithmetic needs z=PATH"),
    (["z={z}", "left=0,1,2", "right=3,4,5", "turn_scale=1"], "expected two scales"),
])
def test_vector_arithmetic_bad_input_is_one_line(tmp_path, sets, expected):
    g, z_file = _sampled(tmp_path)
    torch.save(torch.randn(16, 7, 1, 1), tmp_path / "nz7.pt")
    args = [a for s in sets for a in ("--set", s.format(tmp=tmp_path, z=z_file))]
    r = _bench("run", "vector-arithmetic", "--ckpt", g, "--dataset", "synthetic", "--device", "cpu", *args,
               "--results", tmp_path / "results")
    assert r.exit_code == 2, r.output
    assert expected.format(tmp=tmp_path) in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "results" / "vector-arithmetic.csv").exists()


def test_latent_walk_bad_input_is_one_line(tmp_path):
    g = tiny_generator(tmp_path / "ckpt")
    for sets, expected in ((["interpolations=linear,cubic"], "expected some of linear, spherical"),
                           (["points=1"], "points=1: expected an integer >= 2")):
        r = _bench("run", "latent-walk", "--ckpt", g, "--dataset", "synthetic", "--device", "cpu",
                   *[a for s in sets for a in ("--set", s)], "--results", tmp_path / "results")
        assert r.exit_code == 2 and expected in r.output and len(r.output.strip().splitlines()) == 1, r.output
