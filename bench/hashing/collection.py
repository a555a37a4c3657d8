"""One pass over a collection: images read in chunks, hashed by each method, only the codes kept.

An image whose file cannot be decoded is recorded in a ``skipped`` list (name, reason) and left out,
never a crash. Hashers map uint8 images N x 3 x 32 x 32 to packed codes N x bytes: the autoencoder's
``HashAutoencoder.hash``, ``phash``, or ``probe_codes`` over either.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Iterator

import numpy as np
import torch

from bench.hashing.augment import moved, probe_offsets
from dcgan.errors import DataError


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


def probe_codes(hasher, images: torch.Tensor, k: int) -> np.ndarray:
    """The codes (N x 4k x bytes) of uint8 ``images`` moved by each of ``probe_offsets(k)``.

    A copy moved by a few pixels can land far from its source in Hamming distance (1-3 px shifts
    are what neither the learned hash nor pHash finds); comparing each image's moved hashes with the
    other images' own hashes finds it (``bench.hashing.search.search(..., probes=...)``)."""
    return np.stack([hasher(moved(images, torch.tensor([o] * len(images))).to(torch.uint8))
                     for o in probe_offsets(k)], axis=1)


@dataclass
class Hashed:
    """The codes of a collection's readable images: ``codes[method][k]`` is image ``ids[k]``'s."""

    ids: np.ndarray
    codes: dict[str, np.ndarray]
    skipped: list[tuple[str, str]]  # (image, reason) of each image that could not be decoded
    seconds: dict[str, float]  # "read" (decoding) and each method's hashing


def hashers(methods: tuple[str, ...], ae=None, probe_shift: int = 0) -> dict:
    """The hashers of ``methods`` (``ae-hash`` with the autoencoder ``ae``, ``phash``), and with
    ``probe_shift`` k each one's moved copies as ``"<method> probes"`` (``probe_codes``)."""
    out = {}
    if "ae-hash" in methods:
        out["ae-hash"] = ae.hash
    if "phash" in methods:
        out["phash"] = phash
    if probe_shift:
        out.update({f"{m} probes": partial(probe_codes, fn, k=probe_shift) for m, fn in out.items()})
    return out


def hash_chunks(data, rows, hashers: dict, chunk: int, skipped: list, seconds: dict) -> Iterator[dict]:
    """``data[rows]`` read ``chunk`` images at a time, each chunk hashed by every hasher: per chunk, the
    readable images' ``ids`` and each method's codes. Unreadable images go to ``skipped``; the time spent
    reading and in each hasher is added to ``seconds``."""
    for key in ("read", *hashers):
        seconds.setdefault(key, 0.0)
    chunks = read_chunks(data, rows, chunk, skipped)
    while True:
        t0 = time.perf_counter()
        got = next(chunks, None)
        seconds["read"] += time.perf_counter() - t0
        if got is None:
            return
        out = {"ids": got[0]}
        for method, fn in hashers.items():
            t0 = time.perf_counter()
            out[method] = fn(got[1])
            seconds[method] += time.perf_counter() - t0
        yield out


def assemble(arrays: dict[str, np.ndarray], skipped: list, seconds: dict, n: int) -> Hashed:
    """The ``Hashed`` of a collection of ``n`` images from its chunks' arrays, joined; none readable is a
    ``DataError``."""
    if not len(arrays["ids"]):
        raise DataError(f"none of the {n} images could be decoded (first: {skipped[0][1]})" if skipped
                        else "the collection holds no images")
    return Hashed(arrays["ids"], {m: a for m, a in arrays.items() if m != "ids"}, skipped, seconds)


def hash_collection(data, hashers: dict, chunk: int) -> Hashed:
    """Read ``data`` once, ``chunk`` images at a time, hashing each chunk with every hasher
    (uint8 images -> packed codes); memory holds one chunk of pixels and the codes."""
    skipped, seconds = [], {}
    parts = list(hash_chunks(data, range(len(data)), hashers, chunk, skipped, seconds))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in ("ids", *hashers)} if parts else {"ids": []}
    return assemble(arrays, skipped, seconds, len(data))
