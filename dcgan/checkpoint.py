"""Checkpoints: the full training state and standalone G / D exports.

Every file is a dict ``{"format": "dcgan-bench", "version", "kind", "config", ...}`` written
atomically, so a reader never needs the command that made it. ``kind`` is ``training`` (G, D, both
optimisers, counters and RNG states), ``generator`` or ``discriminator``. ``config`` names the model
family (``dcgan.models``) with its settings, e.g. a conditional GAN's conditioning and number of
classes; a config without a family, as files written before families existed hold, is a DCGAN's. The loaders also accept
pytorch/examples' raw ``netG_epoch_N.pth`` / ``netD_epoch_N.pth`` state dicts, whose sizes are read
off the weight shapes.

A generator is loaded for a caller that says what it feeds it (``load_net``'s ``takes``: z, by
default, or a low-resolution image, or both for a caller that serves either): a G of a family whose G
takes anything else is refused in one line (``NotApplicable``), so a super-resolution G never reaches
code that feeds it noise. A discriminator judges images whatever its family's G takes (a linear
probe reads an SRGAN's D as a DCGAN's), so it loads for every caller.

``read_checkpoint`` checks a file's structure before anyone uses it (its version, the keys its kind
must hold and their types, a valid config), so a foreign, damaged or newer file is a one-line
``CheckpointError`` naming it, never a KeyError in whatever reads it next.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import torch

from dcgan.config import DCGANConfig, ModelConfig
from dcgan.errors import CheckpointError, ConfigError, NotApplicable, one_line
from dcgan.fsutil import atomic_path
from dcgan.models import FAMILIES, build_net, config_from_dict, family_of

FORMAT = "dcgan-bench"
VERSION = 1
KINDS = ("training", "generator", "discriminator")
_STATE_KEY = {"generator": "G", "discriminator": "D"}
_REQUIRED = {  # what each kind must hold besides the header, and of which type
    "generator": {"G": dict},
    "discriminator": {"D": dict},
    "training": {"G": dict, "D": dict, "optG": dict, "optD": dict, "step": int, "noise_rng": list,
                 "torch_rng": torch.Tensor, "train_config": dict},
}


def make_checkpoint(kind: str, config: ModelConfig, **payload) -> dict:
    """The dict a checkpoint file holds: the header, then ``payload``."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} not in {KINDS}")
    return {"format": FORMAT, "version": VERSION, "kind": kind, "config": config.to_dict(), **payload}


def write_checkpoint(path: str | os.PathLike, blob: dict) -> Path:
    """Write a checkpoint atomically: a killed process leaves the previous file intact."""
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return Path(path)


def save_checkpoint(path: str | os.PathLike, kind: str, config: ModelConfig, **payload) -> Path:
    return write_checkpoint(path, make_checkpoint(kind, config, **payload))


def model_exports(config: ModelConfig, G: torch.nn.Module, D: torch.nn.Module, meta: dict | None = None
                  ) -> tuple[dict, dict]:
    """The generator and discriminator exports (config + weights + ``meta``, nothing else) as dicts."""
    meta = meta or {}
    return (make_checkpoint("generator", config, G=_cpu_state(G), meta=meta),
            make_checkpoint("discriminator", config, D=_cpu_state(D), meta=meta))


def export_models(out_dir: str | os.PathLike, config: ModelConfig, G: torch.nn.Module, D: torch.nn.Module,
                  prefix: str = "", meta: dict | None = None) -> tuple[Path, Path]:
    """Write ``{prefix}g.pt`` and ``{prefix}d.pt`` (``model_exports``)."""
    g, d = model_exports(config, G, D, meta)
    return (write_checkpoint(Path(out_dir) / f"{prefix}g.pt", g),
            write_checkpoint(Path(out_dir) / f"{prefix}d.pt", d))


def holds(path: str | os.PathLike, blob: dict) -> bool:
    """Whether ``path`` is a readable checkpoint equal to ``blob``, tensors bit for bit."""
    try:
        return _equal(torch.load(path, map_location="cpu", weights_only=True), blob)
    except Exception:  # missing, truncated or foreign: it does not hold blob
        return False


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


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
        raise CheckpointError(f"checkpoint {path} is truncated or corrupt ({one_line(e)[:120]})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(blob).__name__}, expected a dict")
    if blob.get("format") == FORMAT:
        _check_structure(blob, path)
    return blob


def _check_structure(blob: dict, path: Path) -> None:
    version, kind = blob.get("version"), blob.get("kind")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"checkpoint {path} has version {version!r}, expected an integer from 1 to {VERSION}")
    if version > VERSION:
        raise CheckpointError(f"checkpoint {path} was written by a newer dcgan-bench (format version {version}, "
                              f"this one reads 1 to {VERSION}): upgrade dcgan-bench to read it")
    if kind not in KINDS:
        raise CheckpointError(f"checkpoint {path} is of kind {kind!r}, expected one of {', '.join(KINDS)}")
    required = {"config": dict, **_REQUIRED[kind]}
    for key, typ in required.items():
        if key not in blob:
            raise CheckpointError(f"checkpoint {path} ({kind}) has no {key!r}; expected {', '.join(required)}")
        if not isinstance(blob[key], typ) or isinstance(blob[key], bool):
            raise CheckpointError(f"checkpoint {path}: {key!r} is a {type(blob[key]).__name__}, expected a {typ.__name__}")
    for key in ("G", "D"):
        if key in _REQUIRED[kind] and not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in blob[key].items()):
            raise CheckpointError(f"checkpoint {path}: {key!r} is not a state dict (names to tensors)")
    if kind == "training" and blob["step"] < 0:
        raise CheckpointError(f"checkpoint {path} is at step {blob['step']}, expected a step >= 0")
    checkpoint_config(blob, path)


def checkpoint_config(blob: dict, path) -> ModelConfig:
    """The model config (of its family) a dcgan-bench checkpoint holds; a bad one is a CheckpointError
    naming ``path``."""
    try:
        return config_from_dict(blob["config"])
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None


def load_net(path: str | os.PathLike, kind: str, *, takes: str | tuple[str, ...] | None = "z"
             ) -> tuple[torch.nn.Module, ModelConfig, dict]:
    """Rebuild G or D (``kind``) from a generator/discriminator export, a training checkpoint or a
    pytorch/examples state dict. Returns (net in eval mode, config, the whole checkpoint dict).

    ``takes``: what the caller feeds a G, one or several of ``dcgan.models.family.INPUTS``; a generator
    of a family whose G takes anything else is ``NotApplicable``; None: any family (for callers that ask
    the family what its G takes, as ``bench evaluate`` does). A discriminator loads for any caller."""
    if kind not in _STATE_KEY:
        raise ValueError(f"kind {kind!r} not in {tuple(_STATE_KEY)}")
    blob = read_checkpoint(path)
    if blob.get("format") == FORMAT:
        found = blob.get("kind")
        if found not in (kind, "training"):
            raise CheckpointError(f"checkpoint {path} holds a {found}, expected a {kind} (or a training checkpoint)")
        config, state = checkpoint_config(blob, path), blob[_STATE_KEY[kind]]
    else:
        config, state, blob = _examples(path, blob, kind)
    family = family_of(config)
    accepted = (takes,) if isinstance(takes, str) else takes
    if kind == "generator" and accepted is not None and family.generator_input not in accepted:
        raise NotApplicable(f"checkpoint {path} is of model family {family.name!r}, whose generator takes "
                            f"{_takes(family.generator_input)}: this needs a model whose generator takes "
                            f"{' or '.join(map(_takes, accepted))}")
    net = build_net(kind, config)
    _load_state(net, state, path)
    return net.eval(), config, blob


def _load_state(net: torch.nn.Module, state: dict, path) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path} does not match its config ({str(e).splitlines()[0]})") from None


def _takes(what: str) -> str:
    """What a G takes, in words, with the families whose G does."""
    families = ", ".join(name for name, family in FAMILIES.items() if family.generator_input == what)
    return {"z": "noise z", "lr": "a low-resolution image", "image": "an image and a target domain"}[what] + f" ({families})"


_EXAMPLES_KEY = re.compile(r"(?:module\.)?main\.(\d+)\.\w+")


def _examples(path, sd: dict, kind: str) -> tuple[DCGANConfig, dict, dict]:
    """(config read off the weight shapes, state dict, a header like our files') of a pytorch/examples
    file: its dcgan saves bare state dicts with keys ``main.<i>.<param>`` (``module.`` in front when the
    net was wrapped in DataParallel)."""
    if not sd or not all(isinstance(k, str) and _EXAMPLES_KEY.fullmatch(k) and isinstance(v, torch.Tensor)
                         for k, v in sd.items()):
        raise CheckpointError(f"checkpoint {path} is neither a dcgan-bench checkpoint nor a pytorch/examples state dict")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    found = "generator" if "main.1.weight" in sd else "discriminator"  # G has batch norm right after its first layer
    if found != kind:
        raise CheckpointError(f"checkpoint {path} holds a pytorch/examples {found}, expected a {kind}")
    convs = sorted((int(k.split(".")[1]), v) for k, v in sd.items() if k.endswith(".weight") and v.dim() == 4)
    if len(convs) < 2:
        raise CheckpointError(f"checkpoint {path} looks like a pytorch/examples {kind} but has {len(convs)} "
                              "convolution weights, expected at least 2")
    first, last = convs[0][1], convs[-1][1]
    n_up = len(convs) - 1  # layers between the first (projection / input) conv and the last
    try:
        if kind == "generator":
            nz, top, nc = first.shape[0], first.shape[1], last.shape[1]
            config = DCGANConfig(image_size=4 * 2 ** n_up, nc=nc, nz=nz, ngf=top // 2 ** (n_up - 1))
        else:
            ndf, nc = first.shape[0], first.shape[1]
            config = DCGANConfig(image_size=4 * 2 ** n_up, nc=nc, ndf=ndf)
    except ConfigError as e:
        raise CheckpointError(f"checkpoint {path}: the sizes read off its weights are no DCGAN's ({e})") from None
    return config, sd, {"format": "pytorch-examples", "kind": kind, "config": config.to_dict()}


_EPOCH_EXPORT = {"generator": re.compile(r"epoch(\d+)_g\.pt|netG_epoch_(\d+)\.pth"),
                 "discriminator": re.compile(r"epoch(\d+)_d\.pt|netD_epoch_(\d+)\.pth")}


def epoch_checkpoints(folder: str | os.PathLike, kind: str = "generator") -> list[tuple[int, Path]]:
    """(epoch, path) of every per-epoch ``kind`` (generator or discriminator) in a training run's folder, in
    training order: our ``ckpt/epochNNN_{g,d}.pt`` exports or pytorch/examples' ``net{G,D}_epoch_N.pth``."""
    folder = Path(folder)
    pattern = _EPOCH_EXPORT[kind]
    found = sorted((int(m[1] or m[2]), p) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)))
    if not found:
        g_or_d = "g" if kind == "generator" else "d"
        raise CheckpointError(f"no {kind} checkpoints in {folder}: expected epochNNN_{g_or_d}.pt (a training run's "
                              f"ckpt/ folder) or net{g_or_d.upper()}_epoch_N.pth files")
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
