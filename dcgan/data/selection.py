"""Choosing some classes or attributes of a data set: ``load_dataset(..., classes=..., attrs=...)``.

Multi-domain image translation (StarGAN, Choi et al. 2018) reads a few domains of a data set: two
classes of Fashion-MNIST, AFHQ's cat and dog folders, five of CelebA's forty attributes. The choice is
made on the loader's labels before the data set is built, so both flavours of data set take it alike:

- ``select_classes`` keeps the images of the classes named and relabels them 0..k-1 in the order given.
  A class is named as in ``class_names`` (exactly, or ignoring case when that singles one name out:
  Fashion-MNIST's "Trouser" is its "trouser"), or by its decimal index ("3"), which data sets whose
  classes have no names need;
- ``select_attributes`` makes the labels the attribute columns named (N×k of 0/1, in the order given).
  A data set with attributes read without ``attrs`` is unlabelled, so that a consumer expecting one
  class per image never meets a row of attributes.

Each records a ``selection`` (the indices chosen, in order) that the built data set's ``fingerprint``
covers: two orders of the same classes serve the same images under other labels.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from dcgan.data.datasets import Arrays, Files
from dcgan.errors import DataError
from dcgan.registry import did_you_mean

if TYPE_CHECKING:
    from dcgan.data.registry import DatasetSpec

LISTED = 20  # names a message lists in full; longer lists (ImageNet's wnids) are cut


@dataclass(frozen=True)
class Chosen:
    """What ``load_dataset`` builds: the loader's data with its labels as chosen, the indices into the
    split of the images kept (None: all of them), and what the labels mean."""
    found: Arrays | Files
    rows: torch.Tensor | None
    class_names: tuple[str, ...]
    num_classes: int | None
    attributes: tuple[str, ...] = ()
    selection: str = ""


def select_classes(spec: DatasetSpec, split: str, chosen: Chosen, classes: Sequence[str]) -> Chosen:
    """The images of ``classes`` (see the module), relabelled 0..k-1 in their order."""
    given = _names(classes, "classes", "class")
    labels = chosen.found.labels
    names = chosen.class_names
    count = len(names) or chosen.num_classes
    picked = [_class_index(spec.name, name, names, count) for name in given]
    chosen_names = tuple(names[i] if names else str(i) for i in picked)
    _refuse_twice(picked, given, "classes", chosen_names)
    lookup = torch.full((max(count, int(labels.max()) + 1),), -1, dtype=torch.int64)
    lookup[picked] = torch.arange(len(picked))
    relabelled = lookup[labels]
    empty = torch.bincount(relabelled[relabelled >= 0], minlength=len(picked)) == 0
    if empty.any():
        raise DataError(f"class {chosen_names[int(empty.nonzero()[0])]!r} has no images in split {split!r} of "
                        f"data set {spec.name!r}")
    return dataclasses.replace(chosen, found=dataclasses.replace(chosen.found, labels=relabelled),
                               rows=(relabelled >= 0).nonzero().flatten(), class_names=chosen_names,
                               num_classes=len(picked), selection="classes=" + ",".join(map(str, picked)))


def select_attributes(spec: DatasetSpec, chosen: Chosen, attrs: Sequence[str] | None) -> Chosen:
    """The columns ``attrs`` of a data set's attribute labels, in their order; None: no labels."""
    if attrs is None:
        return dataclasses.replace(chosen, found=dataclasses.replace(chosen.found, labels=None))
    given = _names(attrs, "attrs", "attribute")
    labels = chosen.found.labels
    if labels is None or labels.shape[1:] != (len(spec.attributes),):
        raise ValueError(f"data set {spec.name!r}: its loader returned labels of shape "
                         f"{None if labels is None else tuple(labels.shape)} for {len(spec.attributes)} attributes")
    picked = []
    for name in given:
        i = _find(name, spec.attributes, "attribute")
        if i is None:
            raise DataError(f"data set {spec.name!r} has no attribute {name!r}"
                            f"{did_you_mean(name, spec.attributes)}; attributes: {_listing(spec.attributes)}")
        picked.append(i)
    chosen_names = tuple(spec.attributes[i] for i in picked)
    _refuse_twice(picked, given, "attrs", chosen_names)
    return dataclasses.replace(chosen, found=dataclasses.replace(chosen.found, labels=labels[:, picked].contiguous()),
                               attributes=chosen_names,
                               selection="attrs=" + ",".join(map(str, picked)))


def _names(values: Sequence[str], option: str, what: str) -> tuple[str, ...]:
    """``values`` as a tuple of strings, refused (one line) when it is not a non-empty sequence of them."""
    if (isinstance(values, (str, bytes)) or not isinstance(values, Sequence)
            or not all(isinstance(v, str) for v in values)):
        raise DataError(f"{option}= must be a sequence of {what} names (strings), got {values!r}")
    if not values:
        raise DataError(f"{option}= must name at least one {what}")
    return tuple(values)


def _find(name: str, names: tuple[str, ...], what: str) -> int | None:
    """The index of ``name`` in ``names``: exact, else ignoring case when only one name matches so."""
    if name in names:
        return names.index(name)
    folded = [i for i, n in enumerate(names) if n.casefold() == name.casefold()]
    if len(folded) > 1:
        raise DataError(f"{what} {name!r} matches {', '.join(repr(names[i]) for i in folded)} ignoring case: "
                        "give one exactly")
    return folded[0] if folded else None


def _class_index(dataset: str, name: str, names: tuple[str, ...], count: int) -> int:
    """The class ``name`` means: one of ``names``, or a decimal index below ``count``."""
    i = _find(name, names, "class")
    if i is not None:
        return i
    if name.isascii() and name.isdecimal():
        if int(name) < count:
            return int(name)
        raise DataError(f"class {name!r} of data set {dataset!r} is out of range: its classes are 0 to {count - 1}")
    known = (f"; classes: {_listing(names)}" if names else
             f": its classes have no names, give their indices '0' to '{count - 1}'")
    raise DataError(f"data set {dataset!r} has no class {name!r}{did_you_mean(name, names)}{known}")


def _refuse_twice(picked: list[int], given: tuple[str, ...], option: str, names: tuple[str, ...]) -> None:
    """A one-line error when two of ``given`` pick the same index ("cat" twice, or "cat" and "Cat");
    ``names[j]`` is the name of ``picked[j]``."""
    for j, i in enumerate(picked):
        if i in picked[:j]:
            raise DataError(f"{option}={','.join(given)} names {names[j]!r} twice")


def _listing(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:LISTED])
    return shown if len(names) <= LISTED else f"{shown}, ... ({len(names)} in all)"
