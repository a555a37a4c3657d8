"""The report card's class-aware section: a conditional generator's class grid, CAS and intra-FID.

Each task's rows become the table a reader asks for: the grid beside how much of it the label and z
explain; CAS beside its real-data ceiling (and an unconditional generator's score when one was
measured), overall and per class; the class-balanced FID beside the intra-class FIDs, per class.
Every number is a cell that names its CSV, run and rows.
"""
from __future__ import annotations

import json
import math
import re

from bench.evaluate import Step
from bench.report.doc import Figure, Paragraph, Table, mean_cell, source_text
from bench.report.sections import per_run

CAS_MODELS = (  # the rows' model, what the classifier was trained on, the per-class table's column
    ("generator", "this generator's samples, at the labels they were drawn at", "this generator"),
    ("real", "real training images: the ceiling", "real (ceiling)"),
    ("unconditional-g", "an unconditional generator's samples, labelled by the real-trained classifier",
     "unconditional G"))
SHARES = (("class_share", "the class label (rows)"), ("z_share", "z, the same way in every class (columns)"),
          ("interaction_share", "z, differently per class"))
_CLASS_METRIC = re.compile(r"(?:accuracy|fid)_class_(\d+)")


def classes(card, steps: list[Step]) -> list:
    return [Paragraph("A conditional generator is asked for a class. Does its image show that class (the class grid, "
                      "CAS), and does each class look and vary like the real class (intra-FID)?")
            ] + per_run(card, steps, lambda card, step, rows: BUILDERS[step.task](card, step, rows))


def _class_grid(card, step: Step, rows: list[dict]) -> list:
    csv, run = step.planned.table.name, step.run_id
    blocks = []
    src = card.artifact(step, "grid.png")
    if src:
        blocks.append(Figure(src, step.planned.task_cls.pictures["grid.png"]))
    table = [[what, mean_cell(rows, csv, run, metric), source_text(csv, run)] for metric, what in SHARES]
    blocks.append(Table(["what moves the image", "share of the grid's pixel variance", "rows"], table,
                        "A two-way analysis of variance of the grid's pixels: a label the generator ignores explains "
                        "0, a z it ignores 0."))
    return blocks


def _cas(card, step: Step, rows: list[dict]) -> list:
    csv, run = step.planned.table.name, step.run_id
    details = json.loads(rows[0]["details"])
    draws = len({r["draw"] for r in rows})
    blocks = [Paragraph(f"The same small CNN ({rows[0]['features']}) trained on {details['per_class']} images a class "
                        f"of each kind, scored on the {details['n_test']} real test images; mean ± std over {draws} "
                        "draw(s). A generator whose label says nothing scores chance, "
                        f"{100 / _num_classes(rows):.0f}%.")]
    models = [m for m in CAS_MODELS if any(r["model"] == m[0] for r in rows)]
    overall = {key: mean_cell(rows, csv, run, "accuracy", model=key) for key, _, _ in models}
    ceiling = overall["real"].value
    table = [[name, overall[key], f"{100 * overall[key].value / ceiling:.0f}%" if ceiling else "-",
              source_text(csv, run)] for key, name, _ in models]
    blocks.append(Table(["classifier trained on", "test accuracy", "of the ceiling", "rows"], table))
    per_class = _per_class(rows, csv, run, "accuracy", [key for key, _, _ in models])
    blocks.append(Table(["class", *(short for _, _, short in models)], per_class,
                        "Test accuracy on each class's real images: a class far below its ceiling is one the "
                        "generator does not draw recognisably."))
    return blocks


def _intra_fid(card, step: Step, rows: list[dict]) -> list:
    csv, run = step.planned.table.name, step.run_id
    whole = json.loads(next(r["details"] for r in rows if r["metric"] == "fid"))
    per = json.loads(next(r["details"] for r in rows if r["metric"] == "intra_fid"))
    blocks = [Paragraph(f"Against the real images of {card.subject.dataset} ({step.planned.ctx.split_name} split, "
                        f"{whole['n_real']} images) on {rows[0]['features']}: the whole class-balanced sample of "
                        f"{whole['n_fake']}, then each class's {per['n_fake']} samples against that class's real "
                        "images. FID is biased upwards at small counts, so intra-FID (fewer images a class) sits above "
                        "the whole sample's FID: compare either at equal counts only.")]
    blocks.append(Table(["metric", "value", "rows"],
                        [["FID of the class-balanced sample", mean_cell(rows, csv, run, "fid"), source_text(csv, run)],
                         ["intra-FID: the mean of the classes' FIDs", mean_cell(rows, csv, run, "intra_fid"),
                          source_text(csv, run)]]))
    blocks.append(Table(["class", "FID against the class's real images"], _per_class(rows, csv, run, "fid", [None]),
                        "A class far above the others is one the generator draws poorly, too uniformly, or as "
                        "another class."))
    return blocks


def _num_classes(rows: list[dict]) -> int:
    return 1 + max(int(m[1]) for r in rows if (m := _CLASS_METRIC.fullmatch(r["metric"])))


def _per_class(rows: list[dict], csv: str, run: str, metric: str, models: list[str | None]) -> list[list]:
    """One table row per class: the class, then ``metric`` of that class per model (None: any model)."""
    out = []
    for c in range(_num_classes(rows)):
        cells = [mean_cell(rows, csv, run, f"{metric}_class_{c}", **({"model": m} if m else {})) for m in models]
        if any(cell is not None and not math.isnan(cell.value) for cell in cells):
            out.append([str(c), *cells])
    return out


BUILDERS = {"class-grid": _class_grid, "cas": _cas, "intra-fid": _intra_fid}
