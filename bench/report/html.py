"""A ``Doc`` as one static HTML page: inline CSS, no script unless asked for, nothing from the network.

The page opens from disk in any browser and prints: pictures are files beside it (relative paths),
fonts are the system's, a table of contents links the sections. ``sortable`` tables get a small
inline script (click a header to sort); without it they read the same, unsorted.
"""
from __future__ import annotations

from html import escape

from bench.report.doc import Cell, Doc, Figure, Gallery, Heading, Note, Paragraph, Table, data_attributes

CSS = """
:root { --ink: #1d2125; --muted: #5f6b76; --rule: #d5dbe1; --band: #f4f6f8; --accent: #1f5f99; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
       font: 15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 40px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0 0 12px; color: var(--muted); }
nav { display: flex; flex-wrap: wrap; gap: 6px 16px; padding: 8px 0 12px; border-bottom: 1px solid var(--rule); }
nav a { color: var(--accent); text-decoration: none; font-size: 14px; }
section { margin-top: 28px; }
h2 { font-size: 21px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 16px; margin: 20px 0 8px; }
p { margin: 6px 0 10px; max-width: 80ch; }
.note { border-left: 4px solid var(--warn); background: #fff8e6; padding: 8px 12px; margin: 10px 0; max-width: 90ch; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 4px; font-size: 13px; }
th, td { border: 1px solid var(--rule); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.src { color: var(--muted); font: 11.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
th.sort { cursor: pointer; }
th.sort::after { content: " \\2195"; color: var(--muted); }
figure { margin: 10px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); image-rendering: pixelated; }
figure img.plot { image-rendering: auto; }
figcaption { color: var(--muted); font-size: 13.5px; max-width: 90ch; margin-top: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 12px; }
.grid figure { margin: 0; }
.grid img { width: 100%; }
footer { margin-top: 36px; padding-top: 10px; border-top: 1px solid var(--rule); color: var(--muted);
         font-size: 12.5px; }
footer p { margin: 2px 0; max-width: none; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  section, figure, table { break-inside: avoid; }
  .scroll { overflow: visible; }
  h2, h3 { break-after: avoid; }
  a { color: inherit; text-decoration: none; }
}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, col) {
    th.classList.add("sort");
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.dataset.dir !== "up"; th.dataset.dir = up ? "up" : "down";
      function key(row) { var c = row.cells[col]; var v = c.dataset.sort !== undefined ? c.dataset.sort : c.textContent;
                          var x = parseFloat(v); return isNaN(x) ? v : x; }
      rows.sort(function (a, b) { var x = key(a), y = key(b);
        if (x === y) return 0; if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
        return (x < y ? -1 : 1) * (up ? 1 : -1); });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _attrs(attrs: dict[str, str]) -> str:
    return "".join(f' {k}="{escape(v, quote=True)}"' for k, v in attrs.items())


def _cell(cell: Cell | str | None) -> str:
    if cell is None:
        return '<td class="num">-</td>'
    if isinstance(cell, Cell):
        attrs = data_attributes(cell)
        if cell.value is not None:
            attrs = {"class": "num", "data-sort": repr(cell.value), **attrs}
        text = escape(cell.text)
        if cell.href:
            text = f'<a href="{escape(cell.href, quote=True)}">{text}</a>'
        return f"<td{_attrs(attrs)}>{text}</td>"
    return f"<td>{escape(str(cell))}</td>"


def table(block: Table) -> str:
    cls = ' class="sortable"' if block.sortable else ""
    head = "".join(f"<th>{escape(c)}</th>" for c in block.columns)
    body = []
    for row in block.rows:
        cells = [_cell(c) for c in row]
        if block.columns and block.columns[-1] == "rows" and row and not isinstance(row[-1], Cell):
            cells[-1] = f'<td class="src">{escape(str(row[-1]))}</td>'
        body.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{escape(block.caption)}</caption>" if block.caption else ""
    return (f'<div class="scroll"><table{cls}>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def figure(block: Figure) -> str:
    plot = ' class="plot"' if block.src.endswith("-plot.png") else ""
    return (f'<figure><img src="{escape(block.src, quote=True)}" alt="{escape(block.alt or block.caption, quote=True)}"'
            f'{plot} loading="lazy"><figcaption>{escape(block.caption)}</figcaption></figure>')


def render(doc: Doc) -> str:
    parts = []
    for section in doc.sections:
        inner = []
        for block in section.blocks:
            if isinstance(block, Heading):
                inner.append(f"<h3>{escape(block.text)}</h3>")
            elif isinstance(block, Paragraph):
                inner.append(f"<p>{escape(block.text)}</p>")
            elif isinstance(block, Note):
                inner.append(f'<p class="note">{escape(block.text)}</p>')
            elif isinstance(block, Table):
                inner.append(table(block))
            elif isinstance(block, Figure):
                inner.append(figure(block))
            elif isinstance(block, Gallery):
                inner.append(f'<figure><div class="grid">{"".join(figure(f) for f in block.figures)}</div>'
                             f"<figcaption>{escape(block.caption)}</figcaption></figure>")
        parts.append(f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>{"".join(inner)}</section>')
    nav = "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in doc.sections)
    sortable = any(isinstance(b, Table) and b.sortable for s in doc.sections for b in s.blocks)
    script = f"<script>{SORT_SCRIPT}</script>" if sortable else ""
    footer = "".join(f"<p>{escape(line)}</p>" for line in doc.footer)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(doc.title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{escape(doc.title)}</h1><p>{escape(doc.subtitle)}</p></header><nav>{nav}</nav>"
            f"{''.join(parts)}<footer>{footer}</footer></main>{script}</body></html>\n")
