"""Near-duplicate detection with the paper's autoencoder semantic hash (section 4.1.1), against pHash.

Protocol:
1. The data set's ``split`` at 32x32 (resized, centre-cropped), 3 channels; with ``inject=k``, k
   edited copies of k distinct images are appended and their (source, copy) pairs are the ground truth.
2. The hashing autoencoder (``bench.hashing.autoencoder.AERecipe``) trained on the original images (not
   the copies), cached by the data's content fingerprint, transform, recipe and seed; or ``ae=PATH`` to reuse one.
3. One streaming pass hashes every image with each method: ``ae-hash`` (128 bits, the paper's) and
   ``phash`` (imagehash's 64-bit pHash, the baseline); under torchrun the ranks share it (``HashJob``),
   while the autoencoder is trained on rank 0 alone. Undecodable images are reported and skipped.
   With ``probe_shift=k`` every image is also hashed moved by 1..k px each way
   (``bench.hashing.collection.probe_codes``).
4. Per method and radius: pairs within that Hamming distance (with probes: a moved hash of one image
   within it of the other's hash counts too), clusters (connected components), the
   lowest index of a cluster kept and the rest flagged; with ``inject``, precision on pairs
   involving an injected image, recall of the injected pairs, F1 and the recall of each edit.

Beside its rows, a run writes ``<results>/dedup/<run_id>_clusters.csv`` (every clustered image per
method and radius: cluster, kept or flagged, Hamming distance to the kept image), a contact sheet
``<run_id>_clusters.png`` of sample clusters (the first method, its largest radius) and, when images
were skipped, ``<run_id>_skipped.csv`` (image, reason).
"""
from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from tqdm.auto import tqdm

from bench import shards
from bench.hashing.autoencoder import SIDE, AERecipe, autoencoder_for, autoencoder_from_state, load_autoencoder
from bench.hashing.clusters import distance, star
from bench.hashing.collection import Hashed, assemble, hash_chunks, hashers
from bench.hashing.search import search
from bench.inject import EDIT_NAMES
from bench.results import Measurement
from bench.shards import Data
from bench.tasks.base import TASKS, RunContext, Task
from dcgan.fsutil import atomic_path
from dcgan.params import param

METHODS = ("ae-hash", "phash")
SHEET_MEMBERS = 8  # images shown per cluster on the contact sheet


@dataclass(frozen=True)
class DedupParams(AERecipe):
    radius: tuple[int, ...] = param((0,), "ae-hash Hamming radii, a row set each; paper: 0, exact hash collisions",
                                    low=0, nonempty=True)
    phash_radius: tuple[int, ...] = param((0,), "pHash radii (64 bits)", low=0, nonempty=True)
    methods: tuple[Literal[METHODS], ...] = param(METHODS, "hash methods compared", nonempty=True)
    inject: int = param(0, "edited copies appended as ground truth (precision/recall rows); 0: none", low=0)
    edits: tuple[Literal[EDIT_NAMES], ...] = param(EDIT_NAMES, "the edits of the injected copies, in turn",
                                                   nonempty=True)
    ae: str | None = param(None, "a trained autoencoder file (e.g. another collection's) instead of training one")
    index: Literal["auto", "substrings", "flat", "ivf"] = param(
        "auto", "Hamming search: substring join (exact), faiss flat (exact) or ivf; auto picks by size and radius")
    cluster_rule: Literal["components", "star"] = param(
        "components", "components: connected pairs; star: flag only images within the radius of the kept one")
    probe_shift: int = param(0, "also match each image moved by 1..k px each way (4k more hashes each); 0: off",
                             low=0, high=SIDE // 2 - 1)
    nprobe: int = param(16, "ivf lists scanned per query", low=1)
    chunk: int = param(4096, "images decoded and hashed at a time", low=1)
    sheet_clusters: int = param(16, "clusters drawn on the contact sheet", low=0)


@dataclass
class HashJob:
    """The hashing pass (``hash_chunks``) over a collection (a split, with ``inject`` edited copies
    appended) as a job of ``bench.shards``: every rank rebuilds the collection and the hashers (the
    autoencoder from ``ae``, its weights) and hashes its shard of the images. The hashes are the same
    whatever the chunk (the autoencoder's in float64, pHash per image)."""

    data: Data
    n: int
    inject: int
    edits: tuple[str, ...]
    seed: int
    ae: dict | None
    methods: tuple[str, ...]
    probe_shift: int
    chunk: int
    unit: ClassVar[int] = 1
    shippable: ClassVar[bool] = True

    @property
    def dtypes(self) -> dict:
        return {"ids": np.int64, **{m: np.uint8 for m in self._hashers()}}

    def _hashers(self) -> dict:
        return hashers(self.methods, None if self.ae is None else autoencoder_from_state(self.ae), self.probe_shift)

    def chunks(self, rows: range, device, notes: dict):
        from bench.inject import Injected

        data = self.data.get()
        collection = Injected(data, self.inject, self.edits, self.seed) if self.inject else data
        notes.update(skipped=[], seconds={})
        return hash_chunks(collection, rows, self._hashers(), self.chunk, notes["skipped"], notes["seconds"])

    def hashed(self, got: shards.Gathered) -> Hashed:
        """The ranks' chunks as one ``Hashed``: their images in order, each phase's time its slowest rank's."""
        skipped = [item for note in got.notes for item in note["skipped"]]
        seconds = {k: max(note["seconds"].get(k, 0.0) for note in got.notes) for k in got.notes[0]["seconds"]}
        return assemble(got.arrays, skipped, seconds, self.n)


@TASKS.register("dedup")
class Dedup(Task):
    summary = "near-duplicates by the paper's 128-bit autoencoder hash (section 4.1.1) vs pHash, faiss search"
    paper = "4.1.1"
    default_split = "train"
    smoke = {"epochs": 1, "train_images": 200, "radius": (0, 4), "inject": 20}
    section = "data"  # it measures a collection of images, not a model: no part of bench evaluate's battery
    headline = ("f1",)
    pictures = {"clusters.png": "sample clusters: the kept image framed green, flagged ones red with their "
                                "Hamming distance: they should be the same picture, edited at most"}
    recipes = {
        "paper": {},  # the paper's 128-bit ReLU hash, exact collisions
        # the measured best on CIFAR-10 (docs/experiments/dedup.md): F1 0.900 at precision 0.993
        "recommended": {"threshold": "median", "jitter": 0.25, "shift": 2, "bits": 256, "probe_shift": 3,
                        "cluster_rule": "star", "radius": (16,)},
    }
    Params = DedupParams
    default_dataset = "folder"

    def run(self, ctx: RunContext, p: DedupParams) -> list[Measurement]:
        from bench.inject import Injected, score

        data = ctx.split(ctx.split_name, SIDE, 3, data_cache="off")  # per item: undecodable files are skipped
        collection = Injected(data, p.inject, p.edits, ctx.seed) if p.inject else data
        net, ae_info = None, {}
        if "ae-hash" in p.methods:
            if p.ae:
                net, ae_info = load_autoencoder(p.ae)
                ae_info = {**ae_info, "ae": p.ae, "ae_source": "given"}
            else:  # trained here, on rank 0 alone under torchrun
                net, ae_info = autoencoder_for(data, AERecipe.of(p), ctx.seed, p.chunk)
        job = HashJob(Data(data), len(collection), p.inject, p.edits, ctx.seed,
                      None if net is None else net.state_dict(), p.methods, p.probe_shift, p.chunk)
        hashed = job.hashed(shards.run(job, ctx.device))
        for _, reason in hashed.skipped:
            tqdm.write(f"skipped: {reason}", file=sys.stderr)
        truth = {}
        if p.inject:
            readable = set(hashed.ids.tolist())
            truth = {pair: e for pair, e in collection.truth().items() if readable.issuperset(pair)}
            copies = np.flatnonzero(hashed.ids >= len(data))  # rows of the injected copies

        ae_extra = {k: v for k, v in ae_info.items() if k != "recipe"}  # the recipe is in the params already
        out, clustered = [], []
        for method in p.methods:
            codes, probes = hashed.codes[method], hashed.codes.get(f"{method} probes")
            bits = codes.shape[1] * 8
            for r in p.radius if method == "ae-hash" else p.phash_radius:
                t0 = time.perf_counter()
                matches = search(codes, r, p.index, p.nprobe, ctx.seed, probes=probes)
                clusters = matches.clusters()
                if p.cluster_rule == "star":
                    clusters = star(clusters, codes, r, probes)
                search_seconds = time.perf_counter() - t0
                values = {"images": len(hashed.ids), "images_skipped": len(hashed.skipped), "pairs": len(matches),
                          "clusters": len(clusters), "flagged": len(clusters.flagged)}
                seconds = {"seconds_read": hashed.seconds["read"],
                           "seconds_hash": hashed.seconds[method] + hashed.seconds.get(f"{method} probes", 0.0),
                           "seconds_search": search_seconds}
                if method == "ae-hash":  # 0 when the autoencoder came from the cache or ae=PATH
                    seconds["seconds_train"] = ae_info["train_seconds"] if ae_info["ae_source"] == "trained" else 0.0
                if p.inject:
                    pairs = matches.pairs(copies)  # score() looks at pairs involving a copy only
                    found = set(zip(hashed.ids[pairs.i].tolist(), hashed.ids[pairs.j].tolist()))
                    values.update(score(found, truth, len(data)))
                extra = {"n_injected": len(truth), "index": matches.index, **seconds,
                         **(ae_extra if method == "ae-hash" else {})}
                out += [Measurement(metric, value, split=ctx.split_name, model=method, features=f"{bits}-bit r={r}",
                                    details=extra, params={"radius": r}) for metric, value in values.items()]
                clustered.append((method, r, clusters, codes, probes))
                shown = ", ".join(f"{k} {values[k]:.3g}" for k in ("pairs", "flagged", "precision", "recall")
                                  if k in values)
                tqdm.write(f"{method} r={r}: {shown} ({search_seconds:.1f} s search)", file=sys.stderr)
        self._write(ctx, p, collection, hashed, clustered)
        return out

    def _write(self, ctx, p, collection, hashed, clustered) -> None:
        """The clusters CSV, the contact sheet and, if any image was skipped, the skipped list."""
        from bench.pictures import GREEN, RED, contact_sheet

        with atomic_path(ctx.artifact("clusters.csv")) as tmp, open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["method", "radius", "cluster", "image", "index", "kept", "distance"])
            for method, r, clusters, codes, probes in clustered:
                rows = np.flatnonzero(clusters.label >= 0)
                kept_rows = clusters.kept[clusters.label[rows]]
                for row, c, kept_row, d in zip(rows, clusters.label[rows], kept_rows,
                                               distance(codes, rows, kept_rows, probes)):
                    index = int(hashed.ids[row])
                    w.writerow([method, r, int(c), collection.item_name(index), index, int(row == kept_row), int(d)])
        skipped = ctx.artifact("skipped.csv")
        if hashed.skipped:
            with atomic_path(skipped) as tmp, open(tmp, "w", newline="") as f:
                csv.writer(f).writerows([("image", "reason"), *hashed.skipped])
        else:  # a re-run after the files were mended leaves no stale list
            skipped.unlink(missing_ok=True)
        _, _, clusters, codes, probes = max((c for c in clustered if c[0] == p.methods[0]), key=lambda c: c[1])
        rng = np.random.default_rng(ctx.seed)
        shown = np.sort(rng.choice(len(clusters), min(len(clusters), p.sheet_clusters), replace=False))
        sheet = []
        for c in shown:
            members = np.flatnonzero(clusters.label == c)[:SHEET_MEMBERS]
            kept = clusters.kept[c]
            d = distance(codes, members, np.full(len(members), kept), probes)
            sheet.append([(collection[int(hashed.ids[m])][0], f"c{c} kept" if m == kept else f"d={int(dm)}",
                           GREEN if m == kept else RED)
                          for m, dm in zip(members, d)])
        contact_sheet(sheet, ctx.artifact("clusters.png"), tile=2 * SIDE, empty="no duplicate clusters")
