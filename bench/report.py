"""``bench report``: summaries of the tidy result tables (mean ± std over draws), in Markdown.

Summaries are computed here, never stored as rows, so a table only ever holds measurements.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from bench.results import read_rows

# Published numbers users compare with, by (task, data set, metric): (value, source).
REFERENCES: dict[tuple[str, str, str], list[tuple[float, str]]] = {
    ("cifar10-svm", "cifar10", "accuracy"): [
        (0.828, "DCGAN (D trained on ImageNet-1k 32 px), Radford et al. 2016, Table 1"),
        (0.806, "1-layer K-means (4800 features), Coates & Ng 2011, in Radford et al. Table 1"),
        (0.820, "3-layer K-means learned RF (3200 features), in Radford et al. Table 1"),
    ],
    ("svhn-svm", "svhn", "error"): [
        (0.2248, "DCGAN + L2-SVM, 1000 labels, Radford et al. 2016, Table 2"),
    ],
    ("fid", "cifar10", "is"): [
        (6.16, "DCGAN, 6.16 ± 0.07 (50k samples), as reported by Gulrajani et al. 2017 (WGAN-GP), Table 3"),
        (11.24, "real CIFAR-10 training images, 11.24 ± 0.12, Salimans et al. 2016 (Improved Techniques for Training GANs)"),
    ],
}

GROUP = ("task", "dataset", "labels", "model", "features", "split", "metric", "ckpt_sha256")


def load_rows(results_dir: str | Path, tasks: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    for path in sorted(Path(results_dir).glob("*.csv")):
        rows += [r for r in read_rows(path) if not tasks or r.get("task") in tasks]
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One entry per (task, data set, labels, model, features, split, metric, checkpoint): mean, std, draws."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    seconds: dict[tuple, float] = {}
    for r in rows:
        key = tuple(str(r.get(k, "")) if k != "labels" else _labels(r) for k in GROUP)
        groups[key].append(float(r["value"]))
        seconds[key] = float(r.get("seconds") or 0)
    out = []
    for key, values in groups.items():
        entry = dict(zip(GROUP, key))
        entry.update(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                     n=len(values), seconds=seconds[key])
        out.append(entry)
    return sorted(out, key=lambda e: tuple(e[k] for k in GROUP))


def _labels(row: dict) -> str:
    """The labelled-set size of a probe row ("100/class" or "all"), so that runs of the low-label and
    the all-label protocol are never averaged together; empty for tasks without labels."""
    params = json.loads(row.get("params") or "{}")
    if "labels_per_class" not in params:
        return ""
    return "all" if params["labels_per_class"] is None else f"{params['labels_per_class']}/class"


def _fmt(value: float, metric: str) -> str:
    return f"{100 * value:.2f}%" if metric in ("accuracy", "error", "val_accuracy") else f"{value:.4g}"


def to_markdown(summary: list[dict], references: bool = False) -> str:
    head = "| task | data set | labels | model | features | split | metric | mean ± std | draws | checkpoint | run s |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for e in summary:
        value = _fmt(e["mean"], e["metric"]) + (f" ± {_fmt(e['std'], e['metric'])}" if e["n"] > 1 else "")
        lines.append(f"| {e['task']} | {e['dataset']} | {e['labels']} | {e['model']} | {e['features']} | {e['split']} | "
                     f"{e['metric']} | {value} | {e['n']} | {e['ckpt_sha256'][:12]} | {e['seconds']:.0f} |")
    if references:
        shown = {(e["task"], e["dataset"], e["metric"]) for e in summary}
        refs = [(k, v, src) for k, vals in REFERENCES.items() if k in shown for v, src in vals]
        if refs:
            lines += ["", "Published numbers for comparison:", "", "| task | data set | metric | value | source |",
                      "| --- | --- | --- | --- | --- |"]
            lines += [f"| {t} | {d} | {m} | {_fmt(v, m)} | {src} |" for (t, d, m), v, src in refs]
    return "\n".join(lines)
