"""The task base class, the TASKS registry and the RunContext a task works through.

A task is mostly data: a frozen ``Params`` dataclass whose defaults cite their source, a default
data set, and ``run(ctx, params) -> list[Measurement]`` (or a ``NextStep`` when the user has to act
before anything can be measured). Tasks never write result files: the runner (``bench.run``) adds
provenance and writes.

Checkpoints of every model family (``dcgan.models``) come through the same context. A task asks a
net what it holds (``num_classes``: 0 for an unconditional GAN; ``features_take_labels`` for a D)
and, in ``check``, says clearly when it does not apply (``NotApplicable``). A conditional G draws
class-balanced samples unless the task asks for classes (``RunContext.generate``), and a conditional
checkpoint is refused with a data set of another number of classes (``RunContext.net``). A G is
loaded as one of z (an SRGAN's, which upsamples images, is refused in one line); a D of every family
serves the feature tasks alike, its data loaded at its config's ``image_size``: the side its training
images were loaded at (an SRGAN's D learned on crops of them, and judges any size), so the probe sees
things at the scale D learned them.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from bench import shards
from bench.features import FeatureCache, FeatureJob, LayerSpec, reestimate_batchnorm
from bench.params import build
from bench.results import Measurement
from bench.shards import Data, DataRef, Net, options_key
from dcgan.checkpoint import epoch_checkpoints, fingerprint, load_net
from dcgan.config import ModelConfig
from dcgan.data import get_spec, resolved_spec
from dcgan.errors import ConfigError, DataError, NotApplicable
from dcgan.generate import default_labels, generate
from dcgan.models import build_net, check_classes
from dcgan.nets import FeatureTaps
from dcgan.params import Params
from dcgan.registry import Registry

TASKS: Registry[type["Task"]] = Registry("task")


@dataclass(frozen=True)
class Reference:
    """A published number a task's rows are compared with in reports: (data set, metric, value, source)."""

    dataset: str
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class Workload:
    """What one run costs, in the units ``bench evaluate`` measures this machine's speed in, for its
    estimate before it starts: images through the run's D (a backward pass counts as two forwards),
    images drawn from its G, images through Inception-v3, and the flops of dense linear algebra."""

    d_images: float = 0
    g_images: float = 0
    inception_images: float = 0
    flops: float = 0


@dataclass(frozen=True)
class NextStep:
    """What ``Task.run`` returns instead of measurements when the user has to act first (forget
    without boxes: draw them on the sheet it wrote). The run writes no rows and succeeds; the
    command line prints ``message``, which says what to do next."""

    message: str


class Task:
    """A benchmark: typed ``Params``, what it needs, and ``run(ctx, params) -> list[Measurement]``.

    Class attributes are the task's declarations, read by the runner, the CLI, the report and the tests:
    ``needs`` the checkpoint kind it measures, ``takes`` what that checkpoint's G must take (noise z, or a
    low-resolution image), ``default_dataset`` / ``default_split`` the data it reads
    when none is given (``default_split`` None: it takes no ``--split``), ``reads_data`` False for tasks
    of a checkpoint alone, ``takes_sources`` for tasks that compare two image sources (``--real`` /
    ``--fake``), ``recipes`` named measured settings of its parameters, ``references`` published numbers,
    ``report_params`` parameters that tell rows apart in reports (e.g. the labelled-set size), and
    ``smoke`` the parameters of a run on tiny data (the test suite runs every task with them).

    For ``bench evaluate`` and its report card: ``also_needs`` checkpoints read besides ``needs``
    (memorisation's feature space is a D), ``user_input`` what the user has to make before the task can
    measure (such tasks stay out of the default suites), ``section`` the part of the card its rows go to
    (representation, generation, learning, data), ``headline`` the metrics a leaderboard shows,
    ``pictures`` the files it writes with what to look for in each, and ``workload`` its cost.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""  # the paper's section the task reproduces
    needs: ClassVar[str | None] = None  # "discriminator", "generator" or None
    takes: ClassVar[str] = "z"  # what the checkpoint's G must take (dcgan.models.family.INPUTS): lr for SR tasks
    default_dataset: ClassVar[str | None] = None
    default_split: ClassVar[str | None] = None
    reads_data: ClassVar[bool] = True  # False: the task measures a checkpoint alone (its rows name no data set)
    takes_sources: ClassVar[bool] = False
    recipes: ClassVar[dict[str, dict[str, object]]] = {}
    references: ClassVar[tuple[Reference, ...]] = ()
    report_params: ClassVar[tuple[str, ...]] = ()
    smoke: ClassVar[dict[str, object]] = {}
    also_needs: ClassVar[tuple[str, ...]] = ()
    user_input: ClassVar[str] = ""
    section: ClassVar[str] = "other"
    headline: ClassVar[tuple[str, ...]] = ()
    pictures: ClassVar[dict[str, str]] = {}

    @dataclass(frozen=True)
    class Params(Params):
        pass

    def run(self, ctx: "RunContext", params) -> list[Measurement] | NextStep:
        raise NotImplementedError

    def check(self, ctx: "RunContext", params) -> None:
        """Refuse, before any work, a checkpoint the task does not apply to (``NotApplicable``, e.g. a
        conditional G where an unconditional one is needed) or parameters that do not fit it."""

    def reads(self, ctx: "RunContext", params) -> list[tuple[str, str, str | None]]:
        """(data set, split, root) of every split a run of this task reads, known before it runs: the run's
        id holds their content fingerprints, so a re-run on other files is another run. Default: the
        run's data set at its ``--split``."""
        return [(ctx.dataset, ctx.split_name, ctx.data_root)]

    @classmethod
    def workload(cls, params, sizes: dict[str, int]) -> Workload | None:
        """The cost of a run with ``params`` on splits of ``sizes`` images (None: no estimate)."""
        return None


class ConditionalTask(Task):
    """A task of a conditional generator's classes (``class-grid``, ``cas``, ``intra-fid``): its G must take
    class labels, and a data set it reads must be labelled (``RunContext.net`` refuses one of another
    number of classes). An unconditional G is ``NotApplicable``: refused in one line by ``bench run``,
    skipped with that note by ``bench evaluate``."""

    needs = "generator"

    def check(self, ctx: "RunContext", params) -> None:
        G, _ = ctx.net("generator")
        if not G.num_classes:
            raise NotApplicable(f"{ctx.ckpt} is an unconditional generator: {self.name} measures a conditional one "
                                "(trained with class labels, e.g. bench train --model cdcgan)")
        if self.reads_data:
            ctx.require_labels()


def make_params(task: type[Task], overrides: dict[str, object], recipe: str | None = None):
    """The task's Params: a recipe's values (if named), then ``key=value`` overrides, every field checked."""
    values: dict[str, object] = {}
    if recipe is not None:
        if recipe not in task.recipes:
            known = ", ".join(task.recipes) or "none"
            raise ConfigError(f"task {task.name!r} has no recipe {recipe!r}; recipes: {known}")
        values.update(task.recipes[recipe])
    values.update({k.replace("-", "_"): v for k, v in overrides.items()})
    return build(task.Params, f"task {task.name!r}", values)


@dataclass
class RunContext:
    """Everything a task may ask for; it loads and caches lazily. Tasks read it and never change it."""

    dataset: str
    data_root: str | None = None
    ckpt: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    subset: int | None = None
    batch_size: int = 256
    precision: str = "fp32"
    cache: FeatureCache = field(default_factory=FeatureCache)
    split_name: str | None = None  # --split, or the task's default_split
    real: str | None = None  # --real / --fake: the two image sources of a task that compares them
    fake: str | None = None
    # <results>/<task>/<run_id>: the folder of the files a run writes beside its rows (pictures, CSVs), set
    # by the runner; a re-run overwrites its own files as it replaces its own rows
    artifacts: Path | None = None
    takes: str = "z"  # what the checkpoints' G take (the task's ``takes``): others are refused on loading
    _nets: dict = field(default_factory=dict)
    _splits: dict = field(default_factory=dict)

    @property
    def ckpt_sha256(self) -> str:
        """The checkpoint's content hash; for a training run's folder, a hash of its generators' hashes."""
        if not self.ckpt:
            return ""
        if self.ckpt.is_dir():
            listing = "".join(f"{p.name}:{fingerprint(p)}\n" for _, p in epoch_checkpoints(self.ckpt))
            return hashlib.sha256(listing.encode()).hexdigest()
        return fingerprint(self.ckpt)

    def artifact(self, name: str) -> Path:
        """Where this run writes its file ``name`` (e.g. ``walk.png``): ``results/<task>/<run_id>/<name>``."""
        if self.artifacts is None:
            raise ConfigError("this run has no artifacts folder (tasks that write files run through bench.run)")
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return self.artifacts / name

    def net(self, kind: str, path: Path | None = None):
        """A checkpoint's G or D (each loaded once) and its config; ``path`` None: the run's --ckpt."""
        path = path or self.ckpt
        if path is None:
            raise ConfigError(f"this task needs a {kind} checkpoint: pass --ckpt")
        if (kind, path) not in self._nets:
            net, cfg, _ = load_net(path, kind, takes=self.takes)
            if self.dataset:
                check_classes(net.num_classes, self.dataset, self.num_classes(), f"checkpoint {path}")
            self._nets[kind, path] = (net.to(self.device), cfg)
        return self._nets[kind, path]

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None, **options):
        """``dcgan.generate.generate`` with the checkpoint's G, at the run's batch size, device and
        precision (``options``: its masks and layers); a conditional G draws ``labels``, by default
        class-balanced ones (``default_labels``)."""
        G, _ = self.net("generator")
        labels = default_labels(G, len(z)) if labels is None else labels
        return generate(G, z, batch_size=self.batch_size, device=self.device, precision=self.precision,
                        labels=labels, **options)

    def split(self, split: str, image_size: int, channels: int, **options):
        """One split of the run's data set, loaded once per run (labels, features and batch-norm
        re-estimation all ask for it) through a ``DataRef``, by which the other ranks of a torchrun job
        load it too; ``options``: ``load_dataset``'s selection of classes or attributes (a model family's
        ``data_options``, e.g. a translator's domains), or its ``data_cache``: by default ``auto``, so a
        file-backed set is decoded once for every pass and run over it (``dcgan.data.decoded``)."""
        options = {"data_cache": "auto", **options}
        ref = DataRef(self.dataset, split, self.data_root, image_size, channels, self.subset, self.seed,
                      options_key(options))
        if ref not in self._splits:
            self._splits[ref] = ref.load()
        return self._splits[ref]

    def num_classes(self) -> int | None:
        """The run's data set's number of classes (None: unlabelled), found in its files under the data root
        when the data set has no fixed count (``class-folders``)."""
        return resolved_spec(self.dataset, self.data_root).num_classes

    def require_labels(self) -> None:
        """A one-line error when the run's data set is unlabelled, found before any of its files is."""
        if get_spec(self.dataset).num_classes is None:
            raise DataError(f"data set {self.dataset!r} has no labels: this task needs a labelled data set")

    def labels(self, split: str, cfg: ModelConfig) -> np.ndarray:
        self.require_labels()
        return self.split(split, cfg.image_size, cfg.nc).labels.numpy()

    def features(self, model: str, split: str, spec: LayerSpec, d_ckpt: Path | None = None) -> np.ndarray:
        """Features of ``split`` for ``model`` (trained-d, random-d or raw-pixels), from the cache if there.

        ``d_ckpt``: the discriminator (None: the run's --ckpt). The cache key holds the checkpoint's
        content hash, the data set, the content fingerprint of the split's files (not where they are:
        other images or labels under the same root are other data), split, transform, spec, subset and
        seed, so any change in what determines the numbers extracts anew. A miss is extracted as a
        ``FeatureJob``, over the ranks of a torchrun job (``bench.shards``), straight into the cache file.
        """
        d_ckpt = d_ckpt or self.ckpt
        trained, cfg = self.net("discriminator", d_ckpt)
        data = self.split(split, cfg.image_size, cfg.nc)
        fields = dict(model=model,
                      ckpt=fingerprint(d_ckpt) if model == "trained-d" else cfg.to_dict(),
                      dataset=self.dataset, data=data.data_fingerprint, split=split, n=len(data),
                      transform=data.transform_id, spec=str(spec) if model != "raw-pixels" else "pixels",
                      subset=self.subset, seed=self.seed)
        dims = cfg.nc * cfg.image_size**2 if model == "raw-pixels" else spec.dims(trained)

        def extract(out: np.ndarray) -> None:  # on a cache miss alone: the D (and any batch-norm re-estimation)
            D = None if model == "raw-pixels" else Net("discriminator", self.discriminator(model, spec, d_ckpt))
            shards.run(FeatureJob(D, Data(data), len(data), spec, self.batch_size, self.precision), self.device,
                       into={"x": out})

        return self.cache.get_or_extract(fields, (len(data), dims), extract)

    def discriminator(self, model: str, spec: LayerSpec = LayerSpec(), d_ckpt: Path | None = None) -> FeatureTaps:
        """The checkpoint's D (trained-d) or one of its architecture freshly initialised from the run's
        seed (random-d), its batch-norm statistics re-estimated when ``spec`` says bn-train."""
        trained, cfg = self.net("discriminator", d_ckpt)
        if model == "trained-d":
            D = trained
        elif model == "random-d":
            torch.manual_seed(self.seed)
            D = build_net("discriminator", cfg).to(self.device).eval()
        else:
            raise ConfigError(f"unknown feature model {model!r}; expected trained-d, random-d or raw-pixels")
        if spec.bn == "train":
            D = _copy(D)
            reestimate_batchnorm(D, self.split("train", cfg.image_size, cfg.nc), self.device, self.batch_size,
                                 self.precision)
        return D


def _copy(D: FeatureTaps) -> FeatureTaps:
    clone = build_net("discriminator", D.cfg).to(next(D.parameters()).device)
    clone.load_state_dict(D.state_dict())
    return clone.eval()


def check_dataset(name: str) -> None:
    get_spec(name)  # unknown names fail here with a "did you mean"
