"""From pairs to clusters: ``Matches`` (what ``search`` returns), connected components, the star rule.

Clusters are connected components (each row joined to its group, near groups joined), so a group of
k identical codes never becomes k(k-1)/2 pairs. The lowest index of a cluster is kept and the rest
flagged (``star``: only those within r of the kept image); row pairs are listed only for the rows
that need them (scoring).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.hashing.hamming import Pairs, hamming, ranges

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
        e = ranges(edges[g], edges[g + 1])  # one per (row, neighbour group)
        query = np.repeat(rows, edges[g + 1] - edges[g])
        h = b[e]
        other = members[ranges(start[h], start[h + 1])]
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
    the distances from either row's probes to the other's code (as ``bench.hashing.search.search``
    matches them)."""
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
