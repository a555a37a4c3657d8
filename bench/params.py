"""Typed task parameters: declared once in a frozen dataclass, parsed from ``--set`` text, checked once.

A task's knobs are the fields of its ``Params`` class (a subclass of ``Params`` below)::

    @dataclass(frozen=True)
    class SvmParams(Params):
        solver: Literal["lbfgs", "sklearn"] = param("lbfgs", "our float32 L-BFGS, or scikit-learn's LinearSVC")
        tol: float = param(1e-4, "solver tolerance", low=0, low_open=True)

The type says what a value may be (``Literal`` choices, ``int``, ``float``, ``str``, ``tuple[...]`` of
those, ``X | None``); ``param``'s ``low``/``high`` bound numbers (each element of a tuple). Every
instance is checked in ``__post_init__``, so a bad value fails before any work with the same one-line
error wherever it came from: ``--set``, a recipe, a suite file or Python. ``bench list TASK`` prints
the same declarations.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from dcgan.errors import ConfigError


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          low_open: bool = False, nonempty: bool = False) -> Any:
    """A dataclass field with a line of help and, for numbers, a valid range (``low_open``: ``> low``)."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "low_open": low_open,
                                            "nonempty": nonempty})


@dataclass(frozen=True)
class Params:
    """Base of every task's parameters: checks each field against its type and range."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=False)
        for f in dataclasses.fields(self):
            _check(f.name, getattr(self, f.name), hints[f.name], f.metadata)


def _optional(hint) -> tuple[Any, bool]:
    """(the hint without None, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), len(args) < len(typing.get_args(hint))
    return hint, False


def _check(key: str, value, hint, meta) -> None:
    base, optional = _optional(hint)
    if value is None:
        if not optional:
            raise ConfigError(f"parameter {key}=None: expected {describe(hint, meta)}")
        return
    if typing.get_origin(base) is tuple:
        if not isinstance(value, tuple):
            raise ConfigError(f"parameter {key}={value!r}: expected {describe(hint, meta)}")
        if meta.get("nonempty") and not value:
            raise ConfigError(f"parameter {key}: expected at least one value ({describe(hint, meta)})")
        for item in value:
            _check_scalar(key, item, typing.get_args(base)[0], meta, hint)
        return
    _check_scalar(key, value, base, meta, hint)


def _check_scalar(key: str, value, base, meta, hint) -> None:
    wrong = ConfigError(f"parameter {key}={_show(value)}: expected {describe(hint, meta)}")
    if typing.get_origin(base) is Literal:
        if value not in typing.get_args(base):
            raise wrong
        return
    if base is bool:
        if not isinstance(value, bool):
            raise wrong
        return
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float) if base is float else int):
            raise wrong
        if not math.isfinite(value):
            raise wrong
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (value <= low if meta.get("low_open") else value < low):
            raise wrong
        if high is not None and value > high:
            raise wrong
        return
    if base is str and not isinstance(value, str):
        raise wrong


def _show(value) -> str:
    return repr(value) if not isinstance(value, float) else f"{value:g}"


def describe(hint, meta=None) -> str:
    """What a field accepts, in words: ``one of lbfgs, sklearn``, ``a number > 0``, ``integers >= 1``."""
    meta = meta or {}
    base, optional = _optional(hint)
    plural = typing.get_origin(base) is tuple
    if plural:
        base = typing.get_args(base)[0]
    if typing.get_origin(base) is Literal:
        text = ("some of " if plural else "one of ") + ", ".join(map(str, typing.get_args(base)))
    else:
        noun = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(base, str(base))
        if plural:
            noun = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(base, noun)
        text = noun + _range_text(meta)
        if plural:
            text = "comma-separated " + text
    return text + (" or none" if optional else "")


def _range_text(meta) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        return f" in {'(' if meta.get('low_open') else '['}{low:g}, {high:g}]"
    if low is not None:
        return f" {'>' if meta.get('low_open') else '>='} {low:g}"
    if high is not None:
        return f" <= {high:g}"
    return ""


def parse(text: str, hint, key: str):
    """``--set`` text to a value of the field's type (checked against choices and ranges later)."""
    base, optional = _optional(hint)
    if optional and text.strip().lower() in ("none", ""):
        return None
    if typing.get_origin(base) is tuple:
        if text.strip().lower() == "none":  # an empty tuple, e.g. baselines=none
            return ()
        return tuple(parse(t.strip(), typing.get_args(base)[0], key) for t in text.split(",") if t.strip())
    if typing.get_origin(base) is Literal:
        kinds = {type(a) for a in typing.get_args(base)}
        base = kinds.pop() if len(kinds) == 1 else str
    try:
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        return base(text) if base in (int, float) else text
    except ValueError:
        raise ConfigError(f"parameter {key}={text!r}: expected {describe(hint)}") from None


def build(params_cls: type[Params], owner: str, overrides: dict[str, object]) -> Params:
    """``params_cls`` with ``overrides`` (``--set`` text or typed values), every field checked.

    Errors name the owner (e.g. ``task 'svm'``), the key, the value and what is allowed.
    """
    fields = {f.name: f for f in dataclasses.fields(params_cls)}
    hints = typing.get_type_hints(params_cls)
    values = {}
    for key in overrides:
        if key.replace("-", "_") not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{owner} has no parameter {key!r}{hint}; parameters: {', '.join(fields)}")
    try:
        for key, raw in overrides.items():
            key = key.replace("-", "_")
            values[key] = parse(raw, hints[key], key) if isinstance(raw, str) else raw
        return params_cls(**values)
    except ConfigError as e:
        raise ConfigError(f"{owner}: {e}") from None


def table(params_cls: type[Params]) -> list[dict[str, str]]:
    """One entry per field: name, type, default, allowed values, help (for ``bench list TASK``)."""
    hints = typing.get_type_hints(params_cls)
    out = []
    for f in dataclasses.fields(params_cls):
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        out.append({"name": f.name, "type": _type_name(hints[f.name]), "default": shown or "(empty)",
                    "allowed": describe(hints[f.name], f.metadata), "help": f.metadata.get("help", "")})
    return out


def _type_name(hint) -> str:
    base, optional = _optional(hint)
    if typing.get_origin(base) is tuple:
        name = f"list of {_type_name(typing.get_args(base)[0])}"
    elif typing.get_origin(base) is Literal:
        name = "choice"
    else:
        name = getattr(base, "__name__", str(base))
    return name + (" or none" if optional else "")
