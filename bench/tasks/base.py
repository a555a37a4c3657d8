"""The task base class, the TASKS registry and the RunContext a task works through.

A task is mostly data: a frozen ``Params`` dataclass whose defaults cite their source, a default
data set, and ``run(ctx, params) -> list[Measurement]``. Tasks never write result files: the runner
(``bench.run``) adds provenance and writes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench.features import FeatureCache, LayerSpec, extract_features, pixel_features, reestimate_batchnorm
from dcgan.registry import Registry
from bench.results import Measurement
from dcgan.checkpoint import fingerprint, generator_checkpoints, load_net
from dcgan.config import DCGANConfig
from dcgan.data import get_spec, load_dataset
from dcgan.errors import ConfigError, DataError
from dcgan.nets import Discriminator

TASKS: Registry[type["Task"]] = Registry("task")


class Task:
    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    summary: ClassVar[str] = ""
    needs: ClassVar[str | None] = None  # "discriminator", "generator" or None
    default_dataset: ClassVar[str | None] = None
    reads_data: ClassVar[bool] = True  # False: the task measures a checkpoint alone (its rows name no data set)

    @dataclass(frozen=True)
    class Params:
        pass

    def run(self, ctx: "RunContext", params) -> list[Measurement]:
        raise NotImplementedError


def make_params(task: type[Task], overrides: dict[str, str | object]):
    """The task's Params with ``key=value`` overrides, each checked against the field and cast to its type."""
    fields = {f.name: f for f in dataclasses.fields(task.Params)}
    hints = typing.get_type_hints(task.Params)
    values = {}
    for key, raw in overrides.items():
        key = key.replace("-", "_")
        if key not in fields:
            raise ConfigError(f"task {task.name!r} has no parameter {key!r}; parameters: {', '.join(fields)}")
        values[key] = _cast(raw, hints[key], key) if isinstance(raw, str) else raw
    return task.Params(**values)


def _cast(text: str, hint, key: str):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if text.lower() in ("none", "") and type(None) in args:
        return None
    if origin is tuple:
        return tuple(_cast(t, args[0], key) for t in text.split(",") if t.strip())
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    try:
        if base is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return text.lower() in ("true", "1", "yes")
        return base(text)
    except ValueError:
        raise ConfigError(f"parameter {key}={text!r}: expected {getattr(base, '__name__', base)}") from None


@dataclass
class RunContext:
    """Everything a task may ask for; it loads and caches lazily."""

    dataset: str
    data_root: str | None = None
    ckpt: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    subset: int | None = None
    batch_size: int = 256
    precision: str = "fp32"
    cache: FeatureCache = field(default_factory=FeatureCache)
    # <results>/<task>/<run_id>: the prefix of files a task writes beside its rows (e.g. dedup's clusters
    # CSV), set by the runner; a re-run overwrites its own files as it replaces its own rows
    outputs: Path | None = None
    # <results>/figures/<task>/<ckpt sha 12>-<run_id>: the prefix of a run's pictures, so a file name says
    # which checkpoint drew it and (through the run id, a hash of every setting) with which settings
    figures: Path | None = None
    # the discriminator of a task whose --ckpt is a generator (memorisation's D-feature space); None: --ckpt
    d_ckpt: Path | None = None
    _nets: dict = field(default_factory=dict)
    _splits: dict = field(default_factory=dict)

    @property
    def ckpt_sha256(self) -> str:
        """The checkpoint's content hash; for a training run's folder, a hash of its generators' hashes."""
        if not self.ckpt:
            return ""
        if self.ckpt.is_dir():
            listing = "".join(f"{p.name}:{fingerprint(p)}\n" for _, p in generator_checkpoints(self.ckpt))
            return hashlib.sha256(listing.encode()).hexdigest()
        return fingerprint(self.ckpt)

    def figure(self, name: str) -> Path:
        """Where this run writes its picture ``name`` (e.g. ``walk.png``); the folder is created."""
        if self.figures is None:
            raise ConfigError("this run has no figures folder (tasks with pictures run through bench.run)")
        self.figures.parent.mkdir(parents=True, exist_ok=True)
        return self.figures.with_name(f"{self.figures.name}_{name}")

    def net(self, kind: str):
        """The checkpoint's G or D (loaded once) and its config."""
        path = self._path(kind)
        if path is None:
            raise ConfigError(f"this task needs a {kind} checkpoint: pass --ckpt")
        if kind not in self._nets:
            net, cfg, _ = load_net(path, kind)
            self._nets[kind] = (net.to(self.device), cfg)
        return self._nets[kind]

    def _path(self, kind: str) -> Path | None:
        return self.d_ckpt if kind == "discriminator" and self.d_ckpt else self.ckpt

    def split(self, split: str, image_size: int, channels: int):
        """One split of the run's data set, loaded once per run (labels, features and batch-norm
        re-estimation all ask for it)."""
        key = (split, image_size, channels)
        if key not in self._splits:
            self._splits[key] = load_dataset(self.dataset, split, root=self.data_root, image_size=image_size,
                                             channels=channels, subset=self.subset, seed=self.seed)
        return self._splits[key]

    def labels(self, split: str, cfg: DCGANConfig) -> np.ndarray:
        data = self.split(split, cfg.image_size, cfg.nc)
        if data.labels is None:
            raise DataError(f"data set {self.dataset!r} has no labels: this task needs a labelled data set")
        return data.labels.numpy()

    def features(self, model: str, split: str, spec: LayerSpec) -> np.ndarray:
        """Features of ``split`` for ``model`` (trained-d, random-d or raw-pixels), from the cache if there.

        The cache key holds the checkpoint's content hash, data set, root, split, transform, spec,
        subset and seed, so any change in what determines the numbers extracts anew.
        """
        trained, cfg = self.net("discriminator")
        data = self.split(split, cfg.image_size, cfg.nc)
        fields = dict(model=model,
                      ckpt=fingerprint(self._path("discriminator")) if model == "trained-d" else cfg.to_dict(),
                      dataset=self.dataset, root=str(Path(self.data_root).resolve()) if self.data_root else None,
                      split=split, n=len(data), transform=data.transform_id,
                      spec=str(spec) if model != "raw-pixels" else "pixels", subset=self.subset, seed=self.seed)
        if model == "raw-pixels":
            dims = cfg.nc * cfg.image_size**2
            return self.cache.get_or_extract(fields, (len(data), dims), lambda out: pixel_features(data, out))
        # the D (and any batch-norm re-estimation) is built only on a cache miss
        return self.cache.get_or_extract(
            fields, (len(data), spec.dims(trained)),
            lambda out: extract_features(self.discriminator(model, spec), data, spec, self.device,
                                         self.batch_size, self.precision, out=out))

    def discriminator(self, model: str, spec: LayerSpec = LayerSpec()) -> Discriminator:
        """The checkpoint's D (trained-d) or one of its architecture freshly initialised from the run's
        seed (random-d), its batch-norm statistics re-estimated when ``spec`` says bn-train."""
        trained, cfg = self.net("discriminator")
        if model == "trained-d":
            D = trained
        elif model == "random-d":
            torch.manual_seed(self.seed)
            D = Discriminator(cfg).to(self.device).eval()
        else:
            raise ConfigError(f"unknown feature model {model!r}; expected trained-d, random-d or raw-pixels")
        if spec.bn == "train":
            D = _copy(D)
            reestimate_batchnorm(D, self.split("train", cfg.image_size, cfg.nc), self.device, self.batch_size,
                                 self.precision)
        return D


def _copy(D: Discriminator) -> Discriminator:
    clone = Discriminator(D.cfg).to(next(D.parameters()).device)
    clone.load_state_dict(D.state_dict())
    return clone.eval()


def check_dataset(name: str) -> None:
    get_spec(name)  # unknown names fail here with a "did you mean"
