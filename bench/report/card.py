"""The report card of one model: ``results/report/<name>/index.html`` and ``report.md``, built from the
rows ``bench evaluate`` planned (read back from ``results/<task>.csv`` by ``run_id``) and the files
its runs wrote, copied beside the page so the folder stands alone.

Sections: the model (config, parameter counts, recipe, data, steps, time, checkpoint hashes), its
training (log and sample grids), representation (linear probes, per D layer), generation (FID and
company against the step), classes (a conditional generator's class grid, CAS and intra-FID),
learning not memorising (paper section 6), super-resolution and translation (an SR or a translating G
beside its baselines), and the runs behind it all.
Every result on the page names its CSV and ``run_id``.
"""
from __future__ import annotations

import csv
import datetime as _dt
import shutil
from collections import defaultdict
from pathlib import Path

import torch

from bench.evaluate import Step, duration
from bench.report import classes, probes, sections, translation
from bench.report.doc import Doc, Section, Table, to_markdown
from bench.report.html import render
from bench.results import read_rows
from bench.run import package_versions
from bench.subject import Subject
from bench.suite import Suite
from dcgan.device import describe_device
from dcgan.fsutil import atomic_path

TITLES = {"representation": "Representation", "generation": "Generation", "classes": "Classes",
          "learning": "Learning, not memorising", "super-resolution": "Super-resolution", "translation": "Translation",
          "data": "Data", "other": "Other tasks"}
# the sections with a builder of their own; any other gets sections.generic
BUILDERS = {"representation": probes.representation, "generation": sections.generation,
            "classes": classes.classes, "learning": sections.learning, "super-resolution": sections.super_resolution,
            "translation": translation.translation}


class Card:
    """What the section builders share: the subject, the steps, their rows, and where pictures go."""

    def __init__(self, subject: Subject, steps: list[Step], suite: Suite, results_dir: Path, out: Path):
        self.subject, self.steps, self.suite = subject, steps, suite
        self.results_dir, self.out = Path(results_dir), Path(out)
        self._tables: dict[str, list[dict]] = {}

    def rows(self, step: Step) -> list[dict]:
        """The step's rows from its table (none when it did not run)."""
        if not step.planned or not step.measured:
            return []
        name = step.planned.table.name
        if name not in self._tables:
            self._tables[name] = read_rows(step.planned.table)
        return [r for r in self._tables[name] if r.get("run_id") == step.run_id]

    def artifact(self, step: Step, name: str) -> str | None:
        """Copy one of the step's files beside the page; its relative path there (None: not written)."""
        if not step.planned:
            return None
        return self.copy(step.planned.ctx.artifacts / name, f"{step.task}-{step.run_id[:8]}-{name}")

    def copy(self, source: Path, name: str) -> str | None:
        if not source.is_file():
            return None
        with atomic_path(self.out / "img" / name) as tmp:
            shutil.copyfile(source, tmp)
        return f"img/{name}"

    def picture_path(self, name: str) -> Path:
        """Where a picture drawn for the card goes (``img/<name>``)."""
        (self.out / "img").mkdir(parents=True, exist_ok=True)
        return self.out / "img" / name


def write_card(subject: Subject, steps: list[Step], suite: Suite, results_dir: str | Path,
               out: str | Path, device: str) -> Path:
    """Build the card into ``out`` (index.html, report.md, img/); returns the HTML page's path."""
    out = Path(out)
    if (out / "img").is_dir():
        shutil.rmtree(out / "img")  # pictures of an earlier card: the new one copies its own
    card = Card(subject, steps, suite, Path(results_dir), out)
    by_section = defaultdict(list)
    for step in steps:
        by_section[step.planned.task_cls.section if step.planned else _declared_section(step)].append(step)
    parts = [sections.model(card), sections.training(card)]
    for key in TITLES:
        if by_section.get(key):
            build = BUILDERS.get(key, sections.generic)
            parts.append(Section(key, TITLES[key], build(card, by_section[key])))
    parts.append(Section("runs", "The runs behind this page", [runs_table(steps)]))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    versions = ", ".join(f"{k} {v}" for k, v in package_versions().items() if v)
    about = f"{subject.dataset or 'no data set'}; suite {suite.name}"
    about += f": {suite.description}" if suite.description else ""
    doc = Doc(f"Report card: {subject.name}", about,
              parts, [f"Generated {now} by bench evaluate on {describe_device(torch.device(device))}.",
                      f"Versions: {versions}.", f"Suite: {suite.source}.",
                      "Every result names its table (results/<task>.csv) and run_id; pictures are copies of the "
                      "runs' files (results/<task>/<run_id>/)."])
    page = out / "index.html"
    with atomic_path(page) as tmp:
        tmp.write_text(render(doc), encoding="utf-8")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(to_markdown(doc), encoding="utf-8")
    return page


def _declared_section(step: Step) -> str:
    from bench.tasks.base import TASKS

    return TASKS.get(step.task).section


def runs_table(steps: list[Step]) -> Table:
    rows = []
    for i, step in enumerate(steps, 1):
        seconds = step.seconds if step.status == "ran" else None
        rows.append([str(i), step.task, step.title, step.status, step.run_id or "-",
                     duration(seconds) if seconds is not None else "-", step.note or ""])
    return Table(["#", "task", "what", "status", "run_id", "time here", "note"], rows,
                 "status: ran (this evaluation), done (its rows were in the table already), skipped (cannot run "
                 "on what was given), failed (see the note).")


def read_log(path: Path | None) -> list[dict]:
    if path is None:
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
