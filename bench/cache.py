"""The cache folder's entries: listed, pruned least recently used first, and kept under a size cap.

Everything the suite derives lives under ``cache_dir()``: feature matrices (``features/``, each
``<key>.npy`` with a ``<key>.json`` naming the inputs behind the key), decoded image-folder arrays
(``arrays/``), file-backed data sets decoded once at a model's size (``decoded/``, ``<key>.npy`` and
``<key>.json`` too, ``dcgan.data.decoded``), torch-fidelity's real-side features (``fidelity/``),
the dedup task's autoencoders (``dedup/``), the classifiers trained on real images (``classifiers/``, ``bench.classifier``) and data
sets' content fingerprints (``fingerprints/``, ``dcgan.data.fingerprint``). All
of them are recomputed when missing, so they may be removed at any time. "Last use" is a file's
mtime: a cache hit refreshes it (``dcgan.fsutil.mark_used``), so pruning removes what no run has read
for longest, not what was made first. Downloads are not derived: the Inception weights
(``weights/``) go only when asked for (``--include-weights``), downloaded data sets (``data/``) are
listed but never removed. Temporary files of writes that a killed process left behind count as
entries of their own once they are an hour old (younger ones may still be being written).

After each feature write the prunable total is kept under ``$DCGAN_BENCH_CACHE_MAX`` (default 20G).
Sizes are binary, as ``du -h`` and ``ls -h`` print them: 1K = 1024 bytes, 1G = 1024**3 bytes.
"""
from __future__ import annotations

import functools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from dcgan.errors import ConfigError

CAP_ENV = "DCGAN_BENCH_CACHE_MAX"
DEFAULT_CAP = "20G"
TEMP_AGE = 3600  # seconds after which a temporary file is taken as left behind by a killed write
SIZE_HELP = "bytes, or with a binary K/M/G/T suffix (1K = 1024, 1G = 1024^3), e.g. 500M or 10G"

# folder -> kind; weights and data sets are downloads, not derived data
FOLDERS = {"features": "features", "arrays": "arrays", "decoded": "decoded", "fidelity": "fidelity",
           "dedup": "autoencoder", "classifiers": "classifier", "fingerprints": "fingerprint", "weights": "weights"}
KEPT = {"weights": "download: removed only with --include-weights",
        "data": "downloaded data set: never removed by bench cache"}
_UNITS = ("", "K", "M", "G", "T")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
# atomic_path's ".<name>.<random>.tmp", and torch-fidelity's NamedTemporaryFile "tmp<random>"
_TEMP = re.compile(r"^\..+\.tmp$|^tmp[a-z0-9_]{8}$")
_FIDELITY_GROUP = re.compile(r"^(real-[0-9a-f]+)-.+\.pt$")
_FIDELITY_ITEM = re.compile(r"^real-[0-9a-f]+-(.+?)-((?:features|stat)-.+)\.pt$")  # extractor, item


def parse_size(text: str, source: str) -> int:
    """``text`` (e.g. ``10G``, ``1.5T``, ``500M``, ``2048``) in bytes; anything else is a one-line error."""
    m = _SIZE.match(str(text))
    if not m:
        raise ConfigError(f"{source} {text!r}: expected a size in {SIZE_HELP}")
    return int(float(m[1]) * 1024 ** _UNITS.index(m[2].upper()))


def cap_from_env() -> int | None:
    """The size cap from ``$DCGAN_BENCH_CACHE_MAX`` (unset: 20G; ``0`` or ``none``: no cap)."""
    raw = os.environ.get(CAP_ENV, "").strip() or DEFAULT_CAP
    if raw.lower() in ("0", "none"):
        return None
    try:
        return parse_size(raw, f"${CAP_ENV}")
    except ConfigError as e:
        raise ConfigError(f"{e}; or 0 or none for no cap") from None


def human_size(n: float) -> str:
    """``n`` bytes as ``ls -h`` shows them: 512B, 1.2K, 34M, 1.2G."""
    unit = ""
    for unit in _UNITS:
        if n < 1024 or unit == _UNITS[-1]:
            break
        n /= 1024
    return f"{n:.0f}{unit or 'B'}" if not unit or n >= 10 else f"{n:.1f}{unit}"


@dataclass
class Entry:
    """One removable unit of the cache: a file, or files that only make sense together (a feature
    matrix and its description; the items torch-fidelity caches for one real side)."""

    kind: str
    name: str  # relative to the cache folder
    paths: list[Path]
    size: int
    last_used: float  # the newest mtime among its files

    def prunable(self, include_weights: bool = False) -> bool:
        return self.kind not in KEPT or (include_weights and self.kind == "weights")

    @functools.cached_property
    def description(self) -> str:
        """What the entry holds: for features, the inputs behind its key (read from its ``.json``)."""
        if self.kind in KEPT:
            return KEPT[self.kind]
        if self.kind == "temp":
            return "left behind by an interrupted write"
        if self.kind == "fingerprint":
            return "the content fingerprint of a data set's files, for their paths, sizes and times"
        if self.kind == "classifier":
            return "a small CNN trained on real images by the fixed recipe (bench.classifier)"
        if self.kind == "fidelity":
            items = [m.groups() for p in self.paths if (m := _FIDELITY_ITEM.match(p.name))]
            if items:
                extractors = ", ".join(sorted({extractor for extractor, _ in items}))
                return f"real images through {extractors}: {', '.join(sorted(i for _, i in items))}"
        sidecar = next((p for p in self.paths if p.suffix == ".json"), None)
        describe = {"features": describe_features, "decoded": describe_decoded}.get(self.kind)
        if describe and sidecar:
            try:
                return describe(json.loads(sidecar.read_text()))
            except (OSError, ValueError, AttributeError, TypeError):  # unreadable, or not the JSON object we write
                pass
        return "(no description)"


def describe_features(f: dict) -> str:
    """A feature key's fields in a line, e.g. ``trained-d cifar10/train all/max4 ckpt 1a2b3c4d n=50000``."""
    model = f.get("model")
    parts = [str(model), f"{f.get('dataset')}/{f.get('split')}"]
    if f.get("spec") not in (None, "pixels"):
        parts.append(str(f["spec"]))
    if model == "trained-d" and isinstance(f.get("ckpt"), str):
        parts.append(f"ckpt {f['ckpt'][:8]}")
    parts.append(f"n={f.get('n')}")
    if f.get("subset"):
        parts.append(f"subset={f['subset']}")
    if f.get("subset") or model == "random-d":  # the seed draws the subset and initialises random-d
        parts.append(f"seed={f.get('seed')}")
    return " ".join(parts)


def describe_decoded(f: dict) -> str:
    """A decoded data set's description in a line, e.g. ``decoded images folder/train 1000x3x32x32 subset=1000``."""
    parts = ["decoded images", f"{f.get('dataset')}/{f.get('split')}", "x".join(map(str, f.get("shape") or ()))]
    if f.get("subset"):
        parts.append(f"subset={f['subset']}")
    if f.get("selection"):
        parts.append(str(f["selection"]))
    return " ".join(parts)


def _files(folder: Path) -> list[tuple[Path, os.stat_result]]:
    out = []
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.is_file(follow_symlinks=False):
                        out.append((Path(e.path), e.stat(follow_symlinks=False)))
                except FileNotFoundError:  # removed meanwhile (another process pruning)
                    pass
    except (FileNotFoundError, NotADirectoryError):
        pass
    return out


def _group(folder: str, name: str) -> str:
    if folder in ("features", "decoded"):
        return name.rsplit(".", 1)[0]  # <key>.npy and <key>.json
    if folder == "fidelity" and (m := _FIDELITY_GROUP.match(name)):
        return m[1]
    return name


def _tree_size(folder: Path) -> tuple[int, float]:
    size, newest = 0, 0.0
    for dirpath, _, names in os.walk(folder):
        for n in names:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except FileNotFoundError:
                continue
            size, newest = size + st.st_size, max(newest, st.st_mtime)
    return size, newest


def scan(root: str | os.PathLike, data: bool = True) -> list[Entry]:
    """Every entry under the cache folder ``root``, least recently used first. ``data=False`` skips
    the downloaded data sets (never prunable, and possibly large trees to walk)."""
    root, now, entries = Path(root), time.time(), []
    for folder, kind in FOLDERS.items():
        groups: dict[str, list[tuple[Path, os.stat_result]]] = {}
        for path, st in _files(root / folder):
            if _TEMP.match(path.name):
                if now - st.st_mtime > TEMP_AGE:
                    entries.append(Entry("temp", f"{folder}/{path.name}", [path], st.st_size, st.st_mtime))
                continue
            groups.setdefault(_group(folder, path.name), []).append((path, st))
        for key, files in groups.items():
            entries.append(Entry(kind, f"{folder}/{key}", [p for p, _ in files], sum(st.st_size for _, st in files),
                                 max(st.st_mtime for _, st in files)))
    if data and (root / "data").is_dir():
        for sub in sorted((root / "data").iterdir()):
            size, newest = _tree_size(sub) if sub.is_dir() else (sub.stat().st_size, sub.stat().st_mtime)
            entries.append(Entry("data", f"data/{sub.name}", [sub], size, newest))
    return sorted(entries, key=lambda e: e.last_used)


def remove(entry: Entry) -> None:
    for path in entry.paths:
        path.unlink(missing_ok=True)  # another process may have pruned it first


@dataclass
class Pruned:
    before: int  # bytes of prunable entries
    after: int
    removed: list[Entry]


def prune(root: str | os.PathLike, max_size: int, *, keep: tuple[Path, ...] = (),
          include_weights: bool = False) -> Pruned:
    """Remove prunable entries, least recently used first, until they total at most ``max_size`` bytes;
    entries holding a file of ``keep`` stay whatever their age."""
    entries = prunable(root, include_weights)
    kept = {Path(p).resolve() for p in keep}
    before = total = sum(e.size for e in entries)
    removed = []
    for entry in entries:
        if total <= max_size:
            break
        if not kept.intersection(p.resolve() for p in entry.paths):
            entry.description  # read before its files go: the report names what was removed
            remove(entry)
            total -= entry.size
            removed.append(entry)
    return Pruned(before, total, removed)


def prunable(root: str | os.PathLike, include_weights: bool = False) -> list[Entry]:
    """What ``clear`` would remove."""
    return [e for e in scan(root, data=False) if e.prunable(include_weights)]


def entry_line(e: Entry) -> str:
    name = re.sub(r"([0-9a-f]{12})[0-9a-f]{4,}", r"\1", e.name)  # hashes: their first 12 digits suffice to tell
    used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
    return f"{e.kind:<11} {human_size(e.size):>6}  {used}  {name:<30} {e.description}"


def list_lines(root: str | os.PathLike) -> list[str]:
    """``bench cache list``: one line per entry (most recently used first) and a total."""
    entries = scan(root)
    prunable = sum(e.size for e in entries if e.prunable())
    lines = [entry_line(e) for e in reversed(entries)]
    return lines + [f"total {human_size(sum(e.size for e in entries))} in {len(entries)} entries under {root}, "
                    f"{human_size(prunable)} of it prunable"]


def prune_lines(result: Pruned, max_size: int) -> list[str]:
    """``bench cache prune``: each removed entry, then the prunable total before and after."""
    freed = sum(e.size for e in result.removed)
    return [f"removed {entry_line(e)}" for e in result.removed] + [
        f"prunable total {human_size(result.before)} -> {human_size(result.after)} (at most "
        f"{human_size(max_size)}): removed {len(result.removed)} entries, {human_size(freed)}"]
