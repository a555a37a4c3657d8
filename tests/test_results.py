"""The results schema (inputs in params, outputs in details), the migration of older tables, refusal of
files the suite does not recognise, typed parameters and the one registry."""
import csv
import json
from dataclasses import dataclass
from typing import Literal

import pytest

from bench.migrate import migrate_rows, move_artifacts
from bench.params import build, table
from bench.results import RESULT_COLUMNS, V1_COLUMNS, ResultsError, read_rows, upsert
from bench.run import TASKS
from dcgan.errors import ConfigError, DCGANError
from dcgan.params import Params, param
from dcgan.registry import Registry

OLD_SVM = {"run_id": "f4d02fc6ff56cc3f", "task": "svm", "task_version": "3", "dataset": "digits", "split": "test",
           "ckpt": "d.pt", "ckpt_sha256": "ab" * 32, "model": "trained-d", "features": "all/max4", "draw": "0",
           "metric": "accuracy", "value": "0.8166", "seed": "0", "subset": "", "seconds": "3.5", "device": "cpu",
           "versions": "{}", "timestamp": "2026-11-25T00:00:00+00:00",
           "params": json.dumps({"C": 0.0005, "features": "all/max4", "labels_per_class": 100, "n_fit": 1000,
                                 "precision": "fp32", "val_accuracy_by_C": {"0.0005": 0.82}, "tol": 0.0001})}


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows({c: r.get(c, "") for c in header} for r in rows)


def test_an_older_table_is_migrated_with_its_run_ids_and_values(tmp_path):
    path = tmp_path / "svm.csv"
    _write(path, V1_COLUMNS, [OLD_SVM])
    [row] = read_rows(path)
    assert (row["run_id"], row["value"]) == (OLD_SVM["run_id"], OLD_SVM["value"])
    assert json.loads(row["params"]) == {"features": "all/max4", "labels_per_class": 100, "precision": "fp32",
                                         "tol": 0.0001}
    assert json.loads(row["details"]) == {"C": 0.0005, "n_fit": 1000, "val_accuracy_by_C": {"0.0005": 0.82}}
    new = {**OLD_SVM, "run_id": "0" * 16, "params": "{}", "details": "{}"}
    upsert(path, [new])  # a write migrates the whole file to today's schema
    with open(path, newline="") as f:
        assert tuple(next(csv.reader(f))) == RESULT_COLUMNS
    assert [r["run_id"] for r in read_rows(path)] == [OLD_SVM["run_id"], "0" * 16]


def test_dedup_radius_and_timing_rows_fold_into_their_siblings():
    base = {**OLD_SVM, "task": "dedup", "model": "ae-hash", "features": "128-bit r=4", "params": '{"radius": [0, 4]}'}
    rows = [{**base, "metric": "f1", "value": "0.9"}, {**base, "metric": "radius", "value": "4.0"},
            {**base, "metric": "seconds_search", "value": "1.5"}]
    [row] = migrate_rows(rows)
    assert row["metric"] == "f1" and json.loads(row["params"])["radius"] == 4
    assert json.loads(row["details"]) == {"seconds_search": 1.5}


@pytest.mark.parametrize("damage", ["drop header", "rename value", "random bytes"])
def test_a_table_whose_header_is_not_ours_is_refused_and_left_as_it_was(tmp_path, damage):
    path = tmp_path / "svm.csv"
    row = {**OLD_SVM, "details": "{}"}
    _write(path, RESULT_COLUMNS, [row, {**row, "run_id": "1" * 16}])
    text = path.read_bytes()
    if damage == "drop header":
        text = text.split(b"\n", 1)[1]
    elif damage == "rename value":
        text = text.replace(b",value,", b",Value,", 1)
    else:
        text = bytes(range(256)) * 4
    path.write_bytes(text)
    with pytest.raises(ResultsError, match="svm.csv"):
        upsert(path, [{**row, "run_id": "2" * 16}])
    assert path.read_bytes() == text


def test_columns_a_user_added_are_kept(tmp_path):
    path = tmp_path / "svm.csv"
    _write(path, (*RESULT_COLUMNS, "note"), [{**OLD_SVM, "details": "{}", "note": "kept"}])
    upsert(path, [{**OLD_SVM, "run_id": "2" * 16, "details": "{}"}])
    assert [r["note"] for r in read_rows(path)] == ["kept", ""]


def test_old_artifact_layouts_move_to_task_run_name(tmp_path):
    for rel in ("fid-aed9ecf11d10ce25.png", "dedup/046596ccc138ce44_clusters.csv",
                "figures/forget/4103ba16d58a-5f0acfb14e86c590_samples.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    move_artifacts(tmp_path)
    assert (tmp_path / "fid/aed9ecf11d10ce25/vs-step.png").read_text() == "fid-aed9ecf11d10ce25.png"
    assert (tmp_path / "dedup/046596ccc138ce44/clusters.csv").is_file()
    assert (tmp_path / "forget/5f0acfb14e86c590/samples.png").is_file()
    assert not (tmp_path / "figures").exists()


@dataclass(frozen=True)
class _Knobs(Params):
    mode: Literal["a", "b"] = param("a", "a choice")
    rate: float = param(0.5, "a rate", low=0, low_open=True, high=1)
    sizes: tuple[int, ...] = param((1,), "sizes", low=1, nonempty=True)
    cap: int | None = param(None, "a cap", low=2)


@pytest.mark.parametrize("key,value,message", [
    ("mode", "c", "parameter mode='c': expected one of a, b"),
    ("rate", "0", "parameter rate=0: expected a number in (0, 1]"),
    ("rate", "nan", "parameter rate=nan: expected a number in (0, 1]"),
    ("rate", "x", "parameter rate='x': expected a number"),
    ("sizes", "1,0", "parameter sizes=0: expected comma-separated integers >= 1"),
    ("sizes", "none", "parameter sizes: expected at least one value"),
    ("cap", "1", "parameter cap=1: expected an integer >= 2 or none"),
    ("kap", "3", "has no parameter 'kap' (did you mean 'cap'?)"),
])
def test_every_bad_value_gets_the_same_one_line_error(key, value, message):
    with pytest.raises(ConfigError) as e:
        build(_Knobs, "task 'x'", {key: value})
    assert message in str(e.value) and str(e.value).startswith("task 'x'") and "\n" not in str(e.value)


def test_good_values_are_parsed_to_their_types_and_listed():
    p = build(_Knobs, "task 'x'", {"mode": "b", "rate": "1", "sizes": "2,3", "cap": "none"})
    assert (p.mode, p.rate, p.sizes, p.cap) == ("b", 1.0, (2, 3), None)
    rows = {r["name"]: r for r in table(_Knobs)}
    assert rows["mode"]["allowed"] == "one of a, b" and rows["rate"]["help"] == "a rate"
    assert rows["cap"]["allowed"] == "an integer >= 2 or none"


def test_every_task_declares_help_for_every_parameter_and_valid_defaults():
    for name, task in TASKS.items():
        assert task.name == name and task.summary
        for row in table(task.Params):
            assert row["help"], (name, row["name"])
        task.Params()  # the defaults pass their own checks
        for recipe in task.recipes:
            build(task.Params, name, task.recipes[recipe])


def test_registry_names_what_it_registers_and_refuses_a_duplicate():
    things = Registry("thing")

    @things.register("widget")
    class Widget:
        pass

    assert Widget.name == "widget" and things.get("widget") is Widget
    with pytest.raises(ValueError, match="registered twice"):
        things.add("widget", object)
    with pytest.raises(DCGANError, match="did you mean 'widget'"):
        things.get("widgit")


def test_report_on_a_non_numeric_value_is_a_one_line_error(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    _write(tmp_path / "svm.csv", RESULT_COLUMNS, [{**OLD_SVM, "details": "{}", "value": "n/a"}])
    r = CliRunner().invoke(main, ["report", "--results", str(tmp_path)], catch_exceptions=False)
    assert r.exit_code == 2 and "value 'n/a' is not a number" in r.output and len(r.output.splitlines()) == 1


@pytest.mark.parametrize("flag", ["results", "data-root"])
def test_unwritable_results_and_non_utf8_paths_fail_before_any_work(tmp_path, flag, monkeypatch):
    import os

    from click.testing import CliRunner

    from bench.cli import main
    from fixtures_tasks import tiny_checkpoints

    _, d = tiny_checkpoints(tmp_path, nc=1)
    work = []
    monkeypatch.setattr(TASKS.get("svm"), "run", lambda self, ctx, p: work.append(1) or [])
    (tmp_path / "a-file").write_text("x")
    args = {"results": ["--results", str(tmp_path / "a-file" / "results")],
            "data-root": ["--data-root", os.fsdecode(b"/tmp/caf\xe9")]}[flag]
    r = CliRunner().invoke(main, ["run", "svm", "--dataset", "digits", "--ckpt", str(d), *args],
                           catch_exceptions=False)
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1, r.output
    assert ("is not writable" if flag == "results" else "valid UTF-8") in r.output
    assert not work
