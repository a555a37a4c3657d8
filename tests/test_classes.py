"""The class-aware tasks (class-grid, cas, intra-fid) on generators whose answer is known.

The generators (tests/fixtures_classes.py) draw real digits: at their label (a faithful conditional
generator), ignoring it (label-blind), ignoring z, or with no label at all (unconditional). CAS must
put the label-blind one near chance and the faithful one near the ceiling trained on real digits;
intra-FID must equal the ``fid`` task run by hand on each class's images; the class grid must put
class i's image of z_j at row i, column j.
"""
import json
import statistics

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from bench.features import to_uint8
from bench.run import run
from dcgan.data import load_dataset
from dcgan.generate import balanced_labels, generate
from dcgan.nets import indexed_z, sample_z
from fixtures_classes import Emitter, serve
from fixtures_fid import write_tiny_weights
from fixtures_tasks import tiny_checkpoints

K = 10  # the digits' classes
CPU = torch.device("cpu")
# a recipe that trains the small CNN to ~90% on 30 digits a class in 2 s (the default is for full data sets)
RECIPE = {"per_class": 30, "epochs": 30, "batch_size": 64, "lr": 3e-3, "width": 8}


def _bench(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def generators(tmp_path, monkeypatch):
    """Paths runs load the digit emitters from: {mode: path}."""
    nets = {tmp_path / "g" / f"{mode}.pt": Emitter("digits", mode)
            for mode in ("faithful", "label_blind", "z_blind", "unconditional")}
    serve(monkeypatch, nets)
    return {path.stem: path for path in nets}


def _values(rows, **where) -> dict[str, float]:
    return {r["metric"]: float(r["value"]) for r in rows if all(r[k] == v for k, v in where.items())}


# ---- cas ---------------------------------------------------------------------------------------------

def test_cas_puts_a_label_blind_generator_at_chance_and_a_faithful_one_at_the_ceiling(generators, tmp_path):
    results = tmp_path / "results"
    faithful = run("cas", ckpt=generators["faithful"], dataset="digits", device="cpu", results_dir=results,
                   overrides={**RECIPE, "unconditional": str(generators["unconditional"])}).rows
    blind = run("cas", ckpt=generators["label_blind"], dataset="digits", device="cpu", results_dir=results,
                overrides=RECIPE).rows
    ceiling = _values(faithful, model="real")["accuracy"]
    assert ceiling > 0.75  # the recipe learns the digits: the comparison below means something
    assert _values(faithful, model="generator")["accuracy"] > ceiling - 0.08  # real digits at their labels
    assert _values(blind, model="generator")["accuracy"] < 1 / K + 0.1  # labels that say nothing: chance
    # the ceiling is the same classifier on the same real images in both runs: the seed fixes everything
    assert _values(blind, model="real") == _values(faithful, model="real")
    assert {r["model"] for r in blind} == {"generator", "real"}  # no comparison asked for: none measured

    # the unconditional generator's digits, sorted into classes by the real-trained classifier
    unconditional = [r for r in faithful if r["model"] == "unconditional-g"]
    details = json.loads(unconditional[0]["details"])
    assert unconditional[0]["ckpt"] == str(generators["unconditional"])  # its rows name the generator measured
    kept = details["class_counts"]
    assert sum(kept) <= K * RECIPE["per_class"] and max(kept) == RECIPE["per_class"]
    assert _values(unconditional)["accuracy"] > 0.5

    # per-class accuracies, recomputed from the overall one: the test split's class sizes weight them
    test_y = load_dataset("digits", "test").labels
    counts = torch.bincount(test_y, minlength=K).numpy()
    for model in ("generator", "real", "unconditional-g"):
        values = _values(faithful, model=model)
        per = np.array([values[f"accuracy_class_{c}"] for c in range(K)])
        assert (per * counts).sum() / counts.sum() == pytest.approx(values["accuracy"], abs=1e-6)
    assert len(pd.read_csv(results / "cas.csv")) == len(faithful) + len(blind) == (3 + 2) * (1 + K)


# ---- intra-fid ---------------------------------------------------------------------------------------

def _save_pngs(images: torch.Tensor, folder):
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        Image.fromarray(x.expand(3, -1, -1).permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")


def _fid_by_hand(tmp_path, weights, fake: torch.Tensor, real: torch.Tensor, name: str) -> float:
    """`bench run fid` on a folder of fake images against a folder of real ones."""
    _save_pngs(fake, tmp_path / name / "fake")
    _save_pngs(real, tmp_path / name / "real")
    r = _bench("run", "fid", "--fake", f"folder:{tmp_path / name / 'fake'}", "--dataset", "folder", "--data-root",
               tmp_path / name / "real", "--set", "metrics=fid", "--set", "extractor=tiny", "--set",
               f"inception_weights={weights}", "--device", "cpu", "--results", tmp_path / name / "results")
    assert r.exit_code == 0, r.output
    return float(pd.read_csv(tmp_path / name / "results" / "fid.csv").value.iloc[0])


def test_intra_fid_equals_the_fid_task_run_by_hand_on_each_class(generators, tmp_path):
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    inception = {"extractor": "tiny", "inception_weights": str(weights), "per_class": 20}
    rows = run("intra-fid", ckpt=generators["faithful"], dataset="digits", device="cpu", batch_size=64,
               results_dir=tmp_path / "results", overrides=inception).rows
    ours = _values(rows)
    assert json.loads(rows[0]["details"])["real_features"] == "extracted"

    G = Emitter("digits", "faithful")
    labels = balanced_labels(20 * K, K)
    fake = to_uint8(generate(G, indexed_z(range(20 * K), G.cfg, 0), batch_size=64,
                             device=CPU, labels=labels))
    real = load_dataset("digits", "train", image_size=32, channels=1)
    per = []
    for c in range(K):
        per.append(_fid_by_hand(tmp_path, weights, fake[labels == c], real.images[real.labels == c], f"class{c}"))
        assert ours[f"fid_class_{c}"] == pytest.approx(per[-1], rel=1e-5, abs=1e-6)
    assert ours["intra_fid"] == pytest.approx(statistics.fmean(per), rel=1e-5)
    assert ours["fid"] == pytest.approx(_fid_by_hand(tmp_path, weights, fake, real.images, "whole"), rel=1e-5)


def test_intra_fid_and_fid_share_the_real_features_and_the_fid_of_the_balanced_sample(generators, tmp_path):
    """fid first: its real features serve intra-fid, and a conditional G's fid sample is intra-fid's whole sample."""
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    inception = {"extractor": "tiny", "inception_weights": str(weights)}
    options = dict(ckpt=generators["faithful"], dataset="digits", device="cpu", subset=300,
                   results_dir=tmp_path / "results")
    fid = run("fid", **options, overrides={**inception, "samples": 12 * K, "metrics": ("fid",)}).rows
    rows = run("intra-fid", **options, overrides={**inception, "per_class": 12}).rows
    assert json.loads(rows[0]["details"])["real_features"] == "cached"
    assert _values(rows)["fid"] == pytest.approx(float(fid[0]["value"]), rel=1e-6)


def test_intra_fid_sees_wrong_classes_that_the_whole_sample_fid_does_not(generators, tmp_path):
    weights = write_tiny_weights(tmp_path / "tiny.pt")
    found = {mode: _values(run("intra-fid", ckpt=generators[mode], dataset="digits", device="cpu",
                               results_dir=tmp_path / "results",
                               overrides={"extractor": "tiny", "inception_weights": str(weights),
                                          "per_class": 100}).rows)
             for mode in ("faithful", "label_blind")}
    # (at 30 a class the faithful sample's intra-FID is mostly small-count bias: the ratio below ranged 3-9
    # over seeds 0-5; at 100 it is 11-25)
    # both draw real digits of every class in the same proportions: the whole sample cannot tell them apart
    assert found["label_blind"]["fid"] < 3 * found["faithful"]["fid"]
    assert found["label_blind"]["intra_fid"] > 5 * found["faithful"]["intra_fid"]


# ---- class-grid --------------------------------------------------------------------------------------

def _tiles(png, rows: int, columns: int, side: int) -> torch.Tensor:
    """The sample tiles of a captioned grid: rows of tiles stacked, each framed by GRID_PAD pixels, the grid
    the picture's right part, enlarged by a whole factor; returns (rows, columns, 3, side, side) uint8."""
    from bench.pictures import LEGIBLE
    from dcgan.grids import GRID_PAD

    picture = torch.from_numpy(np.array(Image.open(png).convert("RGB"))).permute(2, 0, 1)
    scale = -(-LEGIBLE // side)
    assert picture.shape[1] == rows * (side + 2 * GRID_PAD) * scale
    left = picture.shape[2] - (columns * (side + GRID_PAD) + GRID_PAD) * scale
    out = torch.empty(rows, columns, 3, side, side, dtype=torch.uint8)
    for i in range(rows):
        for j in range(columns):
            y = (i * (side + 2 * GRID_PAD) + GRID_PAD) * scale
            x = left + (GRID_PAD + j * (side + GRID_PAD)) * scale
            out[i, j] = picture[:, y: y + side * scale: scale, x: x + side * scale: scale]
    return out


def test_class_grid_puts_class_i_at_z_j_in_row_i_column_j(generators, tmp_path):
    result = run("class-grid", ckpt=generators["faithful"], device="cpu", results_dir=tmp_path / "results",
                 overrides={"columns": 4, "classes": (7, 1, 3)})
    png = next((tmp_path / "results" / "class-grid").glob("*/grid.png"))
    G = Emitter("digits", "faithful")
    z = sample_z(4, G.cfg, torch.Generator().manual_seed(0))
    tiles = _tiles(png, 3, 4, 32)
    for i, c in enumerate((7, 1, 3)):
        expected = to_uint8(generate(G, z, batch_size=4, device=CPU, labels=torch.full((4,), c)))
        assert torch.equal(tiles[i], expected.expand(-1, 3, -1, -1)), f"row {i} is not class {c}"
    shares = _values(result.rows)
    assert shares["class_share"] + shares["z_share"] + shares["interaction_share"] == pytest.approx(1)
    assert json.loads(result.rows[0]["details"])["classes"] == [7, 1, 3]


@pytest.mark.parametrize("mode, zero", [("label_blind", "class_share"), ("z_blind", "z_share")])
def test_class_grid_shares_are_zero_for_the_input_a_generator_ignores(generators, tmp_path, mode, zero):
    shares = _values(run("class-grid", ckpt=generators[mode], dataset="digits", device="cpu",
                         results_dir=tmp_path / "results").rows)
    assert shares[zero] == pytest.approx(0, abs=1e-9)
    assert all(v > 0.01 for k, v in shares.items() if k != zero and k != "interaction_share")


# ---- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["class-grid", "cas", "intra-fid"])
def test_an_unconditional_generator_is_refused_in_one_line(task, tmp_path):
    g, _ = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    r = _bench("run", task, "--ckpt", g, "--dataset", "digits", "--device", "cpu", "--results", tmp_path / "res")
    assert r.exit_code == 2
    assert r.output.strip().count("\n") == 0 and "unconditional generator" in r.output, r.output
    assert not (tmp_path / "res").exists() or not list((tmp_path / "res").rglob("*.csv"))


@pytest.mark.parametrize("args, message", [
    (["class-grid", "--set", "classes=3,10"], "class 10 is out of range"),
    (["class-grid", "--set", "classes=3"], "at least 2 classes"),
    (["class-grid", "--set", "columns=1"], "columns=1"),
    (["cas", "--set", "per_class=1000"], "has only"),
    (["cas", "--set", "unconditional={faithful}"], "is a conditional generator"),
    (["cas", "--set", "unconditional={missing}"], "no such generator checkpoint"),
    (["cas", "--dataset", "imagenet"], "conditioned on 10 classes, data set 'imagenet' has 1000"),
    (["intra-fid", "--dataset", "lsun"], "has no labels"),
    (["intra-fid", "--set", "per_class=1"], "per_class=1"),
])
def test_bad_input_is_one_line_and_exit_2(generators, tmp_path, args, message):
    args = [a.format(faithful=generators["faithful"], missing=tmp_path / "none.pt") for a in args]
    dataset = [] if "--dataset" in args else ["--dataset", "digits"]
    r = _bench("run", *args, "--ckpt", generators["faithful"], *dataset, "--device", "cpu", "--results",
               tmp_path / "res")
    assert r.exit_code == 2, r.output
    assert r.output.strip().count("\n") == 0 and message in r.output, r.output
