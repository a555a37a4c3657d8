"""The DCGAN training loop: the paper's recipe, resumable, deterministic on CPU, DDP under torchrun.

The step is pytorch/examples' dcgan: D on a real batch (label 1) and on G(z) (label 0), then G
against D on the same fakes (label 1), Adam(2e-4, beta1 0.5) for both. Two things differ and
neither changes the numbers:
- D's parameters are frozen (``requires_grad_(False)``) during G's step, so the weight gradients
  that pytorch/examples computes there and throws away at the next ``zero_grad`` are never computed;
- real images stay uint8 until they reach the device.

A run folder holds:
  checkpoint.pt     the full training state (latest), written atomically every N steps and per epoch
  g.pt, d.pt        standalone exports of the latest epoch
  ckpt/epochNNN_{g,d}.pt  exports after every epoch (FID vs training step, features vs epoch)
  samples/epochNNN.png    a grid from a fixed z
  log.csv           one row per step: losses, D(x), D(G(z)), seconds
  config.json       the training settings

Resume recomputes the epoch's data order from (seed, epoch) and skips the batches already done,
and restores the noise generator: "2 epochs straight" and "1 epoch, kill, resume" end in the same
weights.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from dcgan.checkpoint import export_models, read_checkpoint, save_checkpoint
from dcgan.config import DCGANConfig
from dcgan.data import load_dataset
from dcgan.device import PRECISIONS, autocast, keep_freed_memory, resolve_device, seed_everything
from dcgan.errors import CheckpointError, ConfigError
from dcgan.fsutil import atomic_path
from dcgan.generate import generate
from dcgan.nets import Discriminator, Generator, sample_z

LOG_COLUMNS = ("step", "epoch", "loss_d", "loss_g", "d_x", "d_g_z1", "d_g_z2", "seconds")
SAMPLE_GRID = 64
GRID_PAD = 2  # pixels around and between the tiles of a sample grid


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; the defaults are the paper's recipe (section 4)."""

    model: DCGANConfig = field(default_factory=DCGANConfig)
    dataset: str = "digits"
    data_root: str | None = None
    subset: int | None = None
    epochs: int = 25
    batch_size: int = 128  # paper: mini-batch SGD with batch 128
    lr: float = 2e-4  # paper: Adam, learning rate 0.0002
    beta1: float = 0.5  # paper: beta1 0.5 (0.9 oscillated)
    seed: int = 0
    precision: str = "fp32"
    channels_last: bool = True
    checkpoint_every: int = 500  # steps; also at every epoch end
    workers: int = 2  # data-loader processes for file-backed data sets

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: expected one of {', '.join(PRECISIONS)}")
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: expected a positive integer")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        d["model"] = DCGANConfig.from_dict(d["model"])
        return cls(**d)


# Settings that may change between a run and its resumption without changing what was learnt.
_RESUMABLE_CHANGES = {"epochs", "checkpoint_every", "workers"}


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | os.PathLike, device: str = "auto", download: bool = False):
        self.cfg = cfg
        self.out = Path(out)
        self.world, self.rank = _distributed_setup(device)
        self.device = _rank_device(resolve_device(device), self.rank)
        if self.device.type == "cpu":
            keep_freed_memory()
        seed_everything(cfg.seed)
        self.data = load_dataset(cfg.dataset, "train", root=cfg.data_root, image_size=cfg.model.image_size,
                                 channels=cfg.model.nc, subset=cfg.subset, seed=cfg.seed,
                                 download=download and self.rank == 0)
        if len(self.data) < self.world:
            raise ConfigError(f"data set {cfg.dataset!r} has {len(self.data)} images, fewer than {self.world} processes")
        self.local_batch = max(1, cfg.batch_size // self.world)
        self.steps_per_epoch = max(1, len(self.data) // (self.local_batch * self.world))
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G = Generator(cfg.model).to(self.device, memory_format=fmt)
        self.D = Discriminator(cfg.model).to(self.device, memory_format=fmt)
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, 0.999), "foreach": True}  # foreach: same numbers, fewer kernels
        self.optG = torch.optim.Adam(self.G.parameters(), **adam)
        self.optD = torch.optim.Adam(self.D.parameters(), **adam)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1 + 7919 * self.rank)  # own fakes per rank
        self.fixed_z = sample_z(SAMPLE_GRID, cfg.model, torch.Generator().manual_seed(cfg.seed + 2))
        self.step = 0  # optimisation steps done in total
        self.loss = nn.BCEWithLogitsLoss()
        if self.world > 1:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = ddp(self.G, device_ids=ids)
            self.D_train = ddp(self.D, device_ids=ids)
        else:
            self.G_train, self.D_train = self.G, self.D
        self._images = getattr(self.data, "images", None)  # in-memory data sets: index on the device
        if self._images is not None:
            self._images = self._images.to(self.device)

    # ---- state ------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def state(self) -> dict:
        return {
            "train_config": self.cfg.to_dict(),
            "G": _cpu(self.G.state_dict()),
            "D": _cpu(self.D.state_dict()),
            "optG": self.optG.state_dict(),
            "optD": self.optD.state_dict(),
            "step": self.step,
            "noise_rng": _gather(self.noise.get_state(), self.world),
            "torch_rng": torch.get_rng_state(),
            "world_size": self.world,
        }

    def save(self) -> None:
        state = self.state()  # collective under DDP: every rank takes part
        if self.rank == 0:
            save_checkpoint(self.checkpoint_path, "training", self.cfg.model, **state)

    def resume(self) -> None:
        blob = read_checkpoint(self.checkpoint_path)
        if blob.get("kind") != "training":
            raise CheckpointError(f"{self.checkpoint_path} is not a training checkpoint")
        saved = TrainConfig.from_dict(blob["train_config"])
        changed = {k for k in self.cfg.to_dict() if self.cfg.to_dict()[k] != saved.to_dict()[k]}
        if changed - _RESUMABLE_CHANGES:
            diff = ", ".join(f"{k}: {saved.to_dict()[k]} -> {self.cfg.to_dict()[k]}" for k in sorted(changed - _RESUMABLE_CHANGES))
            raise ConfigError(f"cannot resume {self.checkpoint_path} with other settings ({diff})")
        if blob.get("world_size", 1) != self.world:
            raise ConfigError(f"{self.checkpoint_path} was written by {blob.get('world_size', 1)} processes, resuming with {self.world}")
        self.G.load_state_dict(blob["G"])
        self.D.load_state_dict(blob["D"])
        self.optG.load_state_dict(blob["optG"])
        self.optD.load_state_dict(blob["optD"])
        self.step = blob["step"]
        self.noise.set_state(blob["noise_rng"][self.rank])
        torch.set_rng_state(blob["torch_rng"])
        self._truncate_log()

    # ---- data -------------------------------------------------------------------------------
    def epoch_batches(self, epoch: int, skip: int):
        """This rank's batches of uint8 images for ``epoch``, the first ``skip`` left out.

        The order is a permutation drawn from (seed, epoch) alone, so a resumed run sees the same
        batches as an uninterrupted one. The last incomplete batch is dropped (constant batch-norm
        batch size).
        """
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(len(self.data), generator=g)
        per_step = self.local_batch * self.world
        index_batches = [
            perm[s * per_step: (s + 1) * per_step][self.rank::self.world]
            for s in range(skip, self.steps_per_epoch)
        ]
        if self._images is not None:
            for idx in index_batches:
                yield self._images[idx.to(self.device)]
            return
        loader = torch.utils.data.DataLoader(
            self.data, batch_sampler=[i.tolist() for i in index_batches], num_workers=self.cfg.workers,
            persistent_workers=False, pin_memory=self.device.type == "cuda")
        for x, _ in loader:
            yield x.to(self.device, non_blocking=True)

    # ---- the step ---------------------------------------------------------------------------
    def train_step(self, real_u8: torch.Tensor) -> dict[str, float]:
        fmt = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        real = (real_u8.float() / 127.5 - 1).contiguous(memory_format=fmt)
        n = real.shape[0]
        ones = torch.ones(n, device=self.device)
        zeros = torch.zeros(n, device=self.device)
        z = sample_z(n, self.cfg.model, self.noise, self.device)

        # (1) D: maximise log D(x) + log(1 - D(G(z)))
        self.optD.zero_grad(set_to_none=True)
        with autocast(self.device, self.cfg.precision):
            out_real = self.D_train(real)
            loss_real = self.loss(out_real.float(), ones)
        loss_real.backward()
        with autocast(self.device, self.cfg.precision):
            fake = self.G_train(z)
            out_fake = self.D_train(fake.detach())
            loss_fake = self.loss(out_fake.float(), zeros)
        loss_fake.backward()
        self.optD.step()

        # (2) G: maximise log D(G(z)) on the same fakes, D frozen
        self.optG.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        with autocast(self.device, self.cfg.precision):
            out_g = self.D(fake)  # the bare module: D's gradients are not wanted, so no all-reduce
            loss_g = self.loss(out_g.float(), ones)
        loss_g.backward()
        self.D.requires_grad_(True)
        self.optG.step()
        self.step += 1
        return {
            "loss_d": (loss_real + loss_fake).item(),
            "loss_g": loss_g.item(),
            "d_x": torch.sigmoid(out_real.float()).mean().item(),
            "d_g_z1": torch.sigmoid(out_fake.float()).mean().item(),
            "d_g_z2": torch.sigmoid(out_g.float()).mean().item(),
        }

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None) -> None:
        """Train to ``cfg.epochs`` (or stop after ``max_steps`` steps in total, checkpointed)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            _write_json(self.out / "config.json", self.cfg.to_dict())
        first_epoch = self.step // self.steps_per_epoch
        for epoch in range(first_epoch, self.cfg.epochs):
            skip = self.step - epoch * self.steps_per_epoch
            bar = tqdm(total=self.steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
                       unit="step", disable=self.rank != 0 or None, dynamic_ncols=True)
            tick = time.perf_counter()
            for real in self.epoch_batches(epoch, skip):
                t0 = time.perf_counter()
                stats = self.train_step(real)
                seconds = time.perf_counter() - t0
                self._log_row({"step": self.step, "epoch": epoch + 1, **stats, "seconds": round(seconds, 4)})
                bar.update(1)
                bar.set_postfix(loss_d=f"{stats['loss_d']:.3f}", loss_g=f"{stats['loss_g']:.3f}",
                                img_s=f"{self.cfg.batch_size / max(seconds, 1e-9):.0f}")
                stop = max_steps is not None and self.step >= max_steps
                if stop and self.step < (epoch + 1) * self.steps_per_epoch:
                    bar.close()
                    self.save()
                    return
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save()
            bar.close()
            self._end_epoch(epoch + 1, time.perf_counter() - tick, self.steps_per_epoch - skip)
            if max_steps is not None and self.step >= max_steps:
                return

    def _end_epoch(self, epoch: int, seconds: float, steps_run: int) -> None:
        self.save()
        if self.rank != 0:
            return
        meta = {"epoch": epoch, "step": self.step, "dataset": self.cfg.dataset, "seed": self.cfg.seed}
        export_models(self.out, self.cfg.model, self.G, self.D, meta=meta)
        export_models(self.out / "ckpt", self.cfg.model, self.G, self.D, prefix=f"epoch{epoch:03d}_", meta=meta)
        self.save_samples(self.out / "samples" / f"epoch{epoch:03d}.png")
        tqdm.write(f"epoch {epoch}: {seconds:.1f} s for {steps_run} steps, "
                   f"{steps_run * self.cfg.batch_size / seconds:.0f} img/s, "
                   f"samples in {self.out / 'samples'}")

    def save_samples(self, path: Path) -> None:
        save_grid(generate(self.G, self.fixed_z, batch_size=SAMPLE_GRID, device=self.device,
                           precision=self.cfg.precision), path)

    # ---- the per-step log -------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.out / "log.csv"

    def _log_row(self, row: dict) -> None:
        if self.rank != 0:
            return
        new = not self.log_path.exists()
        with open(self.log_path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            if new:
                w.writeheader()
            w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()})

    def _truncate_log(self) -> None:
        """Drop log rows of steps after the checkpoint: they are about to be redone."""
        if self.rank != 0 or not self.log_path.exists():
            return
        with open(self.log_path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.step]
        with atomic_path(self.log_path) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
            w.writeheader()
            w.writerows(rows)


def train(cfg: TrainConfig, out: str | os.PathLike, device: str = "auto", resume: bool = False,
          max_steps: int | None = None, download: bool = False) -> Trainer:
    """Train (or resume) a run in ``out``; returns the finished trainer."""
    trainer = Trainer(cfg, out, device, download=download)
    if trainer.checkpoint_path.exists():
        if not resume:
            raise ConfigError(f"{trainer.checkpoint_path} exists: pass --resume to continue it, or choose another --out")
        trainer.resume()
    try:
        trainer.fit(max_steps=max_steps)
    finally:
        if trainer.world > 1:
            dist.destroy_process_group()
    return trainer


def grid_image(images: torch.Tensor, nrow: int | None = None):
    """Images in [-1, 1] as one RGB PIL image: ``nrow`` tiles a row (default: a square), ``GRID_PAD``
    black pixels around and between them, pixels rounded as torchvision's ``save_image`` rounds them."""
    from PIL import Image
    from torchvision.utils import make_grid

    nrow = nrow or math.ceil(math.sqrt(len(images)))
    grid = make_grid(images.cpu() * 0.5 + 0.5, nrow=nrow, padding=GRID_PAD)
    return Image.fromarray(grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy())


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None) -> None:
    """Save images in [-1, 1] as one PNG grid (``grid_image``), atomically."""
    with atomic_path(path) as tmp:
        grid_image(images, nrow).save(tmp, format="PNG")


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _gather(obj, world: int) -> list:
    """Every rank's ``obj``, in rank order (a one-element list without DDP)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _distributed_setup(device: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0
    if not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_world_size(), dist.get_rank()


def _rank_device(device: torch.device, rank: int) -> torch.device:
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device
