"""Suites: the battery ``bench evaluate`` runs, and at what budget, as data (TOML).

A suite file holds a ``description`` and a list of ``[[task]]`` tables::

    description = "minutes on a 2-core CPU"

    [[task]]
    name = "svm"                 # a registered task
    label = "10 labels a class"  # optional: tells two entries of one task apart on the card
    subset = 2000                # optional: images used per split (bench run --subset)
    recipe = "recommended"       # optional: a named recipe of the task
    per_layer = "max4"           # optional, probes: one run per D layer, features=<layer>/max4
    per_epoch = 5                # optional, probes: one run per per-epoch D export of a training run, at
                                 # most this many evenly spaced, the last always among them (true: every one)
    params = { labels_per_class = 10, draws = 20 }   # the task's parameters (bench list TASK)

    [task.params_for.svhn]       # optional: parameters for one data set only, over params
    draws = 100

``svm`` runs the data set's own probe task when one is registered (``cifar10-svm`` carries the
paper's CIFAR-10 references, ``svhn-svm`` its 1000-label protocol), else ``svm`` itself.
The budgets ``smoke``, ``standard`` and ``paper`` ship with the package (``bench/suites/``); every
entry is checked when the file is read, so a typo fails before any work.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

from bench.tasks.base import TASKS, make_params
from dcgan.errors import ConfigError, DCGANError

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

BUDGETS = ("smoke", "standard", "paper")
ENTRY_KEYS = ("name", "label", "subset", "recipe", "per_layer", "per_epoch", "params", "params_for")


@dataclass(frozen=True)
class Entry:
    """One task of a suite, with its settings."""

    name: str
    label: str = ""
    subset: int | None = None
    recipe: str | None = None
    per_layer: str | None = None  # pooling of per-layer probes, e.g. max4
    per_epoch: bool | int = False  # probe the per-epoch D exports (true: all; N: N evenly spaced, the last among them)
    params: dict = field(default_factory=dict)
    params_for: dict = field(default_factory=dict)  # data set -> parameters over ``params``

    def task_for(self, dataset: str) -> str:
        """The registered task this entry runs on ``dataset`` (the data set's own variant if any)."""
        variant = f"{dataset}-{self.name}"
        if dataset and variant in TASKS and TASKS.get(variant).default_dataset == dataset:
            return variant
        return self.name

    def params_on(self, dataset: str) -> dict:
        return {**self.params, **self.params_for.get(dataset, {})}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    entries: tuple[Entry, ...]
    source: str  # the file it was read from


def budget_path(budget: str) -> Path:
    """The shipped suite file of a budget."""
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}; expected one of {', '.join(BUDGETS)} (or --suite FILE)")
    return Path(str(resources.files("bench") / "suites" / f"{budget}.toml"))


def load_suite(path: str | Path, name: str | None = None) -> Suite:
    """Read and check a suite file: every task registered, every key and parameter known."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"suite file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"suite file {path}: not valid TOML ({e})") from None
    tasks = data.get("task")
    if not isinstance(tasks, list) or not tasks:
        raise ConfigError(f"suite file {path}: expected a list of [[task]] tables with a name each")
    entries = tuple(_entry(path, i + 1, t) for i, t in enumerate(tasks))
    return Suite(name or path.stem, str(data.get("description", "")), entries, str(path))


def select(suite: Suite, only: tuple[str, ...] = (), skip: tuple[str, ...] = ()) -> Suite:
    """The suite's entries named by ``only`` (all when empty) less those named by ``skip``."""
    for name in (*only, *skip):
        TASKS.get(name)  # an unknown task: a one-line error with the known names
        if name not in {e.name for e in suite.entries}:
            raise ConfigError(f"task {name!r} is not in suite {suite.name} ({suite.source}); its tasks: "
                              f"{', '.join(dict.fromkeys(e.name for e in suite.entries))}")
    entries = tuple(e for e in suite.entries if (not only or e.name in only) and e.name not in skip)
    return replace(suite, entries=entries)


def _entry(path: Path, number: int, table: dict) -> Entry:
    where = f"suite file {path}, task #{number}"
    if not isinstance(table, dict) or "name" not in table:
        raise ConfigError(f"{where}: expected a table with a name")
    unknown = sorted(set(table) - set(ENTRY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(ENTRY_KEYS)}")
    try:
        task = TASKS.get(str(table["name"]))
    except DCGANError as e:
        raise ConfigError(f"{where}: {e}") from None
    params = _tuples(table.get("params", {}), where)
    params_for = {str(k): _tuples(v, where) for k, v in table.get("params_for", {}).items()}
    for values in (params, *({**params, **extra} for extra in params_for.values())):
        try:
            make_params(task, values, table.get("recipe"))
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    subset = table.get("subset")
    if subset is not None and (isinstance(subset, bool) or not isinstance(subset, int) or subset < 1):
        raise ConfigError(f"{where}: subset={subset!r}: expected a positive integer")
    per_layer, per_epoch = table.get("per_layer"), table.get("per_epoch", False)
    if not isinstance(per_epoch, (bool, int)) or (not isinstance(per_epoch, bool) and per_epoch < 1):
        raise ConfigError(f"{where}: per_epoch={per_epoch!r}: expected true, false or a number of epochs >= 1")
    for key, value in (("per_layer", per_layer is not None), ("per_epoch", per_epoch)):
        if value and task.needs != "discriminator":
            raise ConfigError(f"{where}: {key} is for tasks of a discriminator's features, not {task.name!r}")
    if per_layer is not None and per_epoch:
        raise ConfigError(f"{where}: per_layer and per_epoch together: expected one of them (a run per layer of "
                          "every epoch's D would be layers x epochs probes)")
    return Entry(task.name, str(table.get("label", "")), subset, table.get("recipe"), per_layer, per_epoch, params,
                 params_for)


def _tuples(values, where: str) -> dict:
    """TOML arrays as the tuples task parameters are typed with."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: params must be a table of key = value")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
