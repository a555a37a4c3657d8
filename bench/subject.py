"""What ``bench evaluate`` was given: a training run's folder, or a G and/or D from elsewhere.

A run folder is what ``bench train --out`` writes (``dcgan.train``): ``g.pt`` / ``d.pt`` (the last
epoch), ``ckpt/epochNNN_{g,d}.pt``, ``log.csv``, ``samples/epochNNN.png``, and its training settings
(data set, data root, recipe) in ``checkpoint.pt`` and ``config.json``. Checkpoints from elsewhere
(``--g``, ``--d``; pytorch/examples' ``netG_epoch_N.pth`` too) name their data set with ``--dataset``.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from dcgan.checkpoint import epoch_checkpoints, fingerprint, load_net, read_checkpoint
from dcgan.config import DCGANConfig
from dcgan.errors import CheckpointError, ConfigError


@dataclass
class Subject:
    """The model under evaluation and everything known about how it was made."""

    name: str  # the report card's folder name
    g: Path | None
    d: Path | None
    model: DCGANConfig
    dataset: str
    data_root: str | None
    run_dir: Path | None = None
    ckpt_dir: Path | None = None  # per-epoch exports: FID against the training step
    train: dict = field(default_factory=dict)  # the TrainConfig as recorded, for a run folder

    def has(self, kind: str) -> bool:
        return (self.g if kind == "generator" else self.d) is not None

    def path(self, kind: str) -> Path:
        path = self.g if kind == "generator" else self.d
        if path is None:
            raise ConfigError(f"{self.name}: no {kind} checkpoint")
        return path

    @property
    def epochs(self) -> list[tuple[int, Path]]:
        """(epoch, generator) of every per-epoch export, in training order; empty without a ckpt/ folder."""
        return epoch_checkpoints(self.ckpt_dir) if self.ckpt_dir else []

    @property
    def log(self) -> Path | None:
        return _file(self.run_dir, "log.csv")

    @property
    def sample_grids(self) -> list[Path]:
        """The run's per-epoch sample grids, in epoch order."""
        if not self.run_dir or not (self.run_dir / "samples").is_dir():
            return []
        return sorted((self.run_dir / "samples").glob("epoch*.png"))

    def checkpoints(self) -> dict[str, dict]:
        """Per given checkpoint (generator, discriminator): path, sha256, parameter count and meta."""
        out = {}
        for kind in ("generator", "discriminator"):
            if self.has(kind):
                net, _, blob = load_net(self.path(kind), kind, takes=None)
                out[kind] = {"path": str(self.path(kind)), "sha256": fingerprint(self.path(kind)),
                             "parameters": sum(p.numel() for p in net.parameters()), "meta": blob.get("meta", {})}
        return out


def from_run(folder: str | Path, dataset: str | None = None, data_root: str | None = None,
             name: str | None = None) -> Subject:
    """A training run's folder; ``dataset`` / ``data_root`` override what the run recorded."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"run folder {folder} does not exist (expected a folder written by bench train --out)")
    g, d = _file(folder, "g.pt"), _file(folder, "d.pt")
    if g is None and d is None:
        raise CheckpointError(f"run folder {folder} holds no g.pt or d.pt: expected a bench train --out folder "
                              "with at least one finished epoch")
    train = _train_config(folder)
    model = load_net(g or d, "generator" if g else "discriminator", takes=None)[1]
    ckpt_dir = folder / "ckpt"
    has_epochs = ckpt_dir.is_dir() and _has_epoch_exports(ckpt_dir)
    return Subject(name or folder.resolve().name, g, d, model, dataset or train.get("dataset", ""),
                   data_root if data_root is not None else train.get("data_root"), folder,
                   ckpt_dir if has_epochs else None, train)


def from_checkpoints(g: str | Path | None, d: str | Path | None, dataset: str | None, data_root: str | None,
                     name: str | None = None) -> Subject:
    """A G and/or a D from anywhere (pytorch/examples' files included); their sizes must agree."""
    if g is None and d is None:
        raise ConfigError("bench evaluate needs a run folder, or --g and/or --d checkpoints")
    nets = {kind: load_net(path, kind, takes=None)[:2] for kind, path in (("generator", g), ("discriminator", d))
            if path}
    configs = {kind: cfg for kind, (_, cfg) in nets.items()}
    if len(configs) == 2:
        gc, dc = configs["generator"], configs["discriminator"]
        if (gc.image_size, gc.nc) != (dc.image_size, dc.nc):
            raise ConfigError(f"--g {g} draws {gc.nc}x{gc.image_size}x{gc.image_size} images, --d {d} takes "
                              f"{dc.nc}x{dc.image_size}x{dc.image_size}: give a matching pair")
        if gc.family != dc.family or nets["generator"][0].num_classes != nets["discriminator"][0].num_classes:
            raise ConfigError(f"--g {g} (family {gc.family}, {nets['generator'][0].num_classes} classes) and --d {d} "
                              f"(family {dc.family}, {nets['discriminator'][0].num_classes} classes) are not one "
                              "model: give a matching pair")
    first = Path(g or d)
    meta = read_checkpoint(first).get("meta") or {}  # our exports record the data set; others do not
    # a G's config knows nothing of D's width and vice versa: the model facts merge both
    model = configs.get("generator") or configs["discriminator"]
    if "discriminator" in configs and "generator" in configs:
        model = dataclasses.replace(configs["generator"], ndf=configs["discriminator"].ndf)
    return Subject(name or _name(first), Path(g) if g else None, Path(d) if d else None, model,
                   dataset or meta.get("dataset", ""), data_root)


def _has_epoch_exports(ckpt_dir: Path) -> bool:
    try:
        return bool(epoch_checkpoints(ckpt_dir, "generator"))
    except CheckpointError:
        return False


def _file(folder: Path | None, name: str) -> Path | None:
    return folder / name if folder is not None and (folder / name).is_file() else None


def _train_config(folder: Path) -> dict:
    """The run's TrainConfig as a dict: from checkpoint.pt (the training state), else config.json."""
    if (folder / "checkpoint.pt").is_file():
        blob = read_checkpoint(folder / "checkpoint.pt")
        if isinstance(blob.get("train_config"), dict):
            return {**blob["train_config"], "steps": blob.get("step")}
    if (folder / "config.json").is_file():
        try:
            return json.loads((folder / "config.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConfigError(f"{folder / 'config.json'}: not the JSON bench train writes") from None
    return {}


def _name(path: Path) -> str:
    """A card's name for a checkpoint from elsewhere: its folder and file, e.g. out-netG_epoch_24."""
    parent = path.resolve().parent.name
    return f"{parent}-{path.stem}" if parent else path.stem
