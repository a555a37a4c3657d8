"""Named training recipes (``bench train --preset NAME``): the settings our measured experiments found best for
a data set, so that the command behind a published number is one flag, not a line of options to copy.

A preset fills in ``bench train`` options a user did not give; any option given on the command line wins. Each
names the experiment write-up its settings and numbers come from.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dcgan.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # what it trains and what it measured, one sentence for --help
    settings: dict = field(default_factory=dict)  # bench train's parameter name -> value
    source: str = ""  # the write-up behind it


PRESETS = {p.name: p for p in (
    Preset("paper-cifar10",
           "the authors' ImageNet-32 D (28672 max-pooled features) and its mirrored G on CIFAR-10 at 32 px, bf16",
           dict(dataset="cifar10", image_size=32, arch="imagenet32", epochs=5, precision="bf16"),
           "docs/experiments/headline.md"),
    Preset("paper-fashion-mnist",
           "the same ImageNet-32 D and G on Fashion-MNIST at 32 px, 3 epochs in bf16: the best accuracy measured there",
           dict(dataset="fashion-mnist", image_size=32, arch="imagenet32", epochs=3, precision="bf16"),
           "docs/experiments/headline.md"),
)}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    return PRESETS[name]
