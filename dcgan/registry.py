"""``Registry[T]``: name -> object tables filled by decorators, one kind for every table in the suite.

Data sets, benchmark tasks, SVM solvers, injected edits, feature extractors and (later) model
families all register the same way::

    TASKS = Registry("task")

    @TASKS.register("cifar10-svm")
    class Cifar10Svm(SvmProbe): ...

``register(name)`` sets the object's ``name`` attribute when it has none of its own (a class, a
plain object), so a name is written once; registering a name twice is an error rather than a
silent overwrite, and an unknown name gets a "did you mean" with the known names, raised as the
table's ``error`` (a ``DCGANError`` subclass, so a missing data set is a ``DataError`` like every
other problem with the data).
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from dcgan.errors import DCGANError

T = TypeVar("T")


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` with the known name closest to ``name``, or "" when none is close: the
    hint of every "unknown name" message (registries, class names, attributes)."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str, error: type[DCGANError] = DCGANError):
        self.kind = kind  # what an entry is, for messages: "task", "data set", ...
        self.error = error  # raised for an unknown name
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that files its argument under ``name`` (and names it), then returns it unchanged."""
        def decorate(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorate

    def add(self, name: str, obj: T) -> T:
        if not name:
            raise ValueError(f"a {self.kind} needs a non-empty name")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        if getattr(obj, "name", None) != name:
            try:
                obj.name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # frozen dataclasses and functions carry their name already
                pass
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        if name not in self._items:
            raise self.error(f"unknown {self.kind} {name!r}{did_you_mean(name, self._items)}; known: "
                             f"{', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return ((n, self._items[n]) for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)
