"""Near-duplicate detection: the paper's autoencoder semantic hash (section 4.1.1), searched with faiss.

1. A 3072-128-3072 ReLU autoencoder is trained on 32x32 centre crops: denoising (Gaussian noise on
   the input) and dropout on the code, reconstructing the clean image. The paper gives neither the
   noise, the dropout rate nor the schedule: they are ``AERecipe``'s fields.
2. The hash of an image is which of the 128 code units are active (ReLU > 0, the paper's; or above
   each unit's median over the training images, ``threshold="median"``), packed into 16 bytes.
   Images are read, hashed and dropped in chunks: only the codes stay in memory.
3. Duplicates are pairs of codes within Hamming distance r. Identical codes are grouped first (the
   paper's linear-time collision search, all of r = 0); for r > 0 only the distinct codes are
   searched: by an exact substring join (``substring_join``, radii 1-11) or a faiss binary range
   search (exact ``IndexBinaryFlat``, or the approximate ``IndexBinaryIVF``).
4. Clusters are connected components (each row joined to its group, near groups joined): a group of k
   identical codes never becomes k(k-1)/2 pairs. The lowest index of a cluster is kept, the rest
   flagged for removal (``star``: only those within r of the kept image); row pairs are listed only
   for the rows that need them (scoring).

Images are uint8 ``C x 32 x 32`` tensors as every registered data set serves them; an image whose file
cannot be decoded is recorded in a ``skipped`` list (name, reason) and left out, never a crash.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import torch

from dcgan.errors import ConfigError, DataError
from dcgan.fsutil import atomic_path, cache_dir, mark_used

SIDE = 32  # the paper's 32x32 downsampled centre crops
PIXELS = 3 * SIDE * SIDE
AE_CODE_VERSION = 2  # bump when training or hashing changes the codes of a cached autoencoder


THRESHOLDS = ("relu", "median")
NORMALIZED_STD = 0.5  # an image's spread after ``normalize``: about CIFAR-10's in [-1, 1], so noise_std keeps its scale


@dataclass(frozen=True)
class AERecipe:
    """How the hashing autoencoder is trained.

    The paper fixes the shape (3072-128-3072, ReLU) and nothing else. Pixels are centred in [-1, 1];
    Gaussian input noise (std 0.2, a tenth of the range) makes the code ignore small pixel changes and
    dropout on the code (0.1) spreads information over units. What was measured to choose them, on
    2,000 CIFAR-10 JPEGs plus 700 injected copies, 20 epochs: noise 0.05 / 0.2 / 0.5 and dropout
    0 / 0.1 / 0.3 all gave F1 0.31-0.35 at radius 0 and 0.79-0.80 at radius 8, so the defaults sit
    mid-range; the choice matters little at that scale. ``shift`` (inputs translated by up to k px,
    the clean image as target) was measured on all 50,000 CIFAR-10 training images plus 5,000 copies:
    shift=3 doubles the recall of 1-3 px shifts at radius 8 (0.12 -> 0.23) but loses brightness
    changes (0.63 -> 0.46), same F1 (0.80), so it is off by default. ``threshold``, ``normalize`` and
    ``jitter`` (README): on 10,000 images plus 1,000 copies every combination gave F1 0.858-0.882 at
    precision >= 0.99 (the paper's 0.873); on all 50,000 plus 5,000 copies ``threshold="median"``
    gave 0.821 against 0.752, with ``jitter=0.25, shift=2`` also the best F1 at any precision (0.879).
    The defaults stay the paper's method; ``normalize`` lost shifts and crops and was not kept up.
    ``bits``: on the same 50,000 + 5,000, with median, jitter 0.25 and shift 2, F1 at precision >= 0.99
    was 0.821 / 0.850 / 0.847 for 128 / 256 / 512 bits; with shift probes (the task's ``probe_shift=3``)
    256 bits reached 0.900, pHash's best being 0.849.
    Adam at 1e-3, batches of 128, 20 epochs (7 s for 2,000 images on one core); ``train_images``
    caps the sample held in memory (3 KB each).
    """

    bits: int = 128  # paper: 128 code units
    noise_std: float = 0.2
    shift: int = 0  # inputs moved by up to this many px (each axis), the target left in place; 0: off
    jitter: float = 0.0  # inputs' brightness moved by up to jitter*128 levels, contrast scaled by 1 +- jitter; 0: off
    normalize: bool = False  # each image scaled to zero mean, fixed spread before the encoder (hashing too)
    threshold: str = "relu"  # a bit is set when its unit is active ("relu", the paper's) or above its median
    dropout: float = 0.1
    epochs: int = 20
    lr: float = 1e-3
    ae_batch_size: int = 128
    train_images: int = 50_000

    @classmethod
    def of(cls, params) -> "AERecipe":
        """The recipe fields of any params object that carries them (a task's Params subclasses this)."""
        return cls(**{f.name: getattr(params, f.name) for f in dataclasses.fields(cls)})

    def check(self) -> None:
        if self.bits % 8 or self.bits < 8:
            raise ConfigError(f"bits={self.bits}: must be a positive multiple of 8 (codes are packed into bytes)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout}: must be in [0, 1)")
        if not 0 <= self.shift < SIDE // 2:
            raise ConfigError(f"shift={self.shift}: must be in [0, {SIDE // 2})")
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"jitter={self.jitter}: must be in [0, 1)")
        if self.threshold not in THRESHOLDS:
            raise ConfigError(f"threshold={self.threshold!r}: expected one of {', '.join(THRESHOLDS)}")
        if self.epochs < 1 or self.ae_batch_size < 1 or self.train_images < 1:
            raise ConfigError("epochs, ae_batch_size and train_images must be at least 1")


class HashAutoencoder(torch.nn.Module):
    """3072 -> 128 (ReLU) -> 3072 on centred pixels (linear output: the centred pixels are regressed).

    Inputs are pixels in [-1, 1] minus the training images' mean image (``mean``, saved with the
    weights). Without centring, a collection with a large constant background (digits: 80% black)
    trains into codes with 2-5% active units that nearly all collide; centred, half the units are
    active on digits and CIFAR-10 alike. With ``normalize`` set, each image is first moved to zero
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


def moved(images: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Image k moved by ``offsets[k]`` = (rows, columns) px, the uncovered border repeating the edge
    pixels, as float pixel values (N x C x H x W): a pure translation, so whole pixel values stay whole."""
    n, c, h, w = images.shape
    m = int(offsets.abs().max()) if len(offsets) else 0
    padded = torch.nn.functional.pad(images.float(), (m, m, m, m), mode="replicate")
    start = m - offsets  # content moved down/right by s is read from s px above/left
    rows = (start[:, :1] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * m)
    cols = (start[:, 1:] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def translated(images: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Each image moved by -max_shift..max_shift px along each axis (drawn from ``g``), as ``moved``."""
    return moved(images, max_shift - torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=g))


def probe_offsets(k: int) -> list[tuple[int, int]]:
    """The 4k shifts a probed image is also hashed at: 1..k px up, down, left and right."""
    return [(s * d, 0) for d in range(1, k + 1) for s in (-1, 1)] + [(0, s * d) for d in range(1, k + 1) for s in (-1, 1)]


def probe_codes(hasher, images: torch.Tensor, k: int) -> np.ndarray:
    """The codes (N x 4k x bytes) of uint8 ``images`` moved by each of ``probe_offsets(k)``.

    A copy moved by a few pixels can land far from its source in Hamming distance (1-3 px shifts
    are what neither the learned hash nor pHash finds); comparing each image's moved hashes with the
    other images' own hashes finds it (``search(..., probes=...)``)."""
    return np.stack([hasher(moved(images, torch.tensor([o] * len(images))).to(torch.uint8))
                     for o in probe_offsets(k)], axis=1)


def jittered(images: torch.Tensor, jitter: float, g: torch.Generator) -> torch.Tensor:
    """Each image's contrast scaled about its mean by 1 +- jitter and its brightness moved by up to
    jitter * 128 levels (both drawn from ``g``), clipped to 0..255, as float pixel values."""
    n = len(images)
    x = images.float()
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + jitter * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
    brightness = 128 * jitter * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)
    return ((x - mean) * contrast + mean + brightness).clamp(0, 255)


def train_autoencoder(images: torch.Tensor, recipe: AERecipe, seed: int) -> tuple[HashAutoencoder, float]:
    """Train on uint8 images N x 3 x 32 x 32; returns the net and its last epoch's mean clean-target MSE.

    The training inputs are moved (``shift``) and re-lit (``jitter``), the target is the clean image:
    the code learns to ignore both. With ``threshold="median"`` each unit's threshold is then its
    median pre-activation over the training images, so every bit is set on half of them.
    """
    recipe.check()
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
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        net = HashAutoencoder(blob["state_dict"]["encoder.weight"].shape[0])
        net.load_state_dict({**net.state_dict(), **blob["state_dict"]})  # older files: the paper's buffers
    except (OSError, RuntimeError, KeyError, TypeError, EOFError, pickle.UnpicklingError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{path}: not a hashing autoencoder saved by the dedup task ({reason})") from e
    return net.eval(), blob.get("info", {})


def autoencoder_cache_path(data_fingerprint: str, transform_id: str, recipe: AERecipe, seed: int) -> Path:
    """Where the autoencoder trained on this data (content fingerprint), transform, recipe and seed lives."""
    key = json.dumps({"data": data_fingerprint, "transform": transform_id, "recipe": dataclasses.asdict(recipe),
                      "seed": seed, "version": AE_CODE_VERSION}, sort_keys=True)
    return cache_dir() / "dedup" / f"ae-{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"


# ---- reading in chunks ------------------------------------------------------------------------------

def read_chunks(data, indices, chunk: int, skipped: list[tuple[str, str]]
                ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(indices, uint8 images) of ``data[indices]``, ``chunk`` at a time; undecodable images go to ``skipped``."""
    indices = list(indices)
    for s in range(0, len(indices), chunk):
        kept, images = [], []
        for i in indices[s: s + chunk]:
            try:
                images.append(data[i][0])
            except DataError as e:
                skipped.append((data.item_name(i), str(e)))
            else:
                kept.append(i)
        if images:
            yield np.array(kept, dtype=np.int64), torch.stack(images)


def phash(images: torch.Tensor) -> np.ndarray:
    """imagehash's 64-bit pHash of each uint8 image (N x 3 x 32 x 32), packed into 8 bytes.

    Computed on the same 32x32 crops the autoencoder sees (pHash shrinks to 32x32 grey itself), so
    both methods judge the same pixels.
    """
    import imagehash
    from PIL import Image

    arrays = images.permute(0, 2, 3, 1).numpy()
    return np.stack([np.packbits(imagehash.phash(Image.fromarray(a)).hash.reshape(-1)) for a in arrays])


# ---- search and clusters ----------------------------------------------------------------------------

class Pairs(NamedTuple):
    """Found pairs as rows of ``codes``: i < j, at Hamming distance d, sorted by (i, j)."""

    i: np.ndarray
    j: np.ndarray
    d: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def none(cls) -> "Pairs":
        empty = np.empty(0, dtype=np.int64)
        return cls(empty, empty, empty)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances between packed codes (broadcasting over leading axes)."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=-1).sum(-1, dtype=np.int64)


INDEXES = ("auto", "substrings", "flat", "ivf")
EXACT_MAX = 200_000  # distinct codes searched exactly by faiss up to here, IVF above (benchmarks/dedup_scale.py)
SUBSTRINGS = 6  # the substring join's parts: ~21 bits of a 128-bit code, a dense 2^21-entry table each
PROBE_MAX = 4_000_000  # candidate pairs checked at a time by the substring join (~100 MB of work arrays)
ROW_BATCH = 65_536  # rows whose buckets the substring join looks up at a time


def search(codes: np.ndarray, radius: int, index: str = "auto", nprobe: int = 16, seed: int = 0,
           chunk: int = 16384, probes: np.ndarray | None = None) -> "Matches":
    """Every pair of rows of ``codes`` (N x bytes, uint8) within Hamming distance ``radius``, kept compact.

    Identical codes are grouped first (``_group``: the paper's linear-time collision search, all of
    r = 0), so a group of k equal codes costs one entry, not k(k-1)/2 pairs; only the distinct codes
    are searched for r > 0: by ``substring_join`` (exact, numpy) or a faiss range search
    (``binary_index``: "flat", exact, or "ivf", approximate). "auto" takes the substring join whenever
    it applies (radius below ``2 * SUBSTRINGS``), else flat up to ``EXACT_MAX`` distinct codes, else IVF.

    With ``probes`` (N x P x bytes, ``probe_codes``), rows i and j also match when a probe of one is
    within ``radius`` of the other's code; such a pair's distance is the smallest found. Identical
    codes stand for each other here too: a probe of any image holding i's code counts for i. The
    probes are queries into a faiss index of the distinct codes (flat or IVF as above).
    """
    if radius < 0:
        raise ConfigError(f"radius={radius}: must be at least 0")
    if index not in INDEXES or nprobe < 1:
        raise ConfigError(f"index={index!r}, nprobe={nprobe}: expected one of {', '.join(INDEXES)} and nprobe >= 1")
    distinct, group, size = _group(codes)
    near, used = Pairs.none(), "none"
    if len(distinct) < 2:
        return Matches(group, size, near, used)
    faiss_kind = index if index in ("flat", "ivf") else "flat" if len(distinct) <= EXACT_MAX else "ivf"
    if radius > 0:
        used = "substrings" if index == "substrings" or (index == "auto" and radius < 2 * SUBSTRINGS) else faiss_kind
    # one faiss index serves the range search and the probes (an IVF index is trained once)
    faiss_index = binary_index(distinct, faiss_kind, nprobe, seed) if used == faiss_kind or probes is not None else None
    if used == "substrings":
        near = substring_join(distinct, radius)
    elif used == faiss_kind:
        near = _range_pairs(faiss_index, distinct, np.arange(len(distinct)), radius, chunk)
    if probes is not None:
        owners = np.repeat(group, probes.shape[1])  # the group of the row each probe was made from
        found = _range_pairs(faiss_index, probes.reshape(-1, probes.shape[2]), owners, radius, chunk)
        near = _smallest(np.concatenate([near.i, found.i]), np.concatenate([near.j, found.j]),
                         np.concatenate([near.d, found.d]), len(distinct))
        used = faiss_kind if used == "none" else f"{used}+{faiss_kind}"
    return Matches(group, size, near, used)


def _range_pairs(faiss_index, queries: np.ndarray, owners: np.ndarray, radius: int, chunk: int) -> Pairs:
    """Pairs (owner of a query, indexed code) within ``radius``, self pairs dropped, each once at its
    smallest distance. An approximate index may find a pair from one end only: both ends are kept."""
    a, b, d = [], [], []
    for s in range(0, len(queries), chunk):  # faiss keeps distances strictly below its radius
        lims, D, I = faiss_index.range_search(queries[s: s + chunk], radius + 1)
        a.append(np.repeat(owners[s: s + chunk], np.diff(lims.astype(np.int64))))
        b.append(I.astype(np.int64))
        d.append(D.astype(np.int64))
    return _smallest(np.concatenate(a), np.concatenate(b), np.concatenate(d), faiss_index.ntotal)


def _smallest(a: np.ndarray, b: np.ndarray, d: np.ndarray, n: int) -> Pairs:
    """The distinct pairs {a, b} (a != b) of indices below ``n``, as u < v sorted, each at its smallest ``d``."""
    keep = a != b
    a, b, d = a[keep], b[keep], d[keep]
    key = np.minimum(a, b) * n + np.maximum(a, b)
    order = np.lexsort((d, key))
    key, first = np.unique(key[order], return_index=True)
    return Pairs(key // n, key % n, d[order][first])


def substring_join(codes: np.ndarray, radius: int) -> Pairs:
    """Every pair of rows of ``codes`` within ``radius`` (0 < radius < 2 * SUBSTRINGS), exactly, by the
    pigeonhole principle over ``SUBSTRINGS`` disjoint parts of the bits.

    If two codes differ in at most r bits, then of any parts whose "slack" t (0: equal, 1: one bit
    apart) adds up to sum(t + 1) >= r + 1, one part is within its slack. So r + 1 parts joined on
    equal values suffice for r < SUBSTRINGS, and for r up to 2 * SUBSTRINGS - 1 all parts are used,
    r + 1 - SUBSTRINGS of them also probed with each of their bits flipped. Each part's values index a
    dense table of bucket starts (2^21 entries): a lookup is an array access, and rows in a bucket are
    candidates, checked by their full distance. A pair is reported by the first part that admits it.

    Parts of ~21 bits (not the r + 1 parts of 128 / (r + 1) bits that equality alone would need)
    keep the buckets small: learned bits are correlated, and 14-bit parts at r = 8 gave 10^9
    candidates over 10^6 codes. Parts take bits spread by ``_parts`` to split correlated bits apart.
    Cost grows with the candidates, ``PROBE_MAX`` of them checked at a time; exact for any codes.
    """
    if not 0 < radius < 2 * SUBSTRINGS:
        raise ConfigError(f"radius={radius}: the substring join takes 1 to {2 * SUBSTRINGS - 1}")
    words = np.ascontiguousarray(np.pad(codes, ((0, 0), (0, -codes.shape[1] % 8)))).view(np.uint64)
    words = [np.ascontiguousarray(w) for w in words.T]  # one array per word: 1-d gathers are the fast kind
    bits = np.unpackbits(codes, axis=1)
    parts = _parts(codes)[: min(radius + 1, SUBSTRINGS)]
    slack = np.arange(len(parts)) < radius + 1 - SUBSTRINGS  # the parts also probed one bit apart
    masks = [np.packbits(np.isin(np.arange(len(words) * 64), part)).view(np.uint64) for part in parts]
    found = []
    for s, part in enumerate(parts):
        key = bits[:, part] @ (1 << np.arange(len(part), dtype=np.int64))
        flips = (1 << np.arange(len(part) if slack[s] else 0)).tolist()
        bounds = np.zeros((1 << len(part)) + 1, dtype=np.int32)  # bucket v holds rows[bounds[v]:bounds[v + 1]]
        np.cumsum(np.bincount(key, minlength=1 << len(part)), out=bounds[1:])
        rows = np.argsort(key, kind="stable").astype(np.int32)  # ascending within a bucket
        after = np.empty(len(rows), dtype=np.int32)  # where in ``rows`` a row's own bucket continues past it
        after[rows] = np.arange(1, len(rows) + 1, dtype=np.int32)
        for lo in range(0, len(codes), ROW_BATCH):
            hi = min(lo + ROW_BATCH, len(codes))
            q = (key[lo:hi, None] ^ np.array([0, *flips])).reshape(-1)
            first, last = bounds[q], bounds[q + 1]
            first[:: len(flips) + 1] = after[lo:hi]  # own bucket: only the rows above, each pair once
            owner = np.repeat(np.arange(lo, hi, dtype=np.int32), len(flips) + 1)
            for plo, phi in _batches(np.cumsum(last - first, dtype=np.int64), PROBE_MAX):
                a = owner[plo:phi].repeat(last[plo:phi] - first[plo:phi])
                b = rows[_ranges(first[plo:phi], last[plo:phi])]
                a, b = a[a < b], b[a < b]
                x = [w[a] ^ w[b] for w in words]
                near = _popcount(x) <= radius
                a, b, x = a[near], b[near], [w[near] for w in x]
                earlier = np.zeros(len(a), dtype=bool)  # admitted by a part before this one: reported there
                for e in range(s):
                    earlier |= _popcount([w & m for w, m in zip(x, masks[e])]) <= slack[e]
                found.append((a[~earlier], b[~earlier], _popcount([w[~earlier] for w in x])))
    a, b, d = (np.concatenate(x).astype(np.int64) for x in zip(*found))
    order = np.lexsort((b, a))
    return Pairs(a[order], b[order], d[order])


def _popcount(words: list[np.ndarray]) -> np.ndarray:
    """The set bits of codes given as one array per 64-bit word."""
    return sum((np.bitwise_count(w).astype(np.int64) for w in words), np.zeros(len(words[0]), dtype=np.int64))


def _batches(work: np.ndarray, limit: int) -> Iterator[tuple[int, int]]:
    """Consecutive row ranges [lo, hi) whose ``work`` (a cumulative sum per row) stays near ``limit``."""
    lo = 0
    while lo < len(work):
        done = work[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(work, done + limit, side="right")))
        yield lo, hi
        lo = hi


def _parts(codes: np.ndarray) -> list[np.ndarray]:
    """``SUBSTRINGS`` disjoint sets of bit positions covering the code, correlated bits set apart.

    Two strongly correlated bits in one part carry little more than one, so that part's buckets
    grow. Bits are placed most balanced first, each into the open part whose bits it correlates
    least with (on up to 20,000 codes); deterministic for given codes.
    """
    nbits = codes.shape[1] * 8
    bits = np.unpackbits(codes[:20_000], axis=1).astype(np.float64)
    spread = bits.std(0)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant bit correlates with nothing: nan -> 0
        corr = np.abs(np.corrcoef(bits.T)) if len(bits) > 1 else np.zeros((nbits, nbits))
    corr = np.nan_to_num(corr) * (1 - np.eye(nbits))
    sizes = [len(p) for p in np.array_split(np.arange(nbits), SUBSTRINGS)]
    parts: list[list[int]] = [[] for _ in sizes]
    for bit in np.argsort(-spread, kind="stable"):
        open_parts = [k for k in range(len(parts)) if len(parts[k]) < sizes[k]]
        k = min(open_parts, key=lambda k: (corr[bit, parts[k]].max(initial=0), len(parts[k])))
        parts[k].append(int(bit))
    return [np.array(sorted(p)) for p in parts]


def _group(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(codes, axis=0, return_inverse=True, return_counts=True)`` by a lexsort of the codes
    as big-endian 64-bit words (same order): 1.1 s instead of 9 s on 10^6 128-bit codes, both measured niced."""
    words = np.pad(codes, ((0, 0), (0, -codes.shape[1] % 8))).view(">u8")
    order = np.lexsort(words.T[::-1])
    ordered = words[order]
    new = np.concatenate([[len(codes) > 0], (ordered[1:] != ordered[:-1]).any(axis=1)])
    group = np.empty(len(codes), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    return codes[order[starts]], group, np.diff(np.append(starts, len(codes)))


def binary_index(codes: np.ndarray, kind: str, nprobe: int, seed: int):
    """A faiss binary index holding ``codes``: "flat" (``IndexBinaryFlat``, exact, N^2 comparisons
    over a whole collection) or "ivf" (``IndexBinaryIVF``: about sqrt(N) lists by binary k-means, a
    query scans ``nprobe`` of them; approximate, exact when ``nprobe`` reaches the number of lists).

    The exact multi-index hash (``IndexBinaryMultiHash``, 8 tables of 16 bits, 1 or 2 bit flips) was
    measured slower than flat on real codes, whose correlated bits crowd its buckets: 7.8 / 52 s
    against 3.4 / 4.9 s for 20,000 queries into 10^5 codes at r = 8 / 16.
    """
    import faiss

    bits = codes.shape[1] * 8
    if kind == "flat":
        index = faiss.IndexBinaryFlat(bits)
    else:
        nlist = max(1, min(round(np.sqrt(len(codes))), len(codes) // 40, 1024))  # faiss wants >= 39 per list
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, nlist)
        index.cp.seed, index.nprobe = seed, nprobe
        sample = np.random.default_rng(seed).choice(len(codes), min(len(codes), 64 * nlist), replace=False)
        index.train(codes[np.sort(sample)])
    index.add(codes)
    return index


def _ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The concatenation of ``arange(a, b)`` for each (a, b), without a Python loop."""
    lengths = stops - starts
    return np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())


@dataclass
class Matches:
    """Row pairs within a radius, as groups of identical codes plus pairs of distinct codes.

    ``group[k]`` is row k's distinct code, ``size[g]`` the rows holding code g, ``near`` the pairs of
    distinct codes within the radius (u < v, distance > 0) and ``index`` the faiss index that found
    them ("none" when no range search ran). Row pairs are listed only on demand (``pairs``).
    """

    group: np.ndarray
    size: np.ndarray
    near: Pairs
    index: str

    def __len__(self) -> int:
        """The number of row pairs: k(k-1)/2 inside each group, k * l across each near pair of groups."""
        return int((self.size * (self.size - 1) // 2).sum() + (self.size[self.near.i] * self.size[self.near.j]).sum())

    def clusters(self) -> "Clusters":
        """Connected components: each row joined to its group's first row, the first rows of near groups joined."""
        n = len(self.group)
        first = np.full(len(self.size), n, dtype=np.int64)
        np.minimum.at(first, self.group, np.arange(n))
        return cluster(np.concatenate([np.arange(n), first[self.near.i]]),
                       np.concatenate([first[self.group], first[self.near.j]]), n)

    def pairs(self, rows: np.ndarray | None = None) -> Pairs:
        """The row pairs involving any of ``rows`` (all rows by default), e.g. the injected copies to
        score; their number is what the caller asks for, never the square of a large group."""
        n, groups = len(self.group), np.arange(len(self.size))
        rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        members = np.argsort(self.group, kind="stable")  # rows by group, increasing within one
        start = np.concatenate([[0], np.cumsum(self.size)])
        # each group's neighbour groups, itself (distance 0) included, as edges sorted by their first end
        a = np.concatenate([groups, self.near.i, self.near.j])
        b = np.concatenate([groups, self.near.j, self.near.i])
        d = np.concatenate([np.zeros(len(groups), dtype=np.int64), self.near.d, self.near.d])
        order = np.argsort(a, kind="stable")
        b, d, edges = b[order], d[order], np.searchsorted(a[order], np.arange(len(groups) + 1))
        g = self.group[rows]
        e = _ranges(edges[g], edges[g + 1])  # one per (row, neighbour group)
        query = np.repeat(rows, edges[g + 1] - edges[g])
        h = b[e]
        other = members[_ranges(start[h], start[h + 1])]
        query, dist = np.repeat(query, self.size[h]), np.repeat(d[e], self.size[h])
        keep = other != query
        key = np.minimum(query, other)[keep] * n + np.maximum(query, other)[keep]
        key, first = np.unique(key, return_index=True)  # a pair of two listed rows is found from both ends
        return Pairs(key // n, key % n, dist[keep][first])


@dataclass
class Clusters:
    """Connected components of the pair graph over rows 0..n-1 (singletons excluded).

    ``label[k]`` is row k's cluster (-1 when it has no duplicate), ``kept[c]`` the lowest row of
    cluster c, which is kept; every other member is flagged.
    """

    label: np.ndarray
    kept: np.ndarray

    @property
    def flagged(self) -> np.ndarray:
        rows = np.flatnonzero(self.label >= 0)
        return rows[rows != self.kept[self.label[rows]]]

    def __len__(self) -> int:
        return len(self.kept)


CLUSTER_RULES = ("components", "star")


def distance(codes: np.ndarray, a: np.ndarray, b: np.ndarray, probes: np.ndarray | None = None) -> np.ndarray:
    """Hamming distances between rows ``a`` and rows ``b``; with ``probes``, the smallest of that and
    the distances from either row's probes to the other's code (as ``search`` matches them)."""
    d = hamming(codes[a], codes[b])
    if probes is not None:
        d = np.minimum(d, hamming(probes[a], codes[b][:, None]).min(1))
        d = np.minimum(d, hamming(probes[b], codes[a][:, None]).min(1))
    return d


def star(clusters: Clusters, codes: np.ndarray, radius: int, probes: np.ndarray | None = None) -> Clusters:
    """``clusters`` with every member farther than ``radius`` (``distance``) from its cluster's kept
    image left out (kept, unflagged): connected components chain a -> b -> c with a and c far apart,
    and this rule flags only images within the radius of the one kept. Clusters left with one member
    disappear."""
    rows = np.flatnonzero(clusters.label >= 0)
    kept = clusters.kept[clusters.label[rows]]
    label = clusters.label.copy()
    label[rows[distance(codes, rows, kept, probes) > radius]] = -1
    sizes = np.bincount(label[label >= 0], minlength=len(clusters))
    renumber = np.cumsum(sizes > 1) - 1
    label[label >= 0] = np.where(sizes[label[label >= 0]] > 1, renumber[label[label >= 0]], -1)
    return Clusters(label, clusters.kept[sizes > 1])


def cluster(i: np.ndarray, j: np.ndarray, n: int) -> Clusters:
    """Connected components of the graph over rows 0..n-1 with edges (i, j) (scipy's, on the sparse graph)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.unique(comp, return_index=True)[1]  # each component's lowest row
    kept = np.sort(first[np.bincount(comp) > 1])
    cluster_of = np.full(len(first), -1, dtype=np.int64)
    cluster_of[comp[kept]] = np.arange(len(kept))  # clusters numbered by their kept row
    return Clusters(cluster_of[comp], kept)


# ---- one pass over a collection -----------------------------------------------------------------------

@dataclass
class Hashed:
    """The codes of a collection's readable images: ``codes[method][k]`` is image ``ids[k]``'s."""

    ids: np.ndarray
    codes: dict[str, np.ndarray]
    skipped: list[tuple[str, str]]  # (image, reason) of each image that could not be decoded
    seconds: dict[str, float]  # "read" (decoding) and each method's hashing


def hash_collection(data, hashers: dict, chunk: int) -> Hashed:
    """Read ``data`` once, ``chunk`` images at a time, hashing each chunk with every hasher
    (uint8 images -> packed codes); memory holds one chunk of pixels and the codes."""
    ids, codes, skipped = [], {m: [] for m in hashers}, []
    seconds = dict.fromkeys(("read", *hashers), 0.0)
    chunks = read_chunks(data, range(len(data)), chunk, skipped)
    while True:
        t0 = time.perf_counter()
        got = next(chunks, None)
        seconds["read"] += time.perf_counter() - t0
        if got is None:
            break
        ids.append(got[0])
        for method, fn in hashers.items():
            t0 = time.perf_counter()
            codes[method].append(fn(got[1]))
            seconds[method] += time.perf_counter() - t0
    if not ids:
        raise DataError(f"none of the {len(data)} images could be decoded (first: {skipped[0][1]})" if skipped
                        else "the collection holds no images")
    return Hashed(np.concatenate(ids), {m: np.concatenate(c) for m, c in codes.items()}, skipped, seconds)


def autoencoder_for(data, recipe: AERecipe, seed: int, chunk: int) -> tuple[HashAutoencoder, dict]:
    """The autoencoder trained on ``data`` with ``recipe`` and ``seed``: from the cache, else trained on
    up to ``recipe.train_images`` of its images (drawn from the seed) and cached."""
    recipe.check()
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
