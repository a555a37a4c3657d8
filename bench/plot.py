"""Metrics against the training step, for a run that measured every checkpoint of a training run.

One panel per metric (FID falling as training goes on is the point of the plot), x = the training
step the checkpoint was exported at, or its epoch when the checkpoint does not record steps
(pytorch/examples' files). Drawn with matplotlib's Agg backend (no display) and written atomically.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from bench.results import Measurement
from dcgan.fsutil import atomic_path


def plot_vs_step(measurements: list[Measurement], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
