"""Typed settings: declared once in a frozen dataclass, checked once, the same for every caller.

The model config, the training settings and every benchmark task's knobs are fields of a ``Params``
subclass::

    @dataclass(frozen=True)
    class SvmParams(Params):
        solver: Literal["lbfgs", "sklearn"] = param("lbfgs", "our float32 L-BFGS, or scikit-learn's LinearSVC")
        tol: float = param(1e-4, "solver tolerance", low=0, low_open=True)

The type says what a value may be (``Literal`` choices, ``int``, ``float``, ``bool``, ``str``, a class,
``tuple[...]`` of those, ``X | None``); ``param``'s ``low``/``high`` bound numbers (each element of a
tuple). Every instance is checked in ``__post_init__``, so a bad value fails before any work with the
same one-line error wherever it came from (the command line, a recipe, a suite file or Python), and a
number is always finite: NaN and infinity make every result computed from them meaningless.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from dcgan.errors import ConfigError


def param(default: Any = dataclasses.MISSING, help: str = "", *, low: float | None = None,
          high: float | None = None, low_open: bool = False, high_open: bool = False, nonempty: bool = False,
          default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a line of help and, for numbers, a valid range (``low_open``: ``> low``,
    ``high_open``: ``< high``)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open,
            "nonempty": nonempty}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Params:
    """Base of every settings class: checks each field against its type and range."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self), include_extras=False)
        for f in dataclasses.fields(self):
            _check(f.name, getattr(self, f.name), hints[f.name], f.metadata)


def split_optional(hint) -> tuple[Any, bool]:
    """(the hint without None, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else typing.Union[tuple(args)]), len(args) < len(typing.get_args(hint))
    return hint, False


def _check(key: str, value, hint, meta) -> None:
    base, optional = split_optional(hint)
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
    wrong = ConfigError(f"parameter {key}={_show(value, base)}: expected {describe(hint, meta)}")
    if typing.get_origin(base) is Literal:
        if not any(value == c and type(value) is type(c) for c in typing.get_args(base)):
            raise wrong  # by type too: True == 1.0 == 1, but a flag or a float is not the channel count 1
        return
    if base is bool:
        if not isinstance(value, bool):
            raise wrong
        return
    if base in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float) if base is float else int):
            raise wrong
        if not math.isfinite(value):
            raise ConfigError(f"{wrong} (finite)")
        low, high = meta.get("low"), meta.get("high")
        if low is not None and (value <= low if meta.get("low_open") else value < low):
            raise wrong
        if high is not None and (value >= high if meta.get("high_open") else value > high):
            raise wrong
        return
    if isinstance(base, type) and not isinstance(value, base):
        raise wrong


def _show(value, base=None) -> str:
    """A value for a message: floats short (``0.0002``, ``nan``), but ``64.0`` where an integer belongs."""
    return f"{value:g}" if isinstance(value, float) and base is not int else repr(value)


def describe(hint, meta=None) -> str:
    """What a field accepts, in words: ``one of lbfgs, sklearn``, ``a number > 0``, ``integers >= 1``."""
    meta = meta or {}
    base, optional = split_optional(hint)
    plural = typing.get_origin(base) is tuple
    if plural:
        base = typing.get_args(base)[0]
    if typing.get_origin(base) is Literal:
        text = ("some of " if plural else "one of ") + ", ".join(map(str, typing.get_args(base)))
    else:
        noun = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
            base, f"a {getattr(base, '__name__', base)}")
        if plural:
            noun = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(base, noun)
        text = noun + _range_text(meta)
        if plural:
            text = "comma-separated " + text
    return text + (" or none" if optional else "")


def _range_text(meta) -> str:
    low, high = meta.get("low"), meta.get("high")
    if low is not None and high is not None:
        return f" in {'(' if meta.get('low_open') else '['}{_show(low)}, {_show(high)}{')' if meta.get('high_open') else ']'}"
    if low is not None:
        return f" {'>' if meta.get('low_open') else '>='} {_show(low)}"
    if high is not None:
        return f" {'<' if meta.get('high_open') else '<='} {_show(high)}"
    return ""
