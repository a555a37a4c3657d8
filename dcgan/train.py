"""The training loop: the paper's recipe, resumable, deterministic on CPU, DDP under torchrun.

The loop is the same for every model family (``dcgan.models``): the family of the config makes the
nets, makes each step's arguments from a batch of images (a conditional GAN's come with their classes,
SRGAN's are low- and high-resolution crops), does the step, names the numbers logged and draws the
sample grid. A run may start G from another run's export (``init``: SRGAN's second stage starts from
its first). Pretrained nets a family's step uses without training them (SRGAN's content-loss network,
``Family.frozen``) are built once per trainer, frozen, and never saved. The DCGAN step is pytorch/examples' dcgan: D on a real batch (label 1) and on G(z) (label 0),
then G against D on the same fakes (label 1), Adam(2e-4, beta1 0.5) for both. Two things differ and
neither changes the numbers:
- D's parameters are frozen (``requires_grad_(False)``) during G's step, so the weight gradients
  that pytorch/examples computes there and throws away at the next ``zero_grad`` are never computed;
- real images stay uint8 until they reach the device.

A run folder (``dcgan.runfolder``, which also says how its files stay in line with the checkpoint)
holds:
  checkpoint.pt     the full training state (latest), written atomically every N steps and per epoch
  g.pt, d.pt        standalone exports of the latest epoch
  ckpt/epochNNN_{g,d}.pt  exports after every epoch (FID vs training step, features vs epoch)
  samples/epochNNN.png    a grid from a fixed z (a conditional GAN's: one row per class; SRGAN's: fixed
                          low-resolution inputs, bicubic | G | the original)
  log.csv           one row per step: losses, D(x), D(G(z)), seconds (the family's numbers)
  config.json       the training settings

Resume recomputes the epoch's data order from (seed, epoch) and skips the batches already done,
and restores the noise generator (which a family's other random draws, SRGAN's crops, come from too):
"2 epochs straight" and "1 epoch, kill, resume" end in the same weights, and the same files.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn
from tqdm.auto import tqdm

from dcgan.checkpoint import fingerprint, load_net, model_exports, read_checkpoint, save_checkpoint
from dcgan.config import DCGANConfig, ModelConfig, known_keys
from dcgan.data import DecodedImageDataset, load_dataset
from dcgan.data.decoded import DATA_CACHE_MODES
from dcgan.device import PRECISIONS, keep_freed_memory, rank_device, resolve_device, seed_everything
from dcgan.distributed import gather_objects, join_process_group
from dcgan.errors import CheckpointError, ConfigError, one_line
from dcgan.fsutil import atomic_path, writable_folder
from dcgan.grids import grid_image
from dcgan.models import build_net, config_from_dict, family_of
from dcgan.params import Params, param
from dcgan.runfolder import RunFolder



@dataclass(frozen=True)
class TrainConfig(Params):
    """Training settings; the defaults are the paper's recipe (section 4), Adam's those of the model
    family's paper (``Family.adam``). The batch size is also checked against the data set once it is
    loaded (``Trainer``): at most its number of images."""

    model: ModelConfig = param(default_factory=DCGANConfig, help="the networks: a config of a model family")
    dataset: str = param("digits", "a registered data set")
    data_root: str | None = param(None, "the folder holding the data set's files")
    subset: int | None = param(None, "train on this many images drawn with the seed", low=1)
    epochs: int = param(25, "passes over the training images", low=1)
    batch_size: int = param(128, "images per step, over all processes (paper: mini-batch SGD with batch 128)",
                            low=1)
    lr: float | None = param(None, "Adam's learning rate; none: the model family's paper's (DCGAN: 0.0002, "
                                   "SRGAN: 0.0001)", low=0, low_open=True)
    beta1: float | None = param(None, "Adam's beta1; none: the model family's paper's (DCGAN: 0.5, 0.9 "
                                      "oscillated; SRGAN: 0.9)", low=0, high=1, high_open=True)
    seed: int = param(0, "seeds the weights, the data order, the noise and the subset (numpy's range)",
                      low=0, high=2**32 - 1)
    precision: Literal[PRECISIONS] = param("fp32", "fp32, or bf16 autocast")
    channels_last: bool = param(True, "channels-last memory format: the same numbers, faster on CPUs")
    checkpoint_every: int = param(500, "steps between training checkpoints; also at every epoch end", low=1)
    workers: int = param(2, "processes decoding a file-backed data set: once into the data cache, or per item "
                            "every epoch (data_cache off or over its budget)", low=0)
    data_cache: Literal[DATA_CACHE_MODES] = param(
        "auto", "on: a file-backed data set is decoded once into the cache folder and memory-mapped; off: decoded per "
                "item every epoch; auto: on when the decoded array is at most half the memory available and leaves "
                "1 GiB free on the cache folder's disk, else off")
    init: str | None = param(None, "a generator export (g.pt) G starts from instead of random weights, checked "
                                   "by the model family (SRGAN: its gan stage starts from an srresnet run)")

    def __post_init__(self) -> None:
        if isinstance(self.model, ModelConfig):  # else the check below names the bad model
            lr, beta1 = family_of(self.model).adam
            object.__setattr__(self, "lr", lr if self.lr is None else self.lr)
            object.__setattr__(self, "beta1", beta1 if self.beta1 is None else self.beta1)
        super().__post_init__()
        if self.subset is not None and self.batch_size > self.subset:
            raise ConfigError(f"parameter batch_size={self.batch_size}: expected at most subset={self.subset}, "
                              "the number of training images")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(known_keys(cls, d, "training config"))
        if "model" in d:
            d["model"] = config_from_dict(d["model"])
        return cls(**d)


# Settings that may change between a run and its resumption without changing what was learnt.
_RESUMABLE_CHANGES = {"epochs", "checkpoint_every", "workers", "data_cache"}  # data_cache: the same pixels


class Trainer:
    def __init__(self, cfg: TrainConfig, out: str | os.PathLike, device: str = "auto", download: bool = False):
        self.cfg = cfg
        self.out = Path(out)
        self.family = family_of(cfg.model)
        self.folder = RunFolder(out, ("step", "epoch", *self.family.stats(cfg.model), "seconds"))
        self.world, self.rank = join_process_group(device)
        self.device = rank_device(resolve_device(device), self.rank)
        if self.device.type == "cpu":
            keep_freed_memory()
        seed_everything(cfg.seed)
        self.data = load_dataset(cfg.dataset, "train", root=cfg.data_root, image_size=cfg.model.image_size,
                                 channels=cfg.model.nc, subset=cfg.subset, seed=cfg.seed,
                                 download=download and self.rank == 0, data_cache=cfg.data_cache,
                                 decode_workers=cfg.workers, **self.family.data_options(cfg.model))
        self.family.check_data(cfg.model, self.data)
        self._check_batches()
        self.local_batch = cfg.batch_size // self.world
        self.steps_per_epoch = len(self.data) // cfg.batch_size
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.G = build_net("generator", cfg.model).to(self.device, memory_format=fmt)
        self.D = build_net("discriminator", cfg.model).to(self.device, memory_format=fmt)
        self.init_sha256 = None  # the content hash of the G export the run started from (TrainConfig.init)
        if cfg.init is not None and not self.folder.checkpoint.exists():  # a resumed G is in the checkpoint
            self._start_from(cfg.init)
        self.frozen = {name: net.requires_grad_(False).eval().to(self.device, memory_format=fmt)
                       for name, net in self.family.frozen(cfg.model).items()}  # never in a checkpoint
        adam = {"lr": cfg.lr, "betas": (cfg.beta1, 0.999), "foreach": True}  # foreach: same numbers, fewer kernels
        self.optG = torch.optim.Adam(self.G.parameters(), **adam)
        self.optD = torch.optim.Adam(self.D.parameters(), **adam)
        self.noise = torch.Generator().manual_seed(cfg.seed + 1 + 7919 * self.rank)  # own fakes per rank
        self.step = 0  # optimisation steps done in total
        self.loss = nn.BCEWithLogitsLoss()
        if self.world > 1:
            ddp = torch.nn.parallel.DistributedDataParallel
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G_train = ddp(self.G, device_ids=ids)
            self.D_train = ddp(self.D, device_ids=ids)
        else:
            self.G_train, self.D_train = self.G, self.D
        self._images = getattr(self.data, "images", None)  # in-memory data sets: indexed in this process
        if self._images is not None:  # on the device; a decoded set stays mapped in host memory
            home = torch.device("cpu") if isinstance(self.data, DecodedImageDataset) else self.device
            self._images = self._images.to(home)
            self._labels = self.data.labels.to(home) if self.family.uses_labels else None

    def _check_batches(self) -> None:
        """Every step trains on ``batch_size`` images, as asked and as logged: the batch must fit in the
        data set and split evenly over the processes (the last incomplete batch of an epoch is dropped)."""
        n, cfg = len(self.data), self.cfg
        if cfg.subset is not None and cfg.subset > n:
            raise ConfigError(f"parameter subset={cfg.subset}: expected at most {n}, the training images of "
                              f"data set {cfg.dataset!r}")
        if cfg.batch_size > n:
            raise ConfigError(f"parameter batch_size={cfg.batch_size}: expected at most {n}, the training images "
                              f"of data set {cfg.dataset!r}")
        if cfg.batch_size % self.world:
            raise ConfigError(f"parameter batch_size={cfg.batch_size}: expected a multiple of the {self.world} "
                              "processes (it is the batch over all of them)")

    def _start_from(self, path: str) -> None:
        """G's weights from the generator export at ``path``, which the family checks fits this run; every
        rank reads the same file, so the processes start equal. A run being resumed never reads it again."""
        G, init, _ = load_net(path, "generator", takes=self.family.generator_input)
        self.family.check_init(self.cfg.model, init, path)
        self.G.load_state_dict(G.state_dict())
        self.init_sha256 = fingerprint(path)

    # ---- state ------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.folder.checkpoint

    def state(self) -> dict:
        return {
            "train_config": self.cfg.to_dict(),
            "G": _cpu(self.G.state_dict()),
            "D": _cpu(self.D.state_dict()),
            "optG": self.optG.state_dict(),
            "optD": self.optD.state_dict(),
            "step": self.step,
            "noise_rng": gather_objects(self.noise.get_state(), self.world),
            "torch_rng": torch.get_rng_state(),
            "world_size": self.world,
            "init_sha256": self.init_sha256,
        }

    def save(self) -> None:
        state = self.state()  # collective under DDP: every rank takes part
        if self.rank == 0:
            save_checkpoint(self.checkpoint_path, "training", self.cfg.model, **state)

    def resume(self) -> None:
        path = self.checkpoint_path
        blob = read_checkpoint(path)
        if blob.get("kind") != "training":
            raise CheckpointError(f"{path} is not a training checkpoint")
        try:
            saved = TrainConfig.from_dict(blob["train_config"])
        except ConfigError as e:
            raise CheckpointError(f"checkpoint {path}: {e}") from None
        changed = {k for k in self.cfg.to_dict() if self.cfg.to_dict()[k] != saved.to_dict()[k]}
        if changed - _RESUMABLE_CHANGES:
            diff = ", ".join(f"{k}: {saved.to_dict()[k]} -> {self.cfg.to_dict()[k]}" for k in sorted(changed - _RESUMABLE_CHANGES))
            raise ConfigError(f"cannot resume {path} with other settings ({diff})")
        if saved.epochs != self.cfg.epochs and self._rates(saved.epochs) != self._rates(self.cfg.epochs):
            raise ConfigError(f"cannot resume {path} with epochs {saved.epochs} -> {self.cfg.epochs}: this model's "
                              "learning rate follows the run's length (its schedule would change under the steps "
                              f"already taken); resume with --epochs {saved.epochs}")
        if blob.get("world_size", 1) != self.world:
            raise ConfigError(f"{path} was written by {blob.get('world_size', 1)} processes, resuming with {self.world}")
        try:
            self.G.load_state_dict(blob["G"])
            self.D.load_state_dict(blob["D"])
            self.optG.load_state_dict(blob["optG"])
            self.optD.load_state_dict(blob["optD"])
            self.noise.set_state(blob["noise_rng"][self.rank])
            torch.set_rng_state(blob["torch_rng"])
        except (RuntimeError, ValueError, KeyError, IndexError, TypeError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit its own settings ({one_line(e)[:160]})") from None
        self.step = blob["step"]
        self.init_sha256 = blob.get("init_sha256")

    def _rates(self, epochs: int) -> list[float]:
        """The learning rate of every step of a run of ``epochs`` epochs, over the longer of it and this run."""
        total = epochs * self.steps_per_epoch
        steps = max(epochs, self.cfg.epochs) * self.steps_per_epoch
        return [self.family.learning_rate(self.cfg.model, self.cfg.lr, s, total) for s in range(steps)]

    # ---- data -------------------------------------------------------------------------------
    def epoch_batches(self, epoch: int, skip: int):
        """This rank's batches for ``epoch``, the first ``skip`` left out: each the arguments of
        ``train_step``, which the family makes from uint8 images and their classes (``Family.batch``).

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
        labelled = self.family.uses_labels
        if self._images is not None:
            for idx in index_batches:
                idx = idx.to(self._images.device)
                x = self._images[idx].to(self.device, non_blocking=True)
                yield self.family.batch(self, x, self._labels[idx].to(self.device) if labelled else None)
            return
        loader = torch.utils.data.DataLoader(
            self.data, batch_sampler=[i.tolist() for i in index_batches], num_workers=self.cfg.workers,
            persistent_workers=False, pin_memory=self.device.type == "cuda")
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            yield self.family.batch(self, x, y.to(self.device, non_blocking=True) if labelled else None)

    # ---- the step ---------------------------------------------------------------------------
    def train_step(self, *batch: torch.Tensor) -> dict[str, float]:
        """One step of the family's training (``Family.step``) on a batch of ``epoch_batches``, at the
        family's learning rate for this step (``Family.learning_rate``)."""
        lr = self.family.learning_rate(self.cfg.model, self.cfg.lr, self.step, self.cfg.epochs * self.steps_per_epoch)
        for group in (*self.optG.param_groups, *self.optD.param_groups):
            group["lr"] = lr
        return self.family.step(self, *batch)

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None) -> None:
        """Train to ``cfg.epochs`` (or stop after ``max_steps`` steps in total, checkpointed).

        First the folder is brought in line with the state (``dcgan.runfolder``): the log is cut to
        the state's step and, at an epoch end, that epoch's exports are repaired.
        """
        if self.rank == 0:
            self._align_folder()
        if max_steps is not None and self.step >= max_steps:
            return
        first_epoch = self.step // self.steps_per_epoch
        for epoch in range(first_epoch, self.cfg.epochs):
            skip = self.step - epoch * self.steps_per_epoch
            bar = tqdm(total=self.steps_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
                       unit="step", disable=self.rank != 0 or None, dynamic_ncols=True)
            tick = time.perf_counter()
            for batch in self.epoch_batches(epoch, skip):
                t0 = time.perf_counter()
                stats = self.train_step(*batch)
                seconds = time.perf_counter() - t0
                self._log_row({"step": self.step, "epoch": epoch + 1, **stats, "seconds": round(seconds, 4)})
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(stats.items())[:2]},
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
        self.write_exports()
        tqdm.write(f"epoch {epoch}: {seconds:.1f} s for {steps_run} steps, "
                   f"{steps_run * self.cfg.batch_size / seconds:.0f} img/s, "
                   f"samples in {self.folder.samples}")

    def write_exports(self) -> list[Path]:
        """Write the exports of the epoch the state ends (its step must be an epoch end) that are
        missing or hold anything else; returns the paths written. Everything in them comes from the
        state a checkpoint holds (weights, step, settings), so they can be rewritten from it exactly."""
        epoch, into = divmod(self.step, self.steps_per_epoch)
        assert into == 0 and epoch > 0, f"step {self.step} does not end an epoch"
        meta = {"epoch": epoch, "step": self.step, "dataset": self.cfg.dataset, "seed": self.cfg.seed}
        if self.cfg.init is not None:  # where G started, by path and content (the SRGAN sr task's SRResNet baseline)
            meta.update(init=self.cfg.init, init_sha256=self.init_sha256)
        g, d = model_exports(self.cfg.model, self.G, self.D, meta)
        grid = grid_image(*self.family.epoch_grid(self))
        return self.folder.write_exports(epoch, g, d if self.family.trains_discriminator(self.cfg.model) else None,
                                         grid)

    def _align_folder(self) -> None:
        writable_folder(self.out, "run folder")
        self.folder.remove_orphaned_temps()
        _write_json(self.folder.config, self.cfg.to_dict())
        self.folder.rewrite_log(self.step)
        if self.step and self.step % self.steps_per_epoch == 0:
            repaired = self.write_exports()
            if repaired:
                tqdm.write(f"repaired from {self.checkpoint_path}: {', '.join(str(p) for p in repaired)}")

    def summary(self) -> str:
        """One line on what the run folder holds now, naming only files that exist and hold this state."""
        epoch, into = divmod(self.step, self.steps_per_epoch)
        log = f"log {self.log_path}"
        if into:
            return (f"stopped at step {self.step}, {into} of {self.steps_per_epoch} steps into epoch {epoch + 1}: "
                    f"training state in {self.checkpoint_path} (continue with --resume); {log}")
        exports = self.folder.exports(epoch)
        head = (f"done: {self.step} steps" if epoch >= self.cfg.epochs else
                f"stopped after epoch {epoch} of {self.cfg.epochs} ({self.step} steps; continue with --resume)")
        nets = (f"checkpoints {exports['g']}, {exports['d']}" if self.family.trains_discriminator(self.cfg.model)
                else f"checkpoint {exports['g']}")
        return f"{head}; {nets}; samples in {self.folder.samples}; {log}"

    # ---- the per-step log -------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.folder.log

    def _log_row(self, row: dict) -> None:
        if self.rank == 0:
            self.folder.append_log(row)


def train(cfg: TrainConfig, out: str | os.PathLike, device: str = "auto", resume: bool = False,
          max_steps: int | None = None, download: bool = False) -> Trainer:
    """Train (or resume) a run in ``out``; returns the finished trainer.

    A run folder holding a checkpoint is continued only with ``resume``. ``resume`` on a folder without
    one warns and starts a new run rather than refusing: a preemptible job relaunches one command
    line, --resume included, and its first launch has nothing to resume yet.
    """
    if max_steps is not None and (type(max_steps) is not int or max_steps < 1):
        raise ConfigError(f"max_steps={max_steps!r}: expected an integer >= 1")
    folder = RunFolder(writable_folder(out, "run folder"))
    found = folder.checkpoint.exists()
    if found and not resume:
        raise ConfigError(f"{folder.checkpoint} exists: pass --resume to continue it, or choose another --out")
    trainer = Trainer(cfg, out, device, download=download)
    if found:
        trainer.resume()
    elif resume and trainer.rank == 0:
        warnings.warn(f"--resume: no checkpoint in {out}, starting a new run there", stacklevel=2)
    try:
        trainer.fit(max_steps=max_steps)
        if trainer.world > 1:  # no rank tears gloo down while another still writes or waits: that aborts it
            dist.barrier()
    finally:
        if trainer.world > 1:
            dist.destroy_process_group()
    return trainer


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _write_json(path: Path, obj: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
