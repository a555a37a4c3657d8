"""The leaderboard: every checkpoint measured in ``results/``, one line each, its headline metrics as columns.

A line is a checkpoint pair: a run's ``g.pt`` and ``d.pt`` (or ``epochNNN_g.pt`` / ``_d.pt``, or
pytorch/examples' ``netG`` / ``netD`` of an epoch) share one, since a probe measures the D and FID
the G of the same training. A column is a task's headline metric (``Task.headline``) on the trained
model (``trained-d`` or ``generator``) at the task's default features, per setting that tells runs
apart (``report_params``); a cell is the mean over draws of the latest such run. Written by
``bench report --html`` as ``results/report/index.html``, sortable by a click on a column's header.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from bench.report.doc import Cell, Doc, Paragraph, Section, Table, mean_cell
from bench.report.html import render
from bench.report.markdown import _settings, load_rows
from bench.run import TASKS
from dcgan.fsutil import atomic_path

TRAINED = ("trained-d", "generator")
_PAIR = re.compile(r"^(?P<head>.*?)(?P<kind>[gd]|net[GD])(?P<tail>(_epoch_\d+)?\.pth?)$")


def pair(ckpt: str) -> str:
    """The name of the training checkpoint a G or D file belongs to: runs/x/g.pt -> runs/x/{g,d}.pt."""
    path = Path(ckpt)
    m = _PAIR.match(path.name)
    if not m:
        return ckpt
    kinds = "{G,D}" if m["kind"].startswith("net") else "{g,d}"
    name = f"{m['head']}{'net' if m['kind'].startswith('net') else ''}{kinds}{m['tail']}"
    return str(path.with_name(name))


def _default_features(task: str) -> str | None:
    """The features a task's rows have at its defaults (None: the task has no such parameter)."""
    import dataclasses

    fields = {f.name: f.default for f in dataclasses.fields(TASKS.get(task).Params)}
    default = fields.get("features")
    return default if isinstance(default, str) else None  # guided-backprop's features is a count


def headline_rows(rows: list[dict]) -> list[dict]:
    """Rows of a trained checkpoint, a headline metric, at the task's default features."""
    out = []
    for r in rows:
        if not r.get("ckpt_sha256") or r.get("task") not in TASKS or r.get("model") not in TRAINED:
            continue
        task = TASKS.get(r["task"])
        default = _default_features(r["task"])
        if r["metric"] in task.headline and (default is None or r["features"] == default):
            out.append(r)
    return out


def leaderboard(results_dir: str | Path) -> Doc:
    results_dir = Path(results_dir)
    rows = headline_rows(load_rows(results_dir))
    latest: dict[tuple, dict] = {}  # (line, column) -> the latest run's row
    for r in rows:
        line = (pair(r["ckpt"]), r["dataset"])
        settings = _settings(r)
        column = (r["task"], r["metric"], settings)
        if (line, column) not in latest or r["timestamp"] > latest[line, column]["timestamp"]:
            latest[line, column] = r
    columns = sorted({c for _, c in latest}, key=lambda c: (TASKS.get(c[0]).section, c))
    lines = defaultdict(dict)
    for (line, column), r in latest.items():
        lines[line][column] = mean_cell(rows, f"{r['task']}.csv", r["run_id"], r["metric"], model=r["model"],
                                        features=r["features"], ckpt_sha256=r["ckpt_sha256"])
    table = []
    for (ckpt, dataset), cells in sorted(lines.items()):
        table.append([Cell(ckpt, href=_card(results_dir, ckpt)), dataset, *(cells.get(c) for c in columns)])
    heads = [(metric if metric == task else f"{task} {metric}") + (f" ({settings})" if settings else "")
             for task, metric, settings in columns]
    intro = Paragraph(f"Every checkpoint with rows in {results_dir}: the headline metric of each task on the trained "
                      "model, at the task's default features, mean over draws of the latest run. Click a column's "
                      "header to sort; a checkpoint links to its report card when bench evaluate wrote one.")
    return Doc("Leaderboard", f"{len(table)} checkpoints, {len(columns)} metrics, from {results_dir}",
               [Section("leaderboard", "Checkpoints", [intro, Table(["checkpoint", "data set", *heads], table,
                                                                    sortable=True)])],
               ["Each cell is the mean of its rows in results/<task>.csv (data-run names the run_id).",
                "Written by bench report --html."])


def _card(results_dir: Path, ckpt: str) -> str | None:
    """The report card of the run a checkpoint belongs to, relative to the leaderboard, when there is one."""
    folder = Path(ckpt).parent
    name = folder.parent.name if folder.name == "ckpt" else folder.name
    return f"{name}/index.html" if name and (results_dir / "report" / name / "index.html").is_file() else None


def write_leaderboard(results_dir: str | Path, out: str | Path | None = None) -> Path:
    page = Path(out) if out else Path(results_dir) / "report" / "index.html"
    with atomic_path(page) as tmp:
        tmp.write_text(render(leaderboard(results_dir)), encoding="utf-8")
    return page
