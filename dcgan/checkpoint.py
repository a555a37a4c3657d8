"""Checkpoints: the full training state and standalone G / D exports.

Every file is a dict ``{"format": "dcgan-bench", "version", "kind", "config", ...}`` written
atomically, so a reader never needs the command that made it. ``kind`` is ``training`` (G, D, both
optimisers, counters and RNG states), ``generator`` or ``discriminator``. The loaders also accept
pytorch/examples' raw ``netG_epoch_N.pth`` / ``netD_epoch_N.pth`` state dicts, whose sizes are read
off the weight shapes.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from dcgan.config import DCGANConfig
from dcgan.errors import CheckpointError
from dcgan.fsutil import atomic_path
from dcgan.nets import Discriminator, Generator

FORMAT = "dcgan-bench"
VERSION = 1
KINDS = ("training", "generator", "discriminator")
_NETS = {"generator": Generator, "discriminator": Discriminator}
_STATE_KEY = {"generator": "G", "discriminator": "D"}


def save_checkpoint(path: str | os.PathLike, kind: str, config: DCGANConfig, **payload) -> Path:
    """Write a checkpoint atomically: a killed process leaves the previous file intact."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} not in {KINDS}")
    blob = {"format": FORMAT, "version": VERSION, "kind": kind, "config": config.to_dict(), **payload}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def export_models(out_dir: str | os.PathLike, config: DCGANConfig, G: Generator, D: Discriminator,
                  prefix: str = "", meta: dict | None = None) -> tuple[Path, Path]:
    """Write ``{prefix}g.pt`` and ``{prefix}d.pt``: config + weights, nothing else."""
    out_dir = Path(out_dir)
    meta = meta or {}
    g = save_checkpoint(out_dir / f"{prefix}g.pt", "generator", config, G=_cpu_state(G), meta=meta)
    d = save_checkpoint(out_dir / f"{prefix}d.pt", "discriminator", config, D=_cpu_state(D), meta=meta)
    return g, d


def _cpu_state(net: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file as a dict, with a one-line error for anything unreadable."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, expected a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated / foreign files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({reason[:120]})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(blob).__name__}, expected a dict")
    return blob


def load_net(path: str | os.PathLike, kind: str) -> tuple[torch.nn.Module, DCGANConfig, dict]:
    """Rebuild G or D (``kind``) from a generator/discriminator export, a training checkpoint or a
    pytorch/examples state dict. Returns (net in eval mode, config, the whole checkpoint dict)."""
    if kind not in _NETS:
        raise ValueError(f"kind {kind!r} not in {tuple(_NETS)}")
    blob = read_checkpoint(path)
    if blob.get("format") != FORMAT:
        return _load_examples(path, blob, kind)
    found = blob.get("kind")
    if found not in (kind, "training"):
        raise CheckpointError(f"checkpoint {path} holds a {found}, expected a {kind} (or a training checkpoint)")
    config = DCGANConfig.from_dict(blob["config"])
    net = _NETS[kind](config)
    _load_state(net, blob[_STATE_KEY[kind]], path)
    return net.eval(), config, blob


def _load_state(net: torch.nn.Module, state: dict, path) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} does not match its config ({str(e).splitlines()[0]})") from None


def _load_examples(path, sd: dict, kind: str) -> tuple[torch.nn.Module, DCGANConfig, dict]:
    """pytorch/examples' dcgan saves bare state dicts with keys ``main.<i>.<param>`` (``module.``
    in front when the net was wrapped in DataParallel)."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    if not sd or not all(isinstance(k, str) and k.startswith("main.") for k in sd):
        raise CheckpointError(f"checkpoint {path} is neither a dcgan-bench checkpoint nor a pytorch/examples state dict")
    found = "generator" if "main.1.weight" in sd else "discriminator"  # G has batch norm right after its first layer
    if found != kind:
        raise CheckpointError(f"checkpoint {path} holds a pytorch/examples {found}, expected a {kind}")
    convs = sorted((int(k.split(".")[1]), v) for k, v in sd.items() if k.endswith(".weight") and v.dim() == 4)
    first, last = convs[0][1], convs[-1][1]
    n_up = len(convs) - 1  # layers between the first (projection / input) conv and the last
    if kind == "generator":
        nz, top, nc = first.shape[0], first.shape[1], last.shape[1]
        config = DCGANConfig(image_size=4 * 2 ** n_up, nc=nc, nz=nz, ngf=top // 2 ** (n_up - 1))
    else:
        ndf, nc = first.shape[0], first.shape[1]
        config = DCGANConfig(image_size=4 * 2 ** n_up, nc=nc, ndf=ndf)
    net = _NETS[kind](config)
    _load_state(net, sd, path)
    return net.eval(), config, {"format": "pytorch-examples", "kind": kind, "config": config.to_dict()}


_EPOCH_GENERATOR = re.compile(r"epoch(\d+)_g\.pt|netG_epoch_(\d+)\.pth")


def generator_checkpoints(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(epoch, path) of every per-epoch generator in a training run's folder, in training order:
    our ``ckpt/epochNNN_g.pt`` exports or pytorch/examples' ``netG_epoch_N.pth``."""
    folder = Path(folder)
    found = sorted((int(m[1] or m[2]), p) for p in folder.iterdir() if (m := _EPOCH_GENERATOR.fullmatch(p.name)))
    if not found:
        raise CheckpointError(f"no generator checkpoints in {folder}: expected epochNNN_g.pt (a training run's "
                              "ckpt/ folder) or netG_epoch_N.pth files")
    return found


_FINGERPRINTS: dict[tuple, str] = {}


def fingerprint(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes: the identity of a checkpoint in cache keys and result rows.

    Memoised on (path, size, mtime) so a run hashes each file once.
    """
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FINGERPRINTS[key] = h.hexdigest()
    return _FINGERPRINTS[key]
