"""Generators whose class behaviour is known, for the class-aware tasks, and a way to give one to a run.

``Emitter`` draws real images of a data set's training split, the image picked by z: at its label
(``faithful``: a perfect conditional generator, as varied as the split), ignoring the label
(``label_blind``: the label carries nothing), ignoring z (``z_blind``: one image a class), or as an
unconditional generator (``unconditional``). ``serve`` hands such a net to runs as if it were read
from a checkpoint file: the tasks load generators by path.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dcgan.config import DCGANConfig
from dcgan.data import load_dataset

MODES = ("faithful", "label_blind", "z_blind", "unconditional")


class Emitter(nn.Module):
    """Real training images as a generator's output in [-1, 1]: image ``members[u mod count]`` where u is
    read off z's first entry and ``members`` the images of the label's class (of every class when
    the label is ignored). Its uint8 samples are exactly those images."""

    def __init__(self, dataset: str, mode: str, image_size: int = 32, nc: int = 1, num_classes: int = 10):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} not in {MODES}")
        data = load_dataset(dataset, "train", image_size=image_size, channels=nc)
        self.images, self.labels, self.mode = data.images, data.labels, mode
        self.num_classes = 0 if mode == "unconditional" else num_classes
        self.cfg = DCGANConfig(image_size=image_size, nc=nc, ngf=8, ndf=8)
        self.anchor = nn.Parameter(torch.zeros(1))  # a parameter: .to(device) and next(parameters()) work

    def forward_with_intermediates(self, z: torch.Tensor, names, masks=None, labels: torch.Tensor | None = None):
        if (labels is None) != (self.num_classes == 0):
            raise AssertionError("generate() must pass labels exactly to a conditional generator")
        u = torch.zeros(len(z), dtype=torch.int64) if self.mode == "z_blind" else \
            (z.flatten(1)[:, 0].abs().cpu() * 1e4).long()
        if self.mode in ("label_blind", "unconditional"):
            picked = u % len(self.labels)
        else:  # the (u mod count)-th image of each sample's class
            order = torch.argsort(self.labels, stable=True)
            counts = torch.bincount(self.labels, minlength=self.num_classes)
            starts = torch.cumsum(counts, 0) - counts
            y = labels.cpu()
            picked = order[starts[y] + u % counts[y]]
        return self.images[picked].float().to(z.device) / 127.5 - 1, {}


def serve(monkeypatch, nets: dict[Path, nn.Module]) -> None:
    """Runs that load a generator from one of ``nets``' paths get that net (each path gets a small
    file of its own, so it has a content fingerprint); every other path loads as usual."""
    import bench.evaluate
    import bench.subject
    import bench.tasks.base
    import bench.tasks.cas
    import bench.tasks.fid
    from dcgan.checkpoint import load_net

    for i, path in enumerate(nets):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"served net {i}: {type(nets[path]).__name__} {getattr(nets[path], 'mode', '')}".encode())

    def load(path, kind, **options):
        found = nets.get(Path(path))
        if found is None:
            return load_net(path, kind, **options)
        assert kind == "generator", f"{path} serves a generator, asked for a {kind}"
        return found.eval(), found.cfg, {}

    for module in (bench.tasks.base, bench.tasks.cas, bench.tasks.fid, bench.subject, bench.evaluate):
        monkeypatch.setattr(module, "load_net", load)
