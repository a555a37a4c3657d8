"""Forgetting to draw an object: drop the generator feature maps that code for it (paper, section 6.3.1).

The paper drew boxes around windows in 150 bedroom samples, fitted a logistic regression telling
activations of G's second-highest convolution layer inside the boxes (positives) from random ones
of the same images outside (negatives), and dropped every feature map with a positive weight from
new samples: windows vanished or turned into other objects. Here:

1. ``n`` samples are drawn from the run's seed: the same z, so the same images, as
   ``bench sample --ckpt G --n N --seed S`` (index = position in that grid, row by row). Every run
   writes them as a numbered sheet, ``samples.png``, with the boxes outlined; without ``boxes`` that
   sheet is the run's result and the run ends saying how to draw boxes on it and go on.
2. ``boxes``: a CSV with columns ``sample,x0,y0,x1,y1`` in pixels of the generated image, x1 and y1
   exclusive (a sample may have several boxes). A location of the layer's grid is inside when its
   centre is inside a box of its sample.
3. The boxed samples are split (seeded) into a training and a held-out part. Logistic regression
   (scikit-learn, standardised activations) on the training part: every inside location and
   ``negatives`` times as many random outside locations of the same samples.
4. Maps with a positive weight are dropped (``dcgan.generate``'s masks); on the held-out
   samples the run measures the regression's accuracy, the share of the layer's activation the
   dropped maps carried inside and outside the boxes, and the mean change of the image's pixels
   (grey levels in [0, 1]) inside and outside the boxes.

``forget.png`` shows ``show`` samples, held-out boxed ones first, each beside its edited twin.
"""
from __future__ import annotations

import csv
import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.pictures import GREEN, contact_sheet, numbered_sheet
from bench.results import Measurement
from bench.tasks.base import TASKS, NextStep, RunContext, Task
from dcgan.errors import ConfigError
from dcgan.nets import sample_z
from dcgan.params import Params, param

BOX_COLUMNS = ("sample", "x0", "y0", "x1", "y1")
SHEET_COLUMNS = 10  # samples per row of the numbered sheet
SHEET_TILE = 128  # least tile side of the sheet: 4 screen pixels per pixel of a 32 px sample, to read coordinates off
PAIRS_PER_ROW = 4  # (sample, edited) pairs per row of forget.png


@dataclass(frozen=True)
class ForgetParams(Params):
    boxes: str | None = param(None, "CSV of sample,x0,y0,x1,y1 (pixels of the numbered samples); none: write the "
                                    "numbered samples to draw boxes on")
    samples: int = param(150, "samples drawn from the seed; paper: boxes drawn on 150 samples (52 held windows)",
                         low=2)
    layer: str | None = param(None, "G layer whose maps are dropped; none: the second highest, the paper's")
    negatives: float = param(1.0, "outside locations per inside one; paper: random samples from the same images",
                             low=0, low_open=True)
    holdout: float = param(0.25, "share of the boxed samples kept out of the fit (the paper reports no score)",
                           low=0, low_open=True, high=0.99)
    logreg_c: float = param(1.0, "inverse L2 strength of the logistic regression (scikit-learn's default; the "
                                 "paper gives none)", low=0, low_open=True)
    show: int = param(16, "samples drawn with and without the dropped maps", low=1)


@TASKS.register("forget")
class Forget(Task):
    summary = "drop the G feature maps a logistic regression ties to boxed objects, redraw (paper 6.3.1)"
    paper = "6.3.1"
    smoke = {"samples": 12, "show": 4}  # without boxes: the first step, the numbered sheet
    needs = "generator"
    reads_data = False  # the samples are the data
    user_input = "boxes drawn around an object on its numbered samples (--set boxes=CSV)"
    section = "learning"
    headline = ("heldout_accuracy",)
    pictures = {"samples.png": "the numbered samples, the boxes outlined in red",
                "forget.png": "samples beside their twins drawn without the dropped feature maps: the boxed object "
                              "should vanish or turn into something else, the rest stay (paper 6.3.1)"}
    Params = ForgetParams

    def run(self, ctx: RunContext, p: ForgetParams) -> list[Measurement] | NextStep:
        G, cfg = ctx.net("generator")
        layer = p.layer or G.layer_names[-2]
        z = sample_z(p.samples, cfg, torch.Generator().manual_seed(ctx.seed))
        images, acts = ctx.generate(z, layers=(layer,))
        acts = acts[layer]
        boxes = read_boxes(p.boxes, p.samples, cfg.image_size) if p.boxes else []
        sheet = numbered_sheet(images, ctx.artifact("samples.png"), columns=SHEET_COLUMNS, legible=SHEET_TILE,
                               boxes=boxes)
        if not boxes:
            return NextStep(_how_to_go_on(ctx, p, sheet, cfg.image_size))

        in_box = box_mask(boxes, p.samples, cfg.image_size)  # (n, S, S) pixels
        centres = ((np.arange(acts.shape[-1]) + 0.5) * cfg.image_size / acts.shape[-1]).astype(int)
        inside = in_box[:, centres][:, :, centres]  # (n, s, s): locations whose centre lies in a box
        boxed = np.unique([b[0] for b in boxes])
        if len(boxed) < 2:
            raise ConfigError(f"boxes file {p.boxes}: boxes on at least 2 samples are needed (one is held out)")
        rng = np.random.default_rng(ctx.seed)
        n_held = min(len(boxed) - 1, max(1, round(p.holdout * len(boxed))))
        held = np.sort(rng.choice(boxed, n_held, replace=False))
        X, y = _locations(acts, inside, np.setdiff1d(boxed, held), p.negatives, rng)
        X_held, y_held = _locations(acts, inside, held, p.negatives, rng)
        if not (y.any() and y_held.any()):
            raise ConfigError(f"boxes file {p.boxes}: the boxes of the fitted or the held-out samples hold no centre "
                              f"of a {layer} location (a {acts.shape[-1]}x{acts.shape[-1]} grid): draw larger boxes")

        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # standardising divides each weight by a positive scale: the signs, which choose the maps, are kept
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=p.logreg_c, max_iter=2000)).fit(X, y)
        drop = clf[-1].coef_[0] > 0
        edited = ctx.generate(z, masks={layer: torch.from_numpy(~drop).float()})

        h = torch.from_numpy(held)
        share = acts[h][:, torch.from_numpy(drop)].sum(1) / acts[h].sum(1).clamp_min(1e-12)  # per location
        change = (edited[h] - images[h]).abs().mean(1) / 2  # per pixel, in grey levels of [0, 1]
        loc_in, pix_in = torch.from_numpy(inside[held]), torch.from_numpy(in_box[held])
        values = {
            "maps_dropped": drop.sum(), "maps_total": len(drop),
            "train_accuracy": clf.score(X, y), "heldout_accuracy": clf.score(X_held, y_held),
            "heldout_chance": max(y_held.mean(), 1 - y_held.mean()),
            "activation_dropped_inside": share[loc_in].mean(), "activation_dropped_outside": share[~loc_in].mean(),
            "pixel_change_inside": change[pix_in].mean(), "pixel_change_outside": change[~pix_in].mean(),
        }
        _pairs_sheet(images, edited, held, p.show, int(drop.sum()), ctx.artifact("forget.png"))
        extra = {"layer": layer, "boxes_count": len(boxes), "boxed_samples": len(boxed), "heldout_samples": n_held,
                 "fit_locations": len(y), "fit_positives": int(y.sum()), "heldout_locations": len(y_held),
                 "heldout_positives": int(y_held.sum()), "dropped_maps": np.flatnonzero(drop).tolist()}
        return [Measurement(k, float(v), split="samples", model="generator", features=layer, details=extra)
                for k, v in values.items()]


def read_boxes(path: str, n: int, side: int) -> list[tuple[int, int, int, int, int]]:
    """(sample, x0, y0, x1, y1) rows of a boxes CSV, each checked: one-line errors name the file and line."""
    if not Path(path).is_file():
        raise ConfigError(f"boxes file {path} does not exist")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in BOX_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(f"boxes file {path}: missing column(s) {', '.join(missing)}; "
                              f"expected {','.join(BOX_COLUMNS)}")
        boxes = []
        for row in reader:
            where = f"boxes file {path}, line {reader.line_num}"
            try:
                i, x0, y0, x1, y1 = (int(row[c]) for c in BOX_COLUMNS)
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: expected integers in {','.join(BOX_COLUMNS)}") from None
            if not 0 <= i < n:
                raise ConfigError(f"{where}: sample {i} is outside 0..{n - 1} (n={n} samples are drawn)")
            if not (0 <= x0 < x1 <= side and 0 <= y0 < y1 <= side):
                raise ConfigError(f"{where}: box ({x0}, {y0}, {x1}, {y1}) is not inside the {side}x{side} image "
                                  "with x0 < x1 and y0 < y1 (x1, y1 exclusive)")
            boxes.append((i, x0, y0, x1, y1))
    if not boxes:
        raise ConfigError(f"boxes file {path} holds no boxes")
    return boxes


def box_mask(boxes, n: int, side: int) -> np.ndarray:
    """(n, side, side) bool: the pixels inside some box of their sample."""
    mask = np.zeros((n, side, side), dtype=bool)
    for i, x0, y0, x1, y1 in boxes:
        mask[i, y0:y1, x0:x1] = True
    return mask


def _locations(acts: torch.Tensor, inside: np.ndarray, samples: np.ndarray, negatives: float,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Activation vectors (rows) of every inside location of ``samples`` (label 1) and of
    ``negatives`` times as many random outside ones of the same samples (label 0)."""
    chosen = np.zeros_like(inside)
    chosen[samples] = True
    pos = np.argwhere(inside & chosen)
    out = np.argwhere(~inside & chosen)
    neg = out[np.sort(rng.choice(len(out), min(len(out), round(negatives * len(pos))), replace=False))]
    where = np.concatenate([pos, neg])
    X = acts[where[:, 0], :, where[:, 1], where[:, 2]].numpy()
    return X, np.r_[np.ones(len(pos), int), np.zeros(len(neg), int)]


def _how_to_go_on(ctx: RunContext, p: ForgetParams, sheet: Path, side: int) -> str:
    """What to do after the first step: draw boxes on the numbered sheet, then run again with them
    (the command repeats every setting that chose the samples and the layer)."""
    command = ["bench", "run", "forget", "--ckpt", str(ctx.ckpt), "--seed", str(ctx.seed)]
    if ctx.precision != "fp32":
        command += ["--precision", ctx.precision]
    for f in dataclasses.fields(p):
        if f.name != "boxes" and getattr(p, f.name) != f.default:
            command += ["--set", f"{f.name}={getattr(p, f.name)}"]
    return (f"forget: the {p.samples} numbered samples are in {sheet}. Draw boxes around the object G should "
            f"forget, on at least 2 samples, and list them in a CSV with the header {','.join(BOX_COLUMNS)}: "
            f"one row per box, sample = the tile's number, x0,y0,x1,y1 = pixels of the {side}x{side} sample "
            f"(x1 and y1 exclusive). Then run:\n  {shlex.join([*command, '--set', 'boxes=boxes.csv'])}")


def _pairs_sheet(images: torch.Tensor, edited: torch.Tensor, held: np.ndarray, show: int, dropped: int,
                 path: Path) -> None:
    """``show`` samples, the held-out boxed ones first, each beside its twin drawn without the dropped maps."""
    from bench.features import to_uint8

    held = set(held.tolist())
    order = [*sorted(held), *(i for i in range(len(images)) if i not in held)][:show]
    tiles = [[(to_uint8(images[i]), f"#{i}" + (" held out" if i in held else ""), GREEN if i in held else None),
              (to_uint8(edited[i]), f"-{dropped} maps", None)] for i in order]
    rows = [sum(tiles[s: s + PAIRS_PER_ROW], []) for s in range(0, len(tiles), PAIRS_PER_ROW)]
    contact_sheet(rows, path, tile=max(96, images.shape[-1]))
