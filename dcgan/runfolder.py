"""A training run's folder: where each file goes, and how every file stays in line with checkpoint.pt.

``checkpoint.pt`` is the run's one source of truth; every other file is derived from it:

- The exports of epoch N (``g.pt``, ``d.pt``, ``ckpt/epochNNN_{g,d}.pt``, ``samples/epochNNN.png``) are
  a function of the training state at the epoch's end, which ``checkpoint.pt`` holds from the moment
  the epoch ends until the next step is checkpointed. They are written right after that checkpoint,
  and every start from an epoch-end checkpoint rewrites those that are missing or hold anything else,
  so a process killed in between leaves nothing the next start does not repair exactly.
- ``log.csv`` has one row per step, appended as steps finish. After a kill it may hold steps the
  checkpoint never saw (they are about to be redone), or, from a run that failed before its first
  checkpoint, steps of a state that is gone. Every start rewrites it to exactly one row for each step
  up to the checkpoint's (none for a new run), keeping the last row written for a step: the log never
  holds a step twice, and its rows are those of the steps that led to the checkpoint.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

from dcgan.checkpoint import holds, write_checkpoint
from dcgan.fsutil import atomic_path, remove_orphaned_temps

LOG_COLUMNS = ("step", "epoch", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "seconds")  # a DCGAN's


class RunFolder:
    """The paths of one run folder, and the writes that keep its files in line with the checkpoint.

    ``columns``: those of ``log.csv``, step, epoch, the numbers the model family's step returns
    (``Family.stats``) and seconds."""

    def __init__(self, root: str | os.PathLike, columns: tuple[str, ...] = LOG_COLUMNS):
        self.root = Path(root)
        self.columns = columns

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def exports(self, epoch: int) -> dict[str, Path]:
        """The files derived from the state at the end of ``epoch`` (1-based)."""
        return {"g": self.root / "g.pt", "d": self.root / "d.pt",
                "epoch_g": self.root / "ckpt" / f"epoch{epoch:03d}_g.pt",
                "epoch_d": self.root / "ckpt" / f"epoch{epoch:03d}_d.pt",
                "samples": self.samples / f"epoch{epoch:03d}.png"}

    def write_exports(self, epoch: int, g: dict, d: dict | None, grid) -> list[Path]:
        """Write the exports of ``epoch`` that are missing or differ from the generator export ``g``, the
        discriminator export ``d`` (None: a run that trains no D, which exports none) and the sample grid
        ``grid`` (a PIL image); returns the paths written."""
        paths = self.exports(epoch)
        written = []
        for key, blob in (("g", g), ("d", d), ("epoch_g", g), ("epoch_d", d)):
            if blob is not None and not holds(paths[key], blob):
                written.append(write_checkpoint(paths[key], blob))
        if not _same_pixels(paths["samples"], grid):
            with atomic_path(paths["samples"]) as tmp:
                grid.save(tmp, format="PNG")
            written.append(paths["samples"])
        return written

    def remove_orphaned_temps(self) -> list[Path]:
        """The temporary files killed writers left in the folder (``dcgan.fsutil``): a kill during the
        last write of a file leaves one that no later write of the same file would remove."""
        return [p for sub in (self.root, self.root / "ckpt", self.samples) for p in remove_orphaned_temps(sub)]

    def append_log(self, row: dict) -> None:
        new = not self.log.exists()
        with open(self.log, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            if new:
                w.writeheader()
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})

    def rewrite_log(self, step: int) -> None:
        """Keep one row for each of steps 1..``step``, the last written, in step order; drop the rest
        (later steps, rows cut short by a kill)."""
        if not self.log.exists():
            return
        rows = {}
        with open(self.log, newline="") as f:
            for row in csv.DictReader(f):
                if _complete(row, self.columns) and 1 <= int(row["step"]) <= step:
                    rows[int(row["step"])] = row
        with atomic_path(self.log) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(rows[s] for s in sorted(rows))


def _complete(row: dict, columns: tuple[str, ...]) -> bool:
    """A row with every column (a kill mid-append leaves a short last line) and an integer step."""
    return (set(row) == set(columns) and all(row[c] for c in columns)
            and row["step"].isdigit())


def _same_pixels(path: Path, grid) -> bool:
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as old:
            return old.size == grid.size and np.array_equal(np.asarray(old.convert("RGB")), np.asarray(grid))
    except (OSError, ValueError):  # missing or not an image
        return False
