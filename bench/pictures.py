"""The pictures the tasks draw, each kind drawn one way and written atomically.

- ``numbered_sheet``: samples in the layout of the core's sample grids (``dcgan.grids.grid_image``;
  plain grids are written with ``dcgan.grids.save_grid``), enlarged to legible tiles, each tile's
  index in its corner and boxes optionally outlined: `bench sample`'s grid and forget's samples.
- ``captioned_rows``: rows of samples in that layout, a caption left of each (vector-arithmetic).
- ``contact_sheet``: any images as tiles with a caption under each and an optional frame (forget's
  pairs, memorisation's neighbours, dedup's clusters, guided-backprop's maps).
- ``plot_vs_step``, for a run that measured every checkpoint of a training run: one panel per metric,
  three to a row, a metric's ``_std`` drawn as its error bars (FID falling as training goes on is the
  point of the plot), x = the training step the checkpoint
  was exported at, or its epoch when the checkpoint does not record steps (pytorch/examples' files).
  Drawn with matplotlib's Agg backend (no display).
- ``plot_training_log``: a training run's ``log.csv`` against the step, its columns grouped into panels as
  its model family says (``Family.log_panels``), every other column in a panel of its own.
- ``plot_bars``: groups of bars with error bars (a report card's probe accuracy per D layer).
- ``plot_curve``: one curve with error bars and dashed reference levels (a report card's probe accuracy
  against the epoch, the baselines as levels).
- ``save_png`` and ``save_figure``: how a PIL image and a matplotlib figure are written.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import torch

from bench.results import Measurement
from dcgan.fsutil import atomic_path
from dcgan.grids import GRID_PAD, grid_image

GREEN, RED = (0, 160, 0), (200, 0, 0)
LEGIBLE = 64  # sample tiles smaller than this are enlarged (nearest neighbour) before text is drawn on them


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed), imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """A matplotlib figure as a PNG, written atomically, then closed."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    pyplot().close(fig)
    return path


def save_png(picture, path: Path) -> Path:
    """A PIL image as a PNG, written atomically."""
    with atomic_path(path) as tmp:
        picture.save(tmp, format="PNG")
    return path


def plot_vs_step(measurements: list[Measurement], path: Path, title: str = "") -> Path:
    """One panel per metric against the step, at most three to a row so each stays legible; a metric
    ``X_std`` is not a panel of its own but the error bars of ``X`` (KID's std over its subsets)."""
    plt = pyplot()
    axis = "step" if all(m.details.get("step") is not None for m in measurements) else "epoch"
    series: dict[str, dict[int, float]] = defaultdict(dict)
    for m in measurements:
        series[m.metric][int(m.details[axis])] = float(m.value)
    panels = [name for name in series if not (name.endswith("_std") and name[:-4] in series)]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, panels):
        xs = sorted(series[metric])
        ys = [series[metric][x] for x in xs]
        std = series.get(f"{metric}_std", {})
        ax.errorbar(xs, ys, yerr=[std.get(x, 0.0) for x in xs] if std else None, marker="o", capsize=3)
        ax.set_xlabel(f"training {axis}")
        ax.set_title(metric + (" (± std)" if std else ""))
        ax.grid(alpha=0.3)
    return _save_panels(fig, axes, len(panels), title, path)


LOG_AXES = ("step", "epoch", "seconds")  # log.csv's columns that are no training number


def log_panels(columns: list[str], declared=()) -> list[tuple[str, list[tuple[str, str]]]]:
    """The panels of a training log with ``columns``: each ``declared`` panel (title, ((column, label), ...),
    a family's ``log_panels``) with the columns the log has, then a panel of its own for every other number."""
    panels = [(title, [(c, label) for c, label in series if c in columns]) for title, series in declared]
    panels = [(title, series) for title, series in panels if series]
    drawn = {c for _, series in panels for c, _ in series}
    return panels + [(c, [(c, c)]) for c in columns if c not in drawn and c not in LOG_AXES]


def plot_training_log(log: Path, path: Path, title: str = "", panels=()) -> Path:
    """The numbers of a training run's ``log.csv`` against the step, in the panels of ``log_panels`` (``panels``:
    the family's grouping), at most three to a row. A number a step did not log (empty or NaN: a G loss on a
    step that only updates D) is skipped, its line joining the steps that did."""
    import csv

    with open(log, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    step = [int(r["step"]) for r in rows]
    chosen = log_panels(columns, panels)
    plt = pyplot()
    per_row = min(3, len(chosen)) if len(chosen) != 4 else 2
    fig, axes = plt.subplots(math.ceil(len(chosen) / per_row), per_row, figsize=(5.5 * per_row, 3.4 * math.ceil(
        len(chosen) / per_row)), squeeze=False)
    for ax, (name, series) in zip(axes.flat, chosen):
        for column, label in series:
            points = [(x, y) for x, y in zip(step, (float(r[column] or "nan") for r in rows)) if math.isfinite(y)]
            ax.plot([x for x, _ in points], [y for _, y in points], label=label, linewidth=0.9)
        ax.set_xlabel("training step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save_panels(fig, axes, len(chosen), title, path)


def _save_panels(fig, axes, used: int, title: str, path: Path) -> Path:
    """Hide the panels of the grid past the first ``used``, title the figure, lay it out and save it."""
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_bars(groups: list[str], series: dict[str, list[tuple[float, float]]], path: Path, ylabel: str,
              title: str = "") -> Path:
    """Bars of ``series`` (name -> one (mean, std) per group, NaN: no bar), side by side within each group,
    with error bars unless every std is 0 (a single draw); the value axis spans the bars and their error bars,
    not zero to the top."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.6 * len(groups) + 1.5), 3.4))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        stds = [s for _, s in values]
        ax.bar(xs, [m for m, _ in values], width, yerr=stds if any(stds) else None, capsize=3, label=name)
    low = min(m - s for values in series.values() for m, s in values if m == m)  # NaN: no bar
    high = max(m + s for values in series.values() for m, s in values if m == m)
    pad = 0.25 * (high - low) or 0.05
    ax.set_ylim(max(0.0, low - pad), high + pad)  # the differences are the point, not the distance from zero
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_curve(points: list[tuple[int, float, float]], levels: dict[str, float], path: Path, xlabel: str,
               ylabel: str) -> Path:
    """A curve of (x, mean, std) points with error bars (none if every std is 0), and each of ``levels``
    (name -> value, e.g. a baseline's accuracy) as a dashed horizontal line; the value axis spans what is
    drawn, not zero to the top."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    xs = [x for x, _, _ in points]
    stds = [s for _, _, s in points]
    ax.errorbar(xs, [m for _, m, _ in points], yerr=stds if any(stds) else None, marker="o", capsize=3,
                label="trained D")
    for i, (name, value) in enumerate(levels.items()):
        ax.axhline(value, linestyle="--", color=f"C{i + 1}", label=name)
    values = [m - s for _, m, s in points] + [m + s for _, m, s in points] + list(levels.values())
    pad = 0.15 * (max(values) - min(values)) or 0.02
    ax.set_ylim(min(values) - pad, max(values) + pad)
    if len(xs) <= 30:  # one tick per epoch while they stay legible
        ax.set_xticks(xs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def contact_sheet(rows: list[list[tuple[torch.Tensor, str, tuple | None]]], path: Path, tile: int = 64,
                  empty: str = "nothing to show") -> Path:
    """A PNG of image rows: (uint8 C x H x W image, caption, frame colour or None) per tile, each
    scaled to ``tile`` pixels (nearest neighbour, so pixels stay visible) and captioned below."""
    from PIL import Image, ImageDraw

    pad, text = 4, 12
    cols = max((len(r) for r in rows), default=1)
    sheet = Image.new("RGB", (pad + cols * (tile + pad), pad + max(len(rows), 1) * (tile + text + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    if not rows:
        draw.text((pad, pad), empty, fill="black")
    for r, members in enumerate(rows):
        y = pad + r * (tile + text + pad)
        for c, (image, caption, frame) in enumerate(members):
            x = pad + c * (tile + pad)
            image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
            pixels = Image.fromarray(image.permute(1, 2, 0).numpy()).resize((tile, tile), Image.NEAREST)
            sheet.paste(pixels, (x, y))
            if frame is not None:
                draw.rectangle([x - 1, y - 1, x + tile, y + tile], outline=frame, width=2)
            draw.text((x, y + tile + 1), caption, fill="black")
    return save_png(sheet, path)


def _enlarged_grid(images: torch.Tensor, nrow: int, legible: int = LEGIBLE):
    """``grid_image`` of images in [-1, 1], enlarged by the smallest whole factor that makes a tile at
    least ``legible`` pixels wide (nearest neighbour: pixels stay pixels); returns (picture, factor)."""
    from PIL import Image

    picture = grid_image(images, nrow)
    scale = max(1, math.ceil(legible / images.shape[-1]))
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST), scale


def numbered_sheet(images: torch.Tensor, path: str | Path, *, columns: int | None = None, legible: int = LEGIBLE,
                   boxes=()) -> Path:
    """A grid of samples (images in [-1, 1], ``columns`` a row, by default a square) with each tile's
    index, its position row by row, white on black in the tile's top-left corner, so samples can be
    named by number. ``boxes``: (index, x0, y0, x1, y1) in pixels of a sample, x1 and y1 exclusive,
    outlined in red one sample pixel wide along their inside edge."""
    from PIL import ImageDraw

    nrow = columns or math.ceil(math.sqrt(len(images)))
    picture, scale = _enlarged_grid(images, nrow, legible)
    draw = ImageDraw.Draw(picture)
    step = (images.shape[-1] + GRID_PAD) * scale

    def corner(i: int) -> tuple[int, int]:
        return GRID_PAD * scale + (i % nrow) * step, GRID_PAD * scale + (i // nrow) * step

    for i, x0, y0, x1, y1 in boxes:
        x, y = corner(i)
        draw.rectangle((x + x0 * scale, y + y0 * scale, x + x1 * scale - 1, y + y1 * scale - 1), outline=RED,
                       width=scale)
    for i in range(len(images)):
        x, y = corner(i)
        box = draw.textbbox((x + 1, y), str(i))
        draw.rectangle((x, y, box[2] + 1, box[3] + 1), fill="black")
        draw.text((x + 1, y), str(i), fill="white")
    return save_png(picture, Path(path))


def captioned_rows(rows: list[tuple[str, torch.Tensor]], path: Path) -> Path:
    """One row of sample tiles per (caption, images in [-1, 1]), the caption on its left, rows of any length."""
    from PIL import Image, ImageDraw

    pictures = [_enlarged_grid(images, len(images))[0] for _, images in rows]
    measure = ImageDraw.Draw(pictures[0])
    left = max(measure.textbbox((0, 0), caption)[2] for caption, _ in rows) + 8
    sheet = Image.new("RGB", (left + max(p.width for p in pictures), sum(p.height for p in pictures)), "white")
    draw, y = ImageDraw.Draw(sheet), 0
    for (caption, _), picture in zip(rows, pictures):
        sheet.paste(picture, (left, y))
        draw.text((4, y + picture.height // 2), caption, fill="black", anchor="lm")
        y += picture.height
    return save_png(sheet, path)
