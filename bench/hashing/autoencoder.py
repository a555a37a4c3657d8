"""The hashing autoencoder: its recipe, the net, training, its file format and its cache.

A 3072-128-3072 ReLU autoencoder (the paper's section 4.1.1) trained on 32x32 centre crops whose
code units, thresholded, are the hash. ``autoencoder_for`` trains one per data set, recipe and seed,
or takes it from the cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from bench.hashing.augment import jittered, translated
from bench.hashing.collection import read_chunks
from dcgan.errors import ConfigError, DataError
from dcgan.fsutil import atomic_path, cache_dir, mark_used
from dcgan.params import Params, param

SIDE = 32  # the paper's 32x32 downsampled centre crops
PIXELS = 3 * SIDE * SIDE
AE_CODE_VERSION = 2  # bump when training or hashing changes the codes of a cached autoencoder
THRESHOLDS = ("relu", "median")
NORMALIZED_STD = 0.5  # an image's spread after ``normalize``: about CIFAR-10's in [-1, 1], so noise_std keeps its scale


@dataclass(frozen=True)
class AERecipe(Params):
    """How the hashing autoencoder is trained and how its code becomes bits.

    The paper fixes only the shape (3072-128-3072, ReLU), so the defaults keep its method (128 ReLU bits,
    unmoved and unjittered inputs) with mid-range noise and dropout, which measured alike over a wide
    range (docs/experiments/dedup-recipes.md has the measurements and the recipes that did better).
    """

    bits: int = param(128, "code units, the length of the hash (the paper's 128); a multiple of 8", low=8)
    noise_std: float = param(0.2, "std of the Gaussian noise on the inputs (pixels in [-1, 1])", low=0)
    shift: int = param(0, "training inputs moved by up to this many px along each axis, the clean image as "
                          "target; 0: off", low=0, high=SIDE // 2 - 1)
    jitter: float = param(0.0, "training inputs' brightness moved by up to jitter*128 levels, contrast scaled by "
                               "1 +- jitter; 0: off", low=0, high=0.99)
    normalize: bool = param(False, "each image scaled to zero mean and a fixed spread before the encoder")
    threshold: Literal[THRESHOLDS] = param("relu", "a bit is set when its unit is active (relu, the paper's) or "
                                                   "above its median over the training images")
    dropout: float = param(0.1, "dropout rate on the code in training", low=0, high=0.99)
    epochs: int = param(20, "passes over the training images", low=1)
    lr: float = param(1e-3, "Adam's learning rate", low=0, low_open=True, high=1)
    ae_batch_size: int = param(128, "images per training step", low=1)
    train_images: int = param(50_000, "at most this many images, drawn at random, are trained on (3 KB each in "
                                      "memory)", low=1)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bits % 8:
            raise ConfigError(f"parameter bits={self.bits}: expected a multiple of 8 (codes are packed into bytes)")

    @classmethod
    def of(cls, params) -> "AERecipe":
        """The recipe fields of any params object that carries them (a task's Params subclasses this)."""
        return cls(**{f.name: getattr(params, f.name) for f in dataclasses.fields(cls)})



class HashAutoencoder(torch.nn.Module):
    """3072 -> 128 (ReLU) -> 3072 on centred pixels (linear output: the centred pixels are regressed).

    Inputs are pixels in [-1, 1] minus the training images' mean image (``mean``, saved with the
    weights). Without centring, a collection with a large constant background (digits) trains into
    codes with few active units that nearly all collide; centred, about half the units are active
    (docs/experiments/dedup-recipes.md). With ``normalize`` set, each image is first moved to zero
    mean and ``NORMALIZED_STD`` spread, so a brightness or contrast change leaves its input nearly
    unchanged. Bit k of the hash is ``pre-activation_k > threshold[k]``: 0 is the paper's ReLU > 0.
    Files saved without the ``normalize`` and ``threshold`` buffers load as the paper's method.
    """

    def __init__(self, bits: int = 128):
        super().__init__()
        self.encoder = torch.nn.Linear(PIXELS, bits)
        self.decoder = torch.nn.Linear(bits, PIXELS)
        self.register_buffer("mean", torch.zeros(PIXELS))
        self.register_buffer("normalize", torch.tensor(False))
        self.register_buffer("threshold", torch.zeros(bits, dtype=torch.float64))

    def centred(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Images N x 3 x 32 x 32 (uint8 or float pixel values) -> N x 3072, [-1, 1] (normalised per image
        if ``normalize``) minus the mean image."""
        if images.shape[1:] != (3, SIDE, SIDE):
            raise DataError(f"the hash needs 3x{SIDE}x{SIDE} images, got {tuple(images.shape[1:])}")
        x = images.reshape(len(images), -1).to(dtype) / 127.5 - 1
        if self.normalize:  # a flat image (std 0) stays flat: the floor is a tenth of a grey level
            x = (x - x.mean(1, keepdim=True)) * (NORMALIZED_STD / x.std(1, keepdim=True).clamp_min(1e-3))
        return x - self.mean

    def preactivation(self, images: torch.Tensor) -> torch.Tensor:
        """The code units' pre-activations (N x bits), in float64 (see ``hash``)."""
        return self.centred(images, torch.float64) @ self.encoder.weight.double().T + self.encoder.bias.double()

    @property
    def bits(self) -> int:
        return self.encoder.out_features

    def reconstruct(self, x: torch.Tensor, noise_std: float, dropout: float, g: torch.Generator) -> torch.Tensor:
        """A training forward pass: noise on the input, dropout on the code (inverted scaling)."""
        h = torch.relu(self.encoder(x + noise_std * torch.randn(x.shape, generator=g)))
        if dropout:
            h = h * (torch.rand(h.shape, generator=g) >= dropout) / (1 - dropout)
        return self.decoder(h)

    @torch.no_grad()
    def hash(self, images: torch.Tensor) -> np.ndarray:
        """Packed codes (N x bits/8 uint8) of uint8 images N x 3 x 32 x 32: bit k set when unit k's
        pre-activation exceeds ``threshold[k]``.

        In float64, so that the same pixels give the same bits whatever batch they are computed in
        (a float32 pre-activation within rounding of the threshold could flip with the matmul's blocking).
        """
        return np.packbits((self.preactivation(images) > self.threshold).numpy(), axis=1)


def train_autoencoder(images: torch.Tensor, recipe: AERecipe, seed: int) -> tuple[HashAutoencoder, float]:
    """Train on uint8 images N x 3 x 32 x 32; returns the net and its last epoch's mean clean-target MSE.

    The training inputs are moved (``shift``) and re-lit (``jitter``), the target is the clean image:
    the code learns to ignore both. With ``threshold="median"`` each unit's threshold is then its
    median pre-activation over the training images, so every bit is set on half of them.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = HashAutoencoder(recipe.bits)
    net.normalize.fill_(recipe.normalize)
    net.mean.copy_(sum(net.centred(chunk).sum(0) for chunk in images.split(4096)) / len(images))  # mean is 0 here
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    loss_sum = 0.0
    for _ in range(recipe.epochs):
        loss_sum, perm = 0.0, torch.randperm(len(images), generator=g)
        for batch in perm.split(recipe.ae_batch_size):
            clean = images[batch]
            shifted = translated(clean, recipe.shift, g) if recipe.shift else clean
            x = net.centred(jittered(shifted, recipe.jitter, g) if recipe.jitter else shifted)
            loss = torch.nn.functional.mse_loss(net.reconstruct(x, recipe.noise_std, recipe.dropout, g),
                                                net.centred(clean))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(batch)
    if recipe.threshold == "median":
        with torch.no_grad():
            net.threshold.copy_(torch.cat([net.preactivation(chunk) for chunk in images.split(4096)]).median(0).values)
    return net.eval(), loss_sum / len(images)


def save_autoencoder(path: Path, net: HashAutoencoder, info: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save({"state_dict": net.state_dict(), "info": info}, tmp)


def load_autoencoder(path: str | Path) -> tuple[HashAutoencoder, dict]:
    """The net and info dict saved by ``save_autoencoder``. Read with ``weights_only``: tensors and plain
    containers only, so a file that would run code when unpickled is refused (ConfigError), not run."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = autoencoder_from_state(blob["state_dict"])
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{path}: not a hashing autoencoder saved by the dedup task ({reason})") from e
    return net.eval(), blob.get("info", {})


def autoencoder_from_state(state: dict) -> HashAutoencoder:
    """The net of a state dict (its size read off the encoder; older files lack buffers: the paper's)."""
    net = HashAutoencoder(state["encoder.weight"].shape[0])
    net.load_state_dict({**net.state_dict(), **state})
    return net.eval()


def autoencoder_cache_path(data_fingerprint: str, transform_id: str, recipe: AERecipe, seed: int) -> Path:
    """Where the autoencoder trained on this data (content fingerprint), transform, recipe and seed lives."""
    key = json.dumps({"data": data_fingerprint, "transform": transform_id, "recipe": dataclasses.asdict(recipe),
                      "seed": seed, "version": AE_CODE_VERSION}, sort_keys=True)
    return cache_dir() / "dedup" / f"ae-{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"


def autoencoder_for(data, recipe: AERecipe, seed: int, chunk: int) -> tuple[HashAutoencoder, dict]:
    """The autoencoder trained on ``data`` with ``recipe`` and ``seed``: from the cache, else trained on
    up to ``recipe.train_images`` of its images (drawn from the seed) and cached."""
    path = autoencoder_cache_path(data.fingerprint(), data.transform_id, recipe, seed)
    if path.is_file():
        mark_used(path)
        net, info = load_autoencoder(path)
        return net, {**info, "ae": str(path), "ae_source": "cached"}
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(data), min(len(data), recipe.train_images), replace=False))
    parts = [images for _, images in read_chunks(data, rows, chunk, [])]  # the hashing pass reports the skips
    if not parts:
        raise DataError(f"none of the {len(rows)} training images of {data.name!r} could be decoded")
    images = torch.cat(parts)
    net, loss = train_autoencoder(images, recipe, seed)
    info = {"trained_on": f"{data.name}/{data.split}", "n_train": len(images), "train_loss": round(loss, 5),
            "train_seconds": round(time.perf_counter() - t0, 2), "recipe": dataclasses.asdict(recipe)}
    save_autoencoder(path, net, info)
    return net, {**info, "ae": str(path), "ae_source": "trained"}
