"""Pictures: metrics against the training step, contact sheets of captioned image tiles, and the
one way every picture is written (``save_png`` for PIL images, ``save_figure`` for matplotlib's).

``plot_vs_step``, for a run that measured every checkpoint of a training run: one panel per metric
(FID falling as training goes on is the point of the plot), x = the training step the checkpoint
was exported at, or its epoch when the checkpoint does not record steps (pytorch/examples' files).
Drawn with matplotlib's Agg backend (no display) and written atomically.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch

from bench.results import Measurement
from dcgan.fsutil import atomic_path


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
    plt = pyplot()
    axis = "step" if all(m.extra.get("step") is not None for m in measurements) else "epoch"
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for m in measurements:
        series[m.metric].append((int(m.extra[axis]), float(m.value)))
    fig, axes = plt.subplots(1, len(series), figsize=(3.6 * len(series), 3.2), squeeze=False)
    for ax, (metric, points) in zip(axes[0], series.items()):
        xs, ys = zip(*sorted(points))
        ax.plot(xs, ys, marker="o")
        ax.set_xlabel(f"training {axis}")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


GREEN, RED = (0, 160, 0), (200, 0, 0)


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
