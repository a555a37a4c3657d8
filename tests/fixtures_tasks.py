"""Small real data for the benchmark tasks: scikit-learn's handwritten digits written in each data
set's own on-disk format, tiny checkpoints saved through the real export path, and a tiny generator
whose samples differ from z to z."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch
import torch.nn.functional as F
from torch import nn
from sklearn.datasets import load_digits

from dcgan.checkpoint import export_models
from dcgan.config import DCGANConfig
from dcgan.models import build_net
from dcgan.nets import Generator
from fixtures_data import write_idx, write_pickled_batch

PER_CLASS = {"train": 40, "test": 12}


def digits_images(side: int, per_class: dict[str, int] = PER_CLASS,
                  first: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per split, (N×side×side uint8 grey digits, labels): disjoint rows of load_digits, class-balanced,
    after the ``first`` of each class (another ``first`` gives other digits, as many)."""
    d = load_digits()
    images = torch.from_numpy(d.images[:, None] * (255 / 16)).float()
    images = F.interpolate(images, size=side, mode="bilinear", align_corners=False)
    images = images.round().clamp(0, 255).to(torch.uint8)[:, 0].numpy()
    out, start = {}, {c: first for c in range(10)}
    for split, n in per_class.items():
        rows = []
        for c in range(10):
            members = np.flatnonzero(d.target == c)
            rows += list(members[start[c]: start[c] + n])
            start[c] += n
        rows = np.array(sorted(rows))
        out[split] = (images[rows], d.target[rows])
    return out


def write_digits_as(dataset: str, root: Path, first: int = 0) -> Path:
    """Write the digits (those after the ``first`` of each class) in ``dataset``'s format under ``root``;
    returns the --data-root to use."""
    if dataset in ("mnist", "fashion-mnist"):
        raw = root / ("MNIST" if dataset == "mnist" else "FashionMNIST") / "raw"
        for split, prefix in (("train", "train"), ("test", "t10k")):
            x, y = digits_images(28, first=first)[split]
            write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    elif dataset == "cifar10":
        data = digits_images(32, first=first)
        batches = root / "cifar-10-batches-py"
        parts = [(f"data_batch_{b + 1}", "train", b) for b in range(5)] + [("test_batch", "test", 0)]
        for name, split, b in parts:
            x, y = data[split]
            rows = slice(b, None, 5) if split == "train" else slice(None)  # five training batches
            items = [(int(lab), None, None) for lab in y[rows]]
            write_pickled_batch(batches / name, items, 32, bytes_keys=True, rows=np.repeat(x[rows, None], 3, 1))
    elif dataset == "svhn":
        root.mkdir(parents=True, exist_ok=True)
        for split, (x, y) in digits_images(32, first=first).items():
            X = np.repeat(x[..., None], 3, -1).transpose(1, 2, 3, 0)  # 32×32×3×N
            scipy.io.savemat(root / f"{split}_32x32.mat", {"X": X, "y": np.where(y == 0, 10, y)[:, None]})
    elif dataset == "digits":
        pass
    else:
        raise ValueError(f"no digits fixture for {dataset!r}")
    return root


def tiny_checkpoints(out: Path, image_size: int = 32, nc: int = 1, seed: int = 0,
                     config: DCGANConfig | None = None) -> tuple[Path, Path]:
    """A random-init G and D (ngf = ndf = 8; or of ``config``, a model of any family) exported through the
    real ``export_models``."""
    cfg = config or DCGANConfig(image_size=image_size, nc=nc, ngf=8, ndf=8)
    torch.manual_seed(seed)
    return export_models(out, cfg, build_net("generator", cfg), build_net("discriminator", cfg))


def varied_generator(image_size: int = 32, nc: int = 1) -> Generator:
    """A tiny G (ngf 8), in eval mode, whose images differ from z to z. A freshly initialised G
    (tiny_checkpoints) draws the same flat grey for every z in eval mode (its unit running variances
    shrink activations to ~1e-4), so no picture test could tell one z from another: here batch
    norm's statistics are those of one batch of its own activations and the output layer is 5x stronger."""
    cfg = DCGANConfig(image_size=image_size, nc=nc, ngf=8, ndf=8)
    torch.manual_seed(0)
    G = Generator(cfg)
    for m in G.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # running statistics = the batch's
    with torch.no_grad():
        G.train()(torch.randn(256, cfg.nz, 1, 1))
        G.main[-2].weight.mul_(5)
    return G.eval()
