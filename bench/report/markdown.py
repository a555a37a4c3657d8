"""``bench report``: summaries of the tidy result tables (mean ± std over draws), in Markdown.

Summaries are computed here, never stored as rows, so a table only ever holds measurements.
"""
from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

from bench.results import ResultsError, read_rows

GROUP = ("task", "dataset", "settings", "model", "features", "split", "metric", "ckpt_sha256")


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
        key = tuple(str(r.get(k, "")) if k != "settings" else _settings(r) for k in GROUP)
        try:
            groups[key].append(float(r["value"]))
        except ValueError:
            raise ResultsError(f"results of task {r.get('task')!r}, run {r.get('run_id')}: value {r['value']!r} "
                               "is not a number") from None
        seconds[key] = float(r.get("seconds") or 0)
    out = []
    for key, values in groups.items():
        entry = dict(zip(GROUP, key))
        entry.update(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                     n=len(values), seconds=seconds[key])
        out.append(entry)
    return sorted(out, key=lambda e: tuple(e[k] for k in GROUP))


def _settings(row: dict) -> str:
    """The parameters the row's task declares as telling rows apart in reports (``report_params``),
    e.g. ``labels_per_class=100``, so runs of different protocols are never averaged together."""
    from bench.run import TASKS

    if row.get("task") not in TASKS:
        return ""
    params = json.loads(row.get("params") or "{}")
    keys = TASKS.get(row["task"]).report_params
    return " ".join(f"{k}={'all' if params.get(k) is None else params[k]}" for k in keys if k in params)


def _fmt(value: float, metric: str) -> str:
    percent = metric in ("accuracy", "error", "val_accuracy") or metric.startswith("accuracy_class_")
    return f"{100 * value:.2f}%" if percent else f"{value:.4g}"


def to_markdown(summary: list[dict], references: bool = False) -> str:
    head = "| task | data set | settings | model | features | split | metric | mean ± std | draws | checkpoint | run s |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for e in summary:
        value = _fmt(e["mean"], e["metric"]) + (f" ± {_fmt(e['std'], e['metric'])}" if e["n"] > 1 else "")
        lines.append(f"| {e['task']} | {e['dataset']} | {e['settings']} | {e['model']} | {e['features']} | {e['split']} | "
                     f"{e['metric']} | {value} | {e['n']} | {e['ckpt_sha256'][:12]} | {e['seconds']:.0f} |")
    if references:
        from bench.run import TASKS

        shown = {(e["task"], e["dataset"], e["metric"]) for e in summary}
        refs = [(t, ref) for t in sorted({e["task"] for e in summary} & set(TASKS.names()))
                for ref in TASKS.get(t).references if (t, ref.dataset, ref.metric) in shown]
        if refs:
            lines += ["", "Published numbers for comparison:", "", "| task | data set | metric | value | source |",
                      "| --- | --- | --- | --- | --- |"]
            lines += [f"| {t} | {r.dataset} | {r.metric} | {_fmt(r.value, r.metric)} | {r.source} |" for t, r in refs]
    return "\n".join(lines)
