"""One row per class, one column per fixed z: does the label carry the class and z the style?

A conditional generator draws ``columns`` z (from the run's seed) at every class shown: row ``i`` is
class ``classes[i]``, column ``j`` the same ``z_j`` in every row. Down a column the class should
change and the style stay (a digit's slant, an object's pose and colours); along a row the style
should change and the class stay. The picture (``grid.png``) is the result; the rows beside it
split the grid's pixel variance two ways, as a two-way analysis of variance without replication
(Fisher 1925) over the pixels: for tiles ``x_ij`` with grand mean ``m``, row means ``r_i`` and
column means ``c_j``,

- ``class_share`` = columns x sum_i |r_i - m|^2 / sum_ij |x_ij - m|^2: how much of what changes over
  the grid the label explains. 0 exactly when every row is the same image row (the label is
  ignored); near 1 when z changes nothing;
- ``z_share`` = rows x sum_j |c_j - m|^2 / sum_ij |x_ij - m|^2: what z explains the same way in every
  class (a shared style: stroke width, brightness, position);
- ``interaction_share`` = the rest: z acting differently per class (a style expressed in the class's
  own way; also whatever the class and z do together that no one row or column carries);
- ``grid_variance`` = sum_ij |x_ij - m|^2 over the number of pixel values (images in [-1, 1]): how much
  varies at all. A grid of one image repeated (a generator that collapsed) has 0 and no shares.

Pixels are a crude space for style: the shares say which input moves the image, not what it means.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.pictures import captioned_rows
from bench.results import Measurement
from bench.tasks.base import TASKS, ConditionalTask, RunContext, Workload
from dcgan.data import resolved_spec
from dcgan.errors import ConfigError
from dcgan.generate import class_rows
from dcgan.nets import sample_z
from dcgan.params import Params, param


@dataclass(frozen=True)
class ClassGridParams(Params):
    columns: int = param(10, "fixed z, one column each, the same z in every row (10: a square grid of 10 classes)",
                         low=2)
    classes: tuple[int, ...] = param((), "the classes shown, one row each, top to bottom; empty: every class", low=0)


def variance_shares(grid: torch.Tensor) -> dict[str, float]:
    """``grid_variance``, the mean squared deviation of a (rows, columns, ...) grid's pixels from their mean
    tile, and, when it is not 0, its ``class_share``, ``z_share`` and ``interaction_share``: the two-way
    decomposition of the sum of squares (the module's docstring). A grid of one image repeated has no
    shares to give (0 / 0): its variance row says so."""
    x = grid.flatten(2).double()
    mean = x.mean((0, 1))
    total = (x - mean).pow(2).sum()
    out = {"grid_variance": float(total / x.numel())}
    if total > 0:
        rows = x.shape[1] * (x.mean(1) - mean).pow(2).sum() / total
        cols = x.shape[0] * (x.mean(0) - mean).pow(2).sum() / total
        out.update(class_share=float(rows), z_share=float(cols), interaction_share=float(1 - rows - cols))
    return out


@TASKS.register("class-grid")
class ClassGrid(ConditionalTask):
    """Rows (model ``generator``, ``features`` pixels): ``grid_variance`` and ``class_share``, ``z_share``,
    ``interaction_share``. Picture: ``grid.png``, each row captioned with its class."""

    summary = "a conditional G's classes (rows) at fixed z (columns): does the label carry the class, z the style?"
    Params = ClassGridParams
    reads_data = False  # G alone; --dataset, when given, is checked to have G's number of classes
    smoke = {"columns": 3}
    section = "classes"
    headline = ("class_share",)
    pictures = {"grid.png": "one row per class, one column per fixed z: down a column the class should change and "
                            "the style stay, along a row the style change and the class stay"}

    @classmethod
    def workload(cls, p: ClassGridParams, sizes: dict[str, int]) -> Workload:
        return Workload(g_images=p.columns * (len(p.classes) or sizes.get("classes", 0)))

    def run(self, ctx: RunContext, p: ClassGridParams) -> list[Measurement]:
        G, cfg = ctx.net("generator")
        K = G.num_classes
        classes = p.classes or tuple(range(K))
        if bad := [c for c in classes if c >= K]:
            raise ConfigError(f"classes={','.join(map(str, p.classes))}: class {bad[0]} is out of range, the "
                              f"generator draws classes 0 to {K - 1}")
        if len(classes) < 2:
            raise ConfigError(f"classes={','.join(map(str, p.classes))}: expected at least 2 classes, one row each")
        z, labels = class_rows(sample_z(p.columns, cfg, torch.Generator().manual_seed(ctx.seed)), K)
        shown = torch.tensor(classes)  # the rows asked for, in their order
        z, labels = z.view(K, p.columns, *z.shape[1:])[shown].flatten(0, 1), labels.view(K, -1)[shown].flatten()
        images = ctx.generate(z, labels)
        grid = images.view(len(classes), p.columns, *images.shape[1:])
        names = resolved_spec(ctx.dataset, ctx.data_root).class_names if ctx.dataset else ()
        captioned_rows([(f"{c} {names[c]}" if names else f"class {c}", row) for c, row in zip(classes, grid)],
                       ctx.artifact("grid.png"))
        details = {"classes": list(classes), "columns": p.columns}
        return [Measurement(metric, value, split="", model="generator", features="pixels", details=details)
                for metric, value in variance_shares(grid).items()]
