"""Reports over the result tables: ``bench report``'s Markdown summary (``markdown``), the report card of
one model (``card``, written by ``bench evaluate``) and the leaderboard over every checkpoint
(``leaderboard``), both static HTML pages (``html``) built from one document model (``doc``)."""
from bench.report.markdown import load_rows, summarize, to_markdown

__all__ = ["load_rows", "summarize", "to_markdown"]
