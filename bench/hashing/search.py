"""The Hamming search: every pair of codes within a radius, identical codes grouped first.

``search`` groups identical codes (all pairs at r = 0) and searches only the distinct codes for
r > 0, by the exact substring join (``substring_join``) or a faiss binary range search
(``binary_index``: exact flat or approximate IVF); shift probes are faiss queries too. The result
is a compact ``Matches`` (``bench.hashing.clusters``).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from bench.hashing.clusters import Matches
from bench.hashing.hamming import Pairs, ranges
from dcgan.errors import ConfigError

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
    keep the buckets small: learned bits are correlated, and shorter parts crowd them with
    candidates (docs/experiments/dedup-recipes.md). Parts take bits spread by ``_parts`` to split
    correlated bits apart.
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
                b = rows[ranges(first[plo:phi], last[plo:phi])]
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
    as big-endian 64-bit words (same order): several times faster on large collections
    (docs/experiments/dedup-recipes.md)."""
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

    The exact multi-index hash (``IndexBinaryMultiHash``) is not offered: real codes, whose correlated
    bits crowd its buckets, measured slower with it than with flat (docs/experiments/dedup-recipes.md).
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
