"""The fixed classifier of the Classification Accuracy Score (``cas``) and of ``translation``'s domains: one
small CNN, one recipe, one seed.

CAS (Ravuri & Vinyals 2019) trains a classifier on a model's samples and tests it on real images; the
``translation`` task trains one on the real training images of a translator's domains and asks it whether a
translated image is of its target domain (the StarGAN paper's classification-error protocol). Either number
means something only beside the same classifier's accuracy on real images, so the network and its training
are fixed here; the tasks expose only the recipe's few constants (``ClassifierParams``: epochs, rate, batch,
width), which every training set of a run shares.

The recipe (docs/tasks/cas.md):

- the net: three blocks of 3x3 convolution -> batch norm -> ReLU, of ``width``, 2 ``width`` and
  4 ``width`` channels, the first two followed by 2x2 max pooling; global average pooling; one
  linear layer to the classes. A few hundred thousand weights at width 32: a fraction of the
  ResNet-56 Ravuri & Vinyals trained on CIFAR-10, so CAS fits a CPU budget.
- its input: the uint8 images scaled to [-1, 1], as the discriminator sees them; no augmentation.
- its training: PyTorch's default initialisation and the minibatch order drawn from ``seed`` (one
  ``torch.Generator``, the process's random state untouched), Adam (Kingma & Ba's defaults but the
  rate) from ``lr`` annealed to 0 along a cosine over every step (Loshchilov & Hutter 2017, without
  restarts), cross-entropy (binary cross-entropy with one logit per attribute for 0/1 attribute labels,
  ``multi_label``), ``epochs`` passes of minibatches of ``batch_size``, the last partial batch kept;
  no weight decay, no early stopping: the test split is only ever scored once. At a constant rate the
  test accuracy of the last epoch swung by 20 points from one epoch to the next on Fashion-MNIST
  (docs/experiments/cas-recipe.md); the annealed rate ends where the loss settles.

A classifier trained on real images alone is a function of those images and the recipe: ``classifier_for``
keeps it in the cache folder (``classifiers/``), keyed by the images' content fingerprint, the recipe, the
seed and ``CLASSIFIER_VERSION``, so the evaluation of many checkpoints on one data set trains it once.
"""
from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from dcgan.errors import ConfigError
from dcgan.fsutil import atomic_path, cache_dir, mark_used
from dcgan.params import Params, param

CLASSIFIER_VERSION = 1  # bump when training would give other weights for the same key fields


@dataclass(frozen=True)
class ClassifierParams(Params):
    """The recipe's constants, parameters of every task that trains the classifier (``cas``, ``translation``)."""

    epochs: int = param(30, "the classifier's passes over each training set (docs/experiments/cgan.md: 10 left "
                            "CIFAR-10's real ceiling 6.6 points short of 30)", low=1)
    lr: float = param(1e-3, "the classifier's Adam learning rate (Kingma & Ba 2015's default)", low=0, low_open=True)
    batch_size: int = param(128, "images in a minibatch of the classifier's training", low=1)
    width: int = param(32, "channels of the classifier's first block (then twice, four times as many)", low=1)

    def recipe(self) -> str:
        """The ``features`` column: the classifier and its recipe (rows of other recipes never average together)."""
        return (f"small-cnn w{self.width}, adam lr {self.lr:g} cosine, {self.epochs} epochs, "
                f"batches of {self.batch_size}")

    def options(self) -> dict:
        """``train_classifier``'s keyword arguments for this recipe."""
        return dict(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, width=self.width)


class SmallCNN(nn.Module):
    """uint8 images (N, nc, S, S) of any S >= 4 -> class logits (N, num_classes), or one logit per attribute
    (``multi_label``)."""

    def __init__(self, nc: int, num_classes: int, width: int, multi_label: bool = False):
        super().__init__()
        self.multi_label = multi_label
        layers: list[nn.Module] = []
        channels = [nc, width, 2 * width, 4 * width]
        for i in range(3):
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3, padding=1, bias=False),
                       nn.BatchNorm2d(channels[i + 1]), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(2))  # (width) x S/2 x S/2, then (2 width) x S/4 x S/4
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1
        return self.head(self.features(x).mean((2, 3)))


def forward_flops(nc: int, size: int, width: int) -> float:
    """Multiply-adds x 2 of one image through ``SmallCNN``'s convolutions (the rest is negligible)."""
    channels, side, total = [nc, width, 2 * width, 4 * width], size, 0
    for i in range(3):
        total += 2 * 9 * channels[i] * channels[i + 1] * side * side
        side //= 2 if i < 2 else 1
    return float(total)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int, lr: float,
                     batch_size: int, width: int, seed: int, device: torch.device) -> SmallCNN:
    """``SmallCNN`` trained by the recipe on uint8 ``images`` (N, nc, S, S) with int64 ``labels``: a class
    each (N,), cross-entropy; or 0/1 attribute rows (N, num_classes), binary cross-entropy with one logit per
    attribute (``multi_label``). Eval mode."""
    multi_label = labels.dim() == 2
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the default initialisation, drawn from the seed
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))
        net = SmallCNN(images.shape[1], num_classes, width, multi_label)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    loss = nn.BCEWithLogitsLoss() if multi_label else nn.CrossEntropyLoss()
    targets = labels.float() if multi_label else labels
    for _ in tqdm(range(epochs), desc="domain/class classifier", unit="epoch", disable=None, leave=False):
        for batch in torch.randperm(len(images), generator=g).split(batch_size):
            x, y = images[batch].to(device), targets[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss(net(x), y).backward()
            optimizer.step()
            schedule.step()
    return net.eval()


def images_of(data) -> torch.Tensor:
    """Every image of a data set as one uint8 tensor (N, C, S, S), in its order: a training or test set."""
    loader = torch.utils.data.DataLoader(data, batch_size=1024, shuffle=False, num_workers=0)
    return torch.cat([x for x, _ in loader])


@torch.no_grad()
def predict(net: SmallCNN, images: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """The predicted class of each uint8 image (N,), or its 0/1 attributes (N, K) for a ``multi_label`` net
    (a positive logit: present), int64 on the CPU."""
    def decide(logits: torch.Tensor) -> torch.Tensor:
        return (logits > 0).long() if net.multi_label else logits.argmax(1)

    return torch.cat([decide(net(x.to(device))).cpu() for x in images.split(batch_size)])


def accuracies(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, list[float]]:
    """(overall accuracy, accuracy on each class's images; NaN for a class with none)."""
    right = predicted == labels
    per_class = [float(right[labels == c].float().mean()) if (labels == c).any() else float("nan")
                 for c in range(num_classes)]
    return float(right.float().mean()), per_class


def classifier_path(data_fingerprint: str, num_classes: int, multi_label: bool, recipe: ClassifierParams,
                    seed: int) -> Path:
    """Where the classifier trained on the images of content fingerprint ``data_fingerprint`` (an
    ``ImageDataset.fingerprint()``: files, subset, transform and class selection) by ``recipe`` from ``seed``
    lives in the cache folder."""
    key = json.dumps({"data": data_fingerprint, "classes": num_classes, "multi_label": multi_label,
                      "recipe": recipe.options(), "seed": seed, "version": CLASSIFIER_VERSION}, sort_keys=True)
    return cache_dir() / "classifiers" / f"cnn-{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"


def classifier_for(data, images: torch.Tensor, labels: torch.Tensor, num_classes: int, recipe: ClassifierParams,
                   seed: int, device: torch.device) -> tuple[SmallCNN, dict]:
    """The classifier trained by ``recipe`` from ``seed`` on ``images`` and ``labels``, all of data set ``data``
    (whose ``fingerprint()`` keys the cache): read from the cache folder, else trained and written there
    atomically. Returns it (eval mode, on ``device``) and where it came from (``classifier``: the file,
    ``classifier_source``: cached or trained)."""
    multi_label = labels.dim() == 2
    path = classifier_path(data.fingerprint(), num_classes, multi_label, recipe, seed)
    if path.is_file():
        net = _load(path, images.shape[1], num_classes, recipe.width, multi_label)
        mark_used(path)
        return net.to(device).eval(), {"classifier": str(path), "classifier_source": "cached"}
    net = train_classifier(images, labels, num_classes, seed=seed, device=device, **recipe.options())
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
    return net, {"classifier": str(path), "classifier_source": "trained"}


def _load(path: Path, nc: int, num_classes: int, width: int, multi_label: bool) -> SmallCNN:
    """A cached classifier's weights (tensors only: ``weights_only``), refused in one line when unreadable."""
    net = SmallCNN(nc, num_classes, width, multi_label)
    try:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{path}: not a classifier of this recipe ({reason}); remove the file to train it "
                          "again") from e
    return net
