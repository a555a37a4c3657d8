"""Extraction spread over the processes of a torchrun job; everything else stays on rank 0.

``torchrun --nproc_per_node N $(which bench) run TASK ...`` (or ``bench evaluate``) starts N copies of
the command. Rank 0 runs it as one process would: the task, whatever it fits or trains, its metrics
and every file it writes (rows, artifacts, caches). The other ranks only compute. What the tasks
spend their time on is a pass mapping each of n images to a row of numbers (D's features,
Inception's features of a split or of a generator's samples, the dedup hashes), and each such pass
is a *job* that every rank runs on its contiguous shard of the n rows. The tasks are unchanged: they
ask ``RunContext.features``, ``bench.fidelity`` and the hashing pass as before, which run their pass
through ``run``; one process is a world of one, running the same job code. A cache hit never reaches
``run``, so it costs the other ranks nothing.

A job (``bench.features.FeatureJob``, ``bench.fidelity.InceptionJob``, ``bench.tasks.dedup.HashJob``)
is a small picklable description of its pass, never images or features:

- nets as config and weights (``Net``), so a randomly initialised D or one whose batch-norm
  statistics were re-estimated is rank 0's exactly; data as the arguments that load it (``DataRef``)
  with its content fingerprint, which every rank checks (the data, and Inception's weights, must be at
  the same paths on every node). Rank 0 runs its share with the very nets and data sets the task
  holds (``Net``, ``Data``); they are pickled as their description only when sent;
- ``n`` rows and a ``unit``: shard boundaries fall on multiples of it, the batch size, so that each
  batch is the one a single process forms and the numbers are the same, bit for bit on like devices;
- ``dtypes``, the arrays a chunk holds (one row per image: ``ids`` and codes for the hashes, whose
  unreadable images have no row), and ``chunks(rows, device, notes)``, the pass over ``rows``.

The protocol, on a gloo group (also with GPUs: what travels are CPU arrays; each rank computes on
``cuda:LOCAL_RANK`` or the CPU):

1. Rank 0 broadcasts ``("job", keys, pickled job)``; ranks > 0 wait for it in ``serve``.
2. Every rank walks its shard a chunk at a time, in rounds: all ranks all-gather a header (rows in
   their chunk, still going, failed, each array's row width), then gather their chunk's arrays to
   rank 0 as tensors padded to the round's longest (never pickled arrays: features can be GBs), which
   writes them in place (``into``: the memory-mapped cache file) or keeps them. A rank holds one chunk.
3. A failure anywhere (a rank's pass, rank 0's writing) is flagged in the next header, every rank
   leaves the loop in the same round, the ranks' notes (error, unreadable images, timings) are
   gathered to rank 0, and rank 0 raises the first error, naming its rank. No rank waits on a
   collective another will not enter.
4. When the command ends, rank 0 broadcasts ``("stop",)``, or ``("abort", its error)`` when it failed;
   ranks > 0 then leave, ending with that error.

Ranks > 0 wait for their next job for as long as rank 0 fits or trains between jobs, so the group's
timeout is long (``IDLE``); a rank that dies is caught by torchrun, which ends the others.
"""
from __future__ import annotations

import collections
import contextlib
import datetime
import os
import pickle
import sys
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from dcgan.data import ImageDataset, load_dataset
from dcgan.device import rank_device, resolve_device
from dcgan.errors import DataError, DCGANError, one_line
from dcgan.models import build_net

IDLE = datetime.timedelta(days=7)  # how long a rank waits for rank 0's next job (or any collective)
T = TypeVar("T")


class Aborted(DCGANError):
    """Rank 0 failed: the other ranks end with its error."""


class Job(Protocol):
    n: int
    unit: int
    dtypes: dict[str, np.dtype]
    shippable: bool  # False: it holds what only rank 0 has (images made in memory), and rank 0 runs it alone

    def chunks(self, rows: range, device: torch.device, notes: dict) -> Iterator[dict[str, np.ndarray]]: ...


@dataclass
class _Session:
    world: int
    rank: int
    device: torch.device
    loaded: collections.OrderedDict = field(default_factory=collections.OrderedDict)  # ranks > 0: recent data sets


_session: _Session | None = None


def on_rank0(device: str, command: Callable[[str], T]) -> T | None:
    """Run ``command(device)`` once for the whole job: in a process of its own, as it is; under torchrun
    (WORLD_SIZE > 1) on rank 0, given its rank's device, while the other ranks serve its jobs and
    return None."""
    global _session
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return command(device)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group(backend="gloo", timeout=IDLE)
    rank = dist.get_rank()
    _session = _Session(dist.get_world_size(), rank, rank_device(resolve_device(device), rank))
    try:
        if rank:
            serve()
            return None
        try:
            result = command(str(_session.device))
        except Exception as e:  # (an interrupt reaches every rank, or torchrun ends them)
            _end(("abort", f"{type(e).__name__}: {one_line(e)}"))
            raise
        _end(("stop",))
        return result
    finally:
        _session = None
        if joined:
            dist.destroy_process_group()


def _end(message: tuple) -> None:
    """Tell ranks > 0 the command is over; a group already broken (a rank died) has nobody to tell."""
    with contextlib.suppress(RuntimeError, ValueError):
        dist.broadcast_object_list([message], src=0)


def serve() -> int:
    """Rank > 0: compute rank 0's jobs on this rank's shard until it says stop (returns how many jobs) or
    abort (raises ``Aborted`` with its error)."""
    served = 0
    while True:
        box = [None]
        dist.broadcast_object_list(box, src=0)
        kind, *rest = box[0]
        if kind == "stop":
            print(f"rank {_session.rank} of {_session.world}: computed its shard of {served} extraction(s)",
                  file=sys.stderr)
            return served
        if kind == "abort":
            raise Aborted(f"rank 0 failed: {rest[0]}")
        keys, payload = rest
        try:
            job, failure = pickle.loads(payload), None
        except Exception as e:  # a job this rank cannot rebuild (e.g. other code installed): it fails, cleanly
            job, failure = None, e
        _walk(job, keys, _session.device, None, failure, _session.world, _session.rank)
        served += 1


@dataclass
class Gathered:
    """What ``run`` returns on rank 0: the arrays not written ``into`` place, rows in order, and each rank's notes."""

    arrays: dict[str, np.ndarray]
    notes: list[dict]


def run(job: Job, device: torch.device, into: dict[str, np.ndarray] | None = None) -> Gathered:
    """Run ``job`` over all ranks (rank 0 only calls this); ``into`` takes arrays whose rows are the job's
    rows (e.g. a memory-mapped feature file), written in place. ``device``: rank 0's."""
    keys = tuple(job.dtypes)
    if _session is None or not job.shippable:
        return _walk(job, keys, device, into, None, 1, 0)
    dist.broadcast_object_list([("job", keys, pickle.dumps(job))], src=0)
    return _walk(job, keys, device, into, None, _session.world, 0)


def shard(n: int, unit: int, world: int, rank: int) -> range:
    """Rank ``rank``'s contiguous rows of ``n``: whole units of ``unit`` rows, as even as they allow."""
    units = -(-n // unit)
    base, extra = divmod(units, world)
    first = rank * base + min(rank, extra)
    return range(min(n, first * unit), min(n, (first + base + (rank < extra)) * unit))


def _walk(job: Job | None, keys: tuple[str, ...], device: torch.device, into: dict | None,
          failure: BaseException | None, world: int, rank: int) -> Gathered:
    """One rank's part of a job (see the module's protocol); on rank 0, what all ranks sent."""
    notes: dict = {}
    rows = shard(job.n, job.unit, world, rank) if job is not None else range(0)
    chunks = job.chunks(rows, device, notes) if job is not None and failure is None else iter(())
    starts = [shard(job.n, job.unit, world, r).start for r in range(world)] if rank == 0 else []
    done = [0] * world  # rows received from each rank
    kept: list[dict[str, list]] = [collections.defaultdict(list) for _ in range(world)]
    shapes: dict[str, tuple] = {}
    active = True
    while True:
        chunk = None
        if active and failure is None:
            try:
                chunk = next(chunks, None)
                if chunk is not None:
                    chunk = {k: np.ascontiguousarray(chunk[k], dtype=job.dtypes[k]) for k in keys}
                    shapes = shapes or {k: a.shape[1:] for k, a in chunk.items()}
            except Exception as e:
                failure, chunk = e, None
        active = chunk is not None
        n = len(chunk[keys[0]]) if chunk else 0
        widths = [int(np.prod(chunk[k].shape[1:])) if chunk else 0 for k in keys]
        headers = _all_gather(torch.tensor([n, int(active), int(failure is not None), *widths]), world)
        if headers[:, 2].any() or not headers[:, 1].any():
            break
        for i, key in enumerate(keys):
            parts = _gather(chunk, key, job.dtypes[key], headers[:, 0], headers[:, 3 + i], world, rank)
            if rank or failure is not None:
                continue
            try:
                for r, part in enumerate(parts):
                    if into is not None and key in into:
                        view = into[key][starts[r] + done[r]: starts[r] + done[r] + len(part)]
                        view[...] = part.reshape(view.shape)
                    else:
                        kept[r][key].append(part)
            except Exception as e:  # e.g. the cache's disk is full: flagged in the next header
                failure = e
        done = [d + int(h) for d, h in zip(done, headers[:, 0])]
    notes["shapes"] = shapes
    notes["error"] = _describe(failure) if failure is not None else None
    everyone = _gather_notes(notes, world, rank)
    if rank:
        return Gathered({}, [])
    if failure is not None:
        raise failure
    for r, note in enumerate(everyone):
        if note["error"]:
            cls, message = note["error"]
            raise cls(f"rank {r}: {message}")
    shapes = next((note["shapes"] for note in everyone if note["shapes"]), {})
    arrays = {k: np.concatenate([p for r in range(world) for p in kept[r][k]]).reshape(-1, *shapes[k])
              if any(kept[r][k] for r in range(world)) else np.empty((0, *shapes.get(k, ())), job.dtypes[k])
              for k in keys if not (into is not None and k in into)}
    return Gathered(arrays, everyone)


def _describe(e: BaseException) -> tuple[type, str]:
    """An error as rank 0 re-raises it: a user error keeps its class and line, anything else its traceback."""
    if isinstance(e, DCGANError):
        return type(e), one_line(e)
    return RuntimeError, f"{type(e).__name__}: {e}\n{''.join(traceback.format_exception(e))}"


def _all_gather(header: torch.Tensor, world: int) -> torch.Tensor:
    if world == 1:
        return header[None]
    out = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(out, header)
    return torch.stack(out)


def _gather(chunk: dict | None, key: str, dtype, rows: torch.Tensor, widths: torch.Tensor, world: int,
            rank: int) -> list[np.ndarray]:
    """Every rank's rows of ``key`` this round (rows x width each), on rank 0; elsewhere []."""
    longest, width = int(rows.max()), int(widths.max())
    if world == 1:
        return [chunk[key].reshape(longest, width)]
    buf = torch.zeros(longest * width, dtype=_TORCH[np.dtype(dtype)])
    if chunk is not None:
        flat = torch.from_numpy(chunk[key].reshape(-1))
        buf[: len(flat)] = flat
    got = [torch.empty_like(buf) for _ in range(world)] if rank == 0 else None
    dist.gather(buf, got, dst=0)
    return [g[: int(n) * width].numpy().reshape(int(n), width) for g, n in zip(got, rows)] if rank == 0 else []


_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
          np.dtype(np.uint8): torch.uint8, np.dtype(np.int64): torch.int64}


def _gather_notes(notes: dict, world: int, rank: int) -> list[dict]:
    if world == 1:
        return [notes]
    out = [None] * world if rank == 0 else None
    dist.gather_object(notes, out, dst=0)
    return out or []


# ---- what a job is made of -------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataRef:
    """One split as ``load_dataset`` loads it: how a job names its data for the other ranks.
    ``RunContext.split`` loads through it, so every data set a task holds knows its own (``of``)."""

    name: str
    split: str = "train"
    root: str | None = None
    image_size: int = 32
    channels: int | None = None
    subset: int | None = None
    seed: int = 0
    options: tuple = ()  # load_dataset's selection (classes=, attrs=) and data_cache, as sorted (key, value) pairs

    def load(self) -> ImageDataset:
        data = load_dataset(self.name, self.split, root=self.root, image_size=self.image_size,
                            channels=self.channels, subset=self.subset, seed=self.seed, **dict(self.options))
        _refs[data] = self
        return data

    @staticmethod
    def of(data) -> "DataRef | None":
        """The reference ``data`` was loaded by (None: it was not loaded through one)."""
        try:
            return _refs.get(data)
        except TypeError:  # not weak-referenceable: no data set of ours
            return None


_refs: "weakref.WeakKeyDictionary[ImageDataset, DataRef]" = weakref.WeakKeyDictionary()


def options_key(options: dict) -> tuple:
    """``load_dataset`` options as a ``DataRef``'s hashable ``options``."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


class Data:
    """A job's data set: on rank 0 the data set the task holds (never pickled), elsewhere loaded from its
    ``DataRef`` (the last two kept for the session's next jobs) and checked against rank 0's content
    fingerprint, so that a node with other files at that path fails instead of measuring them."""

    def __init__(self, data: ImageDataset):
        self.ref, self._data = DataRef.of(data), data

    def __getstate__(self) -> dict:  # what is sent: the reference and the fingerprint (computed only then)
        if self.ref is None:
            raise TypeError(f"{self._data!r} was not loaded through a DataRef: only rank 0 can read it")
        return {"ref": self.ref, "fingerprint": self._data.fingerprint(), "_data": None}

    def get(self) -> ImageDataset:
        if self._data is None:
            self._data = _session_load(self.ref)
            if self._data.fingerprint() != self.fingerprint:
                raise DataError(f"{self._data!r} under {self.ref.root or 'the default data root'} is not the data "
                                "rank 0 reads (the fingerprint of its files' names, sizes, modification times and "
                                "bytes differs): every node needs the same files at the same path (a shared file "
                                "system, or copies made with rsync -a)")
        return self._data


def _session_load(ref: DataRef) -> ImageDataset:
    loaded = _session.loaded if _session is not None else collections.OrderedDict()
    if ref not in loaded:
        loaded[ref] = ref.load()
        while len(loaded) > 2:
            loaded.popitem(last=False)
    loaded.move_to_end(ref)
    return loaded[ref]


class Net:
    """A job's G or D: on rank 0 the net the task holds, pickled as its config and weights (on the CPU) and
    rebuilt from them on the other ranks, so that a randomly initialised D or one whose batch-norm
    statistics were re-estimated is rank 0's exactly."""

    def __init__(self, kind: str, net: torch.nn.Module):
        self.kind, self._net = kind, net  # kind: "generator" or "discriminator"

    def __getstate__(self) -> dict:
        return {"kind": self.kind, "cfg": self._net.cfg, "_net": None,
                "state": {k: v.detach().cpu() for k, v in self._net.state_dict().items()}}

    def get(self, device: torch.device) -> torch.nn.Module:
        if self._net is None:
            self._net = build_net(self.kind, self.cfg)
            self._net.load_state_dict(self.state)
            self._net = self._net.to(device).eval()
        return self._net
