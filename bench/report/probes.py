"""The report card's representation section: the linear probes of D's features (paper, section 5).

Each probe run becomes a table of the trained D beside a random-init D of the same architecture and raw
pixels, with the trained-minus-random gap and its noise; per-layer probes become bars per D layer, and
per-epoch probes (one run per epoch's D export) a curve of accuracy against training length, with the
random-init D as the line training has to rise above.
"""
from __future__ import annotations

import math
import statistics
from collections import defaultdict

from bench.evaluate import Step
from bench.report.doc import Figure, Heading, Note, Paragraph, Table, mean_cell, source_text
from bench.report.sections import heading

PROBE_MODELS = (("trained-d", "trained D"), ("random-d", "random-init D (same architecture)"),
                ("raw-pixels", "raw pixels"))
CEILING = 0.97  # a random-init D this accurate leaves training no room to show in a probe


def representation(card, steps: list[Step]) -> list:
    blocks = [Paragraph("A linear L2-SVM on the discriminator's max-pooled features (paper, section 5). What to "
                        "look for: the trained D above a randomly initialised D of the same architecture. That "
                        "gap is what adversarial training taught D; raw pixels are the floor.")]
    per_layer = [s for s in steps if s.entry.per_layer]
    per_epoch = [s for s in steps if s.entry.per_epoch]
    whole = [s for s in steps if not s.entry.per_layer and not s.entry.per_epoch]
    for step in whole:
        blocks += probe(card, step)
    if per_layer:
        blocks += layers(card, per_layer)
    if per_epoch:
        blocks += epochs(card, per_epoch, whole)
    return blocks


def probe(card, step: Step) -> list:
    blocks = [Heading(heading(step))]
    rows = card.rows(step)
    if not rows:
        return blocks + [Note(f"Not measured: {step.note or step.status}.")]
    params = step.planned.params
    blocks.append(Paragraph(_protocol(step)))
    table = []
    for key, name in PROBE_MODELS:
        features = next((r["features"] for r in rows if r["model"] == key), "")
        cell = mean_cell(rows, step.planned.table.name, step.run_id, "accuracy", model=key, split="test")
        if cell is None:
            continue
        table.append([name, features, cell, str(cell.n), source_text(step.planned.table.name, step.run_id)])
    blocks.append(Table(["model", "features", "test accuracy, mean ± std over draws", "draws", "rows"], table))
    if gap(rows):
        blocks.append(Paragraph(gap(rows) + f" Rows: {source_text(step.planned.table.name, step.run_id)}."))
    random = next((row for row in table if row[0] == dict(PROBE_MODELS)["random-d"]), None)
    if random and random[2].value >= CEILING:
        blocks.append(Note(f"An untrained D already reaches {random[2].text} here: with this protocol the data set is "
                           "too easy for the probe to show what training taught D. A protocol with few labels a "
                           "class and many draws can still show it."))
    refs = [r for r in step.planned.task_cls.references if r.dataset == card.subject.dataset]
    if refs:
        blocks.append(Table(["published", "value", "source"],
                            [[r.metric, f"{100 * r.value:.2f}%", r.source] for r in refs],
                            "Published numbers on this data set (the task's references), for comparison at the "
                            "paper's protocol" + ("" if params.labels_per_class is None else
                                                  "; this run used another number of labels")))
    return blocks


def _protocol(step: Step) -> str:
    p = step.planned.params
    labels = "every training label" if p.labels_per_class is None else f"{p.labels_per_class} labels a class"
    subset = f"{step.entry.subset} images a split" if step.entry.subset else "the whole splits"
    return (f"{labels}, {p.draws} draw(s) of the labelled set, each scored on the test split; features "
            f"{p.features}; {subset}.")


def gap(rows: list[dict]) -> str:
    """Trained minus random-init D, draw by draw (both are scored on the same labelled sets), as a sentence
    with the standard error of the mean difference and whether it stands out of the draws' noise."""
    by_draw = defaultdict(dict)
    for r in rows:
        if r["metric"] == "accuracy" and r["split"] == "test" and r["model"] in ("trained-d", "random-d"):
            by_draw[r["draw"]][r["model"]] = float(r["value"])
    diffs = [100 * (d["trained-d"] - d["random-d"]) for d in by_draw.values() if len(d) == 2]
    if not diffs:
        return ""
    mean = sum(diffs) / len(diffs)
    if len(diffs) == 1:
        return f"Trained minus random-init D: {mean:+.2f} points (one draw: no error bar)."
    se = statistics.stdev(diffs) / math.sqrt(len(diffs))
    verdict = ("a difference training made" if abs(mean) > 3 * se
               else "within the draws' noise: this protocol shows no difference training made")
    return (f"Trained minus random-init D: {mean:+.2f} points, the mean of {len(diffs)} per-draw differences on "
            f"the same labelled sets (standard error {se:.2f}): {verdict}.")


def layers(card, steps: list[Step]) -> list:
    from bench.pictures import plot_bars

    blocks = [Heading("Accuracy per D layer"),
              Paragraph("The same probe on each layer alone, max-pooled to 4x4: where in D does training add "
                        "what tells the classes apart, beside the same layer at random initialisation?")]
    table, names, series = [], [], {"trained D": [], "random-init D": []}
    for step in steps:
        rows = card.rows(step)
        layer = step.title.rsplit(": ", 1)[-1]
        if not rows:
            blocks.append(Note(f"{layer}: not measured ({step.note or step.status})."))
            continue
        csv_name = step.planned.table.name
        trained = mean_cell(rows, csv_name, step.run_id, "accuracy", model="trained-d", split="test")
        random = mean_cell(rows, csv_name, step.run_id, "accuracy", model="random-d", split="test")
        table.append([layer, next(r["features"] for r in rows), trained, random, source_text(csv_name, step.run_id)])
        names.append(layer)
        for name, cell in (("trained D", trained), ("random-init D", random)):
            series[name].append((cell.value, cell.std or 0) if cell else (math.nan, 0))
    if table:
        series = {k: v for k, v in series.items() if any(not math.isnan(m) for m, _ in v)}
        plot_bars(names, series, card.picture_path("probe-layers-plot.png"), "test accuracy")
        blocks.append(Figure("img/probe-layers-plot.png", "Test accuracy of the probe on each D layer alone "
                             "(error bars, with several draws: their std; the axis starts near the lowest bar, not "
                             "at zero). Look for the trained bars above the random ones."))
        blocks.append(Table(["layer", "features", "trained D", "random-init D", "rows"], table))
    return blocks


def epochs(card, steps: list[Step], whole: list[Step]) -> list:
    """Accuracy of every epoch's D, beside the random-init D and raw pixels of a whole-D probe on the same
    images and labels (the baselines do not change with training, so the per-epoch runs do not repeat them)."""
    from bench.pictures import plot_curve

    blocks = [Heading("Accuracy against training length"),
              Paragraph("The same probe on the D exported after each epoch: does longer training keep adding "
                        "to what D's features tell apart, or has it levelled off?")]
    table, points = [], []
    for step in steps:
        rows = card.rows(step)
        if not rows:
            blocks.append(Note(f"epoch {step.epoch}: not measured ({step.note or step.status})."))
            continue
        csv_name = step.planned.table.name
        cell = mean_cell(rows, csv_name, step.run_id, "accuracy", model="trained-d", split="test")
        table.append([str(step.epoch), cell, source_text(csv_name, step.run_id)])
        points.append((step.epoch, cell.value, cell.std or 0.0))
    if not table:
        return blocks
    levels = _baselines(card, steps[0], whole)
    plot_curve(points, levels, card.picture_path("probe-epochs-plot.png"), "training epoch", "test accuracy")
    blocks.append(Figure("img/probe-epochs-plot.png", "Test accuracy of the probe on each epoch's D (error bars, "
                         "with several draws: their std)"
                         + (", the dashed lines the baselines of the same probe" if levels else "")
                         + ". Look for the curve above the random-init D, and whether it still climbs."))
    blocks.append(Table(["epoch", "trained D, test accuracy", "rows"], table))
    return blocks


def _baselines(card, step: Step, whole: list[Step]) -> dict[str, float]:
    """Baseline name -> test accuracy from a whole-D probe with the per-epoch runs' images and labels."""
    same = [s for s in whole if s.entry.subset == step.entry.subset and s.planned and step.planned
            and s.planned.params.labels_per_class == step.planned.params.labels_per_class]
    for s in same:
        rows = card.rows(s)
        found = {name: mean_cell(rows, s.planned.table.name, s.run_id, "accuracy", model=key, split="test")
                 for key, name in PROBE_MODELS[1:]}
        found = {name: cell.value for name, cell in found.items() if cell is not None}
        if found:
            return found
    return {}
