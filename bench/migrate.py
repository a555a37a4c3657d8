"""Results tables written before the ``details`` column, brought to today's schema.

Until then a row's ``params`` JSON held its task's parameters and the task's per-row outputs alike
(timings, per-C validation scores, counts), and the near-duplicate task wrote its radius and timings
as rows of their own. Migrating a row:

- keeps in ``params`` the task's parameters (under today's names) and the run's inputs (precision,
  split, the FID sources) and moves every other key to ``details``;
- folds dedup's ``radius`` and ``seconds_*`` rows into the details (and the radius into the params) of
  the rows they stood beside;
- never changes a ``run_id``, a value or a provenance column.

Files a run wrote beside its rows lived in three layouts (``<task>-<run_id>.png``,
``<task>/<run_id>_<name>``, ``figures/<task>/<sha12>-<run_id>_<name>``); ``move_artifacts`` puts them
in today's one, ``<task>/<run_id>/<name>`` (the step plot is named ``vs-step.png``).

``read_table`` applies this to any older table it reads, so old files keep loading; run
``python -m bench.migrate results/`` to rewrite a folder's tables in place (atomically).
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

RENAMED = {  # task: {old parameter name: today's}
    "fid": {"num_samples": "samples"},
    "forget": {"n": "samples", "c": "logreg_c"},
    "memorisation": {"n": "samples", "k": "neighbours", "d": "discriminator"},
    "vector-arithmetic": {"a": "concept_a", "b": "concept_b", "c": "concept_c"},
}
RUN_INPUTS = ("precision", "split", "real", "fake")  # inputs of a run that are not task parameters
DEDUP_FOLDED = ("radius", "seconds_read", "seconds_hash", "seconds_search", "seconds_train")


def migrate_rows(rows: list[dict]) -> list[dict]:
    """Rows of the schema before ``details``, in today's schema (see the module docstring)."""
    folded: dict[tuple, dict] = {}
    for r in rows:
        if r.get("task") == "dedup" and r.get("metric") in DEDUP_FOLDED:
            folded.setdefault(_sibling_key(r), {})[r["metric"]] = _number(r["value"])
    out = []
    for r in rows:
        if r.get("task") == "dedup" and r.get("metric") in DEDUP_FOLDED:
            continue
        params, details = split_params(r.get("task", ""), json.loads(r.get("params") or "{}"), r.get("dataset", ""))
        if r.get("task") == "dedup":
            extra = folded.get(_sibling_key(r), {})
            radius = extra.pop("radius", None)
            if radius is None and (m := re.search(r"r=(\d+)", r.get("features", ""))):
                radius = int(m.group(1))
            if radius is not None:
                params["radius"] = int(radius)
            details.update(extra)
        out.append({**r, "params": json.dumps(params, sort_keys=True), "details": json.dumps(details, sort_keys=True)})
    return out


def split_params(task: str, old: dict, dataset: str) -> tuple[dict, dict]:
    """(inputs, outputs) of an old params JSON, inputs under today's parameter names."""
    from bench.run import TASKS

    renamed = {RENAMED.get(task, {}).get(k, k): v for k, v in old.items()}
    if task == "fid":  # --fake generator / split:NAME and the split parameter became --fake / --real sources
        fake = renamed.get("fake", "generator")
        if fake.startswith("split:"):
            renamed["fake"] = f"dataset:{dataset}:{fake[len('split:'):]}"
        elif fake == "generator":
            renamed.pop("fake")
        renamed["real"] = f"dataset:{dataset}:{renamed.pop('split', 'train')}"
    fields = {f.name for f in dataclasses.fields(TASKS.get(task).Params)} if task in TASKS else set(renamed)
    inputs = {k: v for k, v in renamed.items() if k in fields or k in RUN_INPUTS}
    return inputs, {k: v for k, v in renamed.items() if k not in inputs}


def _sibling_key(r: dict) -> tuple:
    return r.get("run_id"), r.get("model"), r.get("features"), r.get("draw"), r.get("ckpt_sha256")


def _number(text: str):
    value = float(text)
    return int(value) if value.is_integer() else value


OLD_ARTIFACTS = (  # (pattern under the results folder, today's path from its groups)
    (re.compile(r"(?P<task>[a-z0-9-]+)-(?P<run>[0-9a-f]{16})\.png"), "{task}/{run}/vs-step.png"),
    (re.compile(r"(?P<task>[a-z0-9-]+)/(?P<run>[0-9a-f]{16})_(?P<name>[^/]+)"), "{task}/{run}/{name}"),
    (re.compile(r"figures/(?P<task>[a-z0-9-]+)/[0-9a-f]{12}-(?P<run>[0-9a-f]{16})_(?P<name>[^/]+)"),
     "{task}/{run}/{name}"),
    (re.compile(r"figures/(?P<task>[a-z0-9-]+)/(?P<name>[^/]+)"), "{task}/{name}"),  # a user's own file
)


def move_artifacts(folder: Path) -> list[tuple[Path, Path]]:
    """Move a results folder's files from the older layouts into ``<task>/<run_id>/<name>``."""
    moved = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        for pattern, target in OLD_ARTIFACTS:
            if m := pattern.fullmatch(rel):
                new = folder / target.format(**m.groupdict())
                if new != path:
                    new.parent.mkdir(parents=True, exist_ok=True)
                    path.replace(new)
                    moved.append((path, new))
                break
    for empty in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(empty.iterdir()):
            empty.rmdir()
    return moved


def main(argv: list[str]) -> int:
    """Rewrite every results table under the given folders in today's schema, and move their files."""
    from bench.results import read_rows, upsert

    for folder in argv or ["results"]:
        for old, new in move_artifacts(Path(folder)):
            print(f"{old} -> {new}")
        for path in sorted(Path(folder).glob("*.csv")):
            upsert(path, [])  # no new rows: the table's own, read (migrated) and written back in today's schema
            print(f"{path}: {len(read_rows(path))} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
