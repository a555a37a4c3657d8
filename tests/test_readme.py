"""The README's commands against the `bench` command itself, so the user's guide cannot drift from the CLI.

Every line of the README's ```bash / ```sh / ```console blocks that starts with ``bench `` (or
``$ bench ``) is a command: each distinct ``bench <command> [<subcommand>]`` must answer ``--help``,
each ``--option`` it uses must be an option of that command (in the docs' commands too, whose
``bench run`` tasks, ``--set`` keys and ``--recipe`` names must be registered), and ``bench list`` (and every
``bench list TASK`` shown) is run for real. The task and data set tables must name exactly the
registered ones, and the README's relative links must resolve.

What this cannot check: whether a command succeeds on real data and checkpoints (most need data
sets and trained nets), the values given to options and to ``--set`` parameters, and shell lines
where ``bench`` is not the first word: those are listed in NOT_CHECKED with the reason, and a new
such line fails the test until it is listed there.
"""
from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SHELL_BLOCKS = ("bash", "sh", "console")

# Shell lines that run `bench` but not as their first word, so no argv can be taken from them.
NOT_CHECKED = {
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && bench quickstart":
        "installs the package first and trains for minutes; .ci/run installs the same way and "
        "tests/test_cli.py runs a one-epoch quickstart",
}


def shell_lines(text: str) -> list[str]:
    """The lines of the fenced shell blocks, backslash continuations joined, ``$ `` prompts removed."""
    lines, block, pending = [], None, ""
    for raw in text.splitlines():
        fence = re.match(r"^\s*```\s*([\w-]*)", raw)
        if fence:
            block = None if block is not None else fence.group(1).lower()
            continue
        if block not in SHELL_BLOCKS:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        line = line[2:] if line.startswith("$ ") else line
        if line:
            lines.append(line)
    return lines


def bench_commands(text: str) -> list[list[str]]:
    """The argv (after ``bench``) of every shell line that starts with ``bench ``."""
    return [shlex.split(line, comments=True)[1:] for line in shell_lines(text) if line.startswith("bench ")]


def resolve(argv: list[str]) -> tuple[click.Command | None, list[str]]:
    """The click command that ``argv`` runs and the words naming it (None when a word names nothing)."""
    cmd, path = main, []
    for word in argv:
        if word.startswith("-") or not isinstance(cmd, click.Group):
            break
        sub = cmd.commands.get(word)
        path.append(word)
        if sub is None:
            return None, path
        cmd = sub
    return cmd, path


def options(cmd: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in cmd.params:
        names.update(param.opts, param.secondary_opts)
    return names


def table_names(text: str, heading: str) -> set[str]:
    """The backquoted names in the first column of the table under ``## heading``."""
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


TEXT = README.read_text()
COMMANDS = bench_commands(TEXT)
DOCS = sorted([*(ROOT / "docs").rglob("*.md"), ROOT / "benchmarks" / "README.md", ROOT / "results" / "README.md"])
DOC_COMMANDS = [(doc.relative_to(ROOT).as_posix(), argv) for doc in DOCS for argv in bench_commands(doc.read_text())]
PATHS = sorted({tuple(resolve(argv)[1]) for argv in COMMANDS})
LIST_TASKS = [argv[1] for argv in COMMANDS if argv[:1] == ["list"] and len(argv) > 1]


def _bench(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_readme_commands_are_found():
    """The extraction itself: the guide's workflow commands are there (an empty list checks nothing)."""
    assert {argv[0] for argv in COMMANDS} >= {"train", "sample", "list", "run", "report", "cache"}, COMMANDS


def test_every_shell_line_running_bench_is_checked_or_marked():
    unmarked = [line for line in shell_lines(TEXT)
                if re.search(r"\bbench\b", line) and not line.startswith("bench ") and line not in NOT_CHECKED]
    assert not unmarked, f"shell lines running bench that this test cannot check; list them in NOT_CHECKED: {unmarked}"
    stale = [line for line in NOT_CHECKED if line not in shell_lines(TEXT)]
    assert not stale, f"NOT_CHECKED lines no longer in README.md: {stale}"


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_command_answers_help(path):
    r = _bench(*path, "--help")
    assert r.exit_code == 0, f"bench {' '.join(path)} --help: exit {r.exit_code}\n{r.output}"


@pytest.mark.parametrize("doc,argv", [*((("README.md", a) for a in COMMANDS)), *DOC_COMMANDS],
                         ids=[f"{d}:{' '.join(a[:2])}" for d, a in [*(("README.md", a) for a in COMMANDS), *DOC_COMMANDS]])
def test_commands_name_real_options_tasks_parameters_and_recipes(doc, argv):
    """Every command in the guide and the docs: its options exist, and for `bench run TASK` the task,
    every `--set` key and the `--recipe` name are registered."""
    from bench.run import TASKS

    cmd, path = resolve(argv)
    assert cmd is not None, f"{doc}: bench {' '.join(path)}: no such command"
    used = {word.split("=", 1)[0] for word in argv if word.startswith("-")}
    assert used <= options(cmd), f"{doc}: bench {' '.join(argv)}: no option {', '.join(sorted(used - options(cmd)))}"
    if path == ["run"]:
        task = TASKS.get(argv[1])
        fields = {f.name for f in dataclasses.fields(task.Params)}
        keys = {argv[i + 1].split("=", 1)[0] for i, w in enumerate(argv[:-1]) if w == "--set"}
        assert keys <= fields, f"{doc}: bench {' '.join(argv)}: {argv[1]} has no parameter {keys - fields}"
        recipes = {argv[i + 1] for i, w in enumerate(argv[:-1]) if w == "--recipe"}
        assert recipes <= set(task.recipes), f"{doc}: bench {' '.join(argv)}: no recipe {recipes}"


def test_bench_list_runs_and_the_tables_name_what_is_registered():
    from bench.run import TASKS
    from dcgan.data import dataset_names

    r = _bench("list")
    assert r.exit_code == 0, r.output
    for name in [*TASKS.names(), *dataset_names()]:
        assert name in r.output, name
    assert table_names(TEXT, "Tasks") == set(TASKS.names())
    assert table_names(TEXT, "Data sets") == set(dataset_names())


@pytest.mark.parametrize("task", LIST_TASKS)
def test_bench_list_task_shows_every_parameter(task):
    from bench.run import TASKS

    r = _bench("list", task)
    assert r.exit_code == 0, r.output
    for field in dataclasses.fields(TASKS.get(task).Params):
        assert field.name in r.output, field.name


def test_readme_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", TEXT)
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert links and not missing, missing
