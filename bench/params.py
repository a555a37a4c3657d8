"""Task parameters from the command line: ``--set`` text parsed to the declared types, and the table
``bench list TASK`` prints.

A task's knobs are the fields of its ``Params`` class (``dcgan.params``, where the model and training
settings are declared the same way), so a bad value fails with the same one-line error wherever it
came from: ``--set``, a recipe, a suite file or Python.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Literal

from dcgan.errors import ConfigError
from dcgan.params import Params, describe, split_optional


def parse(text: str, hint, key: str):
    """``--set`` text to a value of the field's type (checked against choices and ranges later)."""
    base, optional = split_optional(hint)
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
    base, optional = split_optional(hint)
    if typing.get_origin(base) is tuple:
        name = f"list of {_type_name(typing.get_args(base)[0])}"
    elif typing.get_origin(base) is Literal:
        name = "choice"
    else:
        name = getattr(base, "__name__", str(base))
    return name + (" or none" if optional else "")
