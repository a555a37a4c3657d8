"""The document model of the report pages, its Markdown rendering, and cells that remember their rows.

A page is sections of blocks: headings, paragraphs, notes, tables and figures. The same document
renders to HTML (``bench.report.html``) and to Markdown (``to_markdown`` here), so the two never
disagree. A table cell holding a result carries where it came from (the CSV, the ``run_id`` and the
row fields it averages), which the HTML keeps as ``data-`` attributes: every number on a page can be
traced, and checked, against its rows.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from bench.report.markdown import _fmt


@dataclass
class Cell:
    text: str
    value: float | None = None  # the mean shown
    source: dict | None = None  # {"csv": "svm.csv", "run_id": ..., "where": {column: value}}
    std: float | None = None
    n: int = 0
    href: str | None = None  # a relative link (the leaderboard's checkpoints to their cards)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell | str]]
    caption: str = ""
    sortable: bool = False


@dataclass
class Figure:
    src: str  # relative to the page
    caption: str
    alt: str = ""


@dataclass
class Gallery:
    figures: list[Figure]  # shown side by side
    caption: str


@dataclass
class Heading:
    text: str


@dataclass
class Paragraph:
    text: str


@dataclass
class Note:
    text: str  # something missing or skipped, and what to do about it


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)


@dataclass
class Doc:
    title: str
    subtitle: str
    sections: list[Section]
    footer: list[str]


def mean_cell(rows: list[dict], csv: str, run_id: str, metric: str, **where: str) -> Cell | None:
    """Mean ± std over the draws of ``run_id``'s rows of ``metric`` matching ``where`` (None: no such rows)."""
    where = {"metric": metric, **where}
    values = [float(r["value"]) for r in rows
              if r.get("run_id") == run_id and all(str(r.get(k, "")) == str(v) for k, v in where.items())]
    if not values:
        return None
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    text = _fmt(mean, metric) + (f" ± {_fmt(std, metric)}" if std is not None else "")
    return Cell(text, mean, {"csv": csv, "run_id": run_id, "where": where}, std, len(values))


def source_text(csv: str, run_id: str) -> str:
    """How a table row names the rows it came from."""
    return f"{csv} {run_id}"


def _text(cell: Cell | str | None) -> str:
    if cell is None:
        return "-"
    return cell.text if isinstance(cell, Cell) else str(cell)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Doc) -> str:
    """The document as Markdown: the same headings, tables, notes and figure links as the HTML page."""
    out = [f"# {doc.title}", "", doc.subtitle, ""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Heading):
                out += [f"### {block.text}", ""]
            elif isinstance(block, Paragraph):
                out += [block.text, ""]
            elif isinstance(block, Note):
                out += [f"> **Note.** {block.text}", ""]
            elif isinstance(block, Figure):
                out += [f"![{_md_escape(block.alt or block.caption)}]({block.src})", "", f"*{block.caption}*", ""]
            elif isinstance(block, Gallery):
                out += [" ".join(f"![{_md_escape(f.caption)}]({f.src})" for f in block.figures), "",
                        f"*{block.caption}*", ""]
            elif isinstance(block, Table):
                if block.caption:
                    out += [block.caption, ""]
                out.append("| " + " | ".join(map(_md_escape, block.columns)) + " |")
                out.append("|" + " --- |" * len(block.columns))
                out += ["| " + " | ".join(_md_escape(_text(c)) for c in row) + " |" for row in block.rows]
                out.append("")
    out += ["---", "", *[f"{line}  " for line in doc.footer], ""]
    return "\n".join(out)


def data_attributes(cell: Cell) -> dict[str, str]:
    """The ``data-`` attributes that tie an HTML cell to its rows."""
    if cell.source is None:
        return {}
    return {"data-csv": cell.source["csv"], "data-run": cell.source["run_id"],
            "data-where": json.dumps(cell.source["where"], sort_keys=True), "data-value": repr(cell.value),
            "data-n": str(cell.n)}
