"""The report card's translation section: a translator's numbers beside the input unchanged and real images.

Per ``translation`` run: one line per method (its accuracy, FID, reconstruction and own-domain L1, each a cell
naming its rows), the same per target domain (from the rows' ``per_domain`` details, the run's
``per_domain.csv``), why FID was not measured when it was not, and ``translation.png``.
"""
from __future__ import annotations

import json

from bench.evaluate import Step
from bench.report.doc import Figure, Note, Paragraph, Table, mean_cell, source_text
from bench.report.markdown import _fmt
from bench.report.sections import per_run

METHODS = (("stargan", "the translator, G(x, c)"), ("identity", "the input unchanged (a floor: ~0 accuracy)"),
           ("real", "real images of the domain (the classifier's own accuracy: the ceiling)"))
METRICS = (("accuracy", "accuracy"), ("fid", "FID"), ("reconstruction_l1", "reconstruction L1"),
           ("own_domain_l1", "own-domain L1"))
PER_DOMAIN = (("accuracy", "stargan", "accuracy"), ("accuracy", "identity", "identity"),
              ("accuracy", "real", "real (ceiling)"), ("fid", "stargan", "FID"), ("fid", "identity", "FID identity"),
              ("reconstruction_l1", "stargan", "reconstruction L1"), ("own_domain_l1", "stargan", "own-domain L1"))


def translation(card, steps: list[Step]) -> list:
    return [Paragraph("Each test image translated into every other domain (every attribute flipped): does a domain "
                      "classifier trained on real images see the target domain (accuracy; the StarGAN paper's "
                      "classification error is 1 minus it), do the translations look like that domain's real images "
                      "(FID against its training images), and does G keep what it should (translated back to its "
                      "own domain, the image returns: reconstruction L1; asked for its own domain, it barely "
                      "changes: own-domain L1; both on pixels in [-1, 1]).")] + per_run(card, steps, _run)


def _run(card, step: Step, rows: list[dict]) -> list:
    csv, run = step.planned.table.name, step.run_id
    methods = [(key, name) for key, name in METHODS if any(r["model"] == key for r in rows)]
    table = [[name, *(mean_cell(rows, csv, run, metric, model=key) for metric, _ in METRICS), source_text(csv, run)]
             for key, name in methods]
    accuracy = next(r for r in rows if r["metric"] == "accuracy" and r["model"] == "stargan")
    details = json.loads(accuracy["details"])
    blocks = [Paragraph(f"{details['images']} {step.planned.ctx.split_name} images, the classifier "
                        f"({accuracy['features']}) trained on {details['classifier_train_images']} train images; "
                        f"accuracy over the {details['pairs']} (image, other domain) pairs."),
              Table(["method", *(label for _, label in METRICS), "rows"], table)]
    if details.get("fid"):
        blocks.append(Note(f"FID {details['fid']}."))
    per = {(r["metric"], r["model"]): json.loads(r["details"]).get("per_domain", {}) for r in rows}
    columns = [(key, label) for *key, label in PER_DOMAIN if per.get(tuple(key))]
    domains = details["domains"]  # the G's order (the details' per_domain keys are sorted)
    blocks.append(Table(["domain", *(label for _, label in columns)],
                        [[name, *(_text(per[tuple(key)].get(name), key[0]) for key, _ in columns)] for name in domains],
                        "Per target domain (the rows' details and per_domain.csv): accuracy of the translations into "
                        "it, FID of those against its real images, and the L1s of the translations into it (own "
                        "domain: of its images)."))
    src = card.artifact(step, "translation.png")
    if src:
        blocks.append(Figure(src, step.planned.task_cls.pictures["translation.png"]))
    return blocks


def _text(value: float | None, metric: str) -> str:
    return "-" if value is None else _fmt(value, metric)
