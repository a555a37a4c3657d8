"""The one way images are drawn from a generator.

Training's epoch grids, ``bench sample``, the latent-space tasks, forget, memorisation and the
generated side of the FID all sample through ``generate``, so a z gives the same image wherever it
is drawn (at a given precision and batch size), and a run's ``--precision`` reaches every sample.
A conditional generator (``G.num_classes > 0``) draws each z at its class label: ``labels`` is
required for one and refused for an unconditional one, so a label can never be silently ignored.
"""
from __future__ import annotations

import torch

from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.nets import Generator


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """``n`` class labels cycling through the classes (0, 1, ..., K-1, 0, 1, ...): every class as often
    as ``n`` allows, so any first ``k * num_classes`` samples are class-balanced."""
    return torch.arange(n) % num_classes


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, *, batch_size: int, device: torch.device | str,
             precision: str = "fp32", masks: dict[str, torch.Tensor] | None = None, layers=(),
             labels: torch.Tensor | None = None):
    """G's images of ``z`` (N x nz or N x nz x 1 x 1), float32 on the CPU in [-1, 1].

    z goes through G (already on ``device``) ``batch_size`` at a time, in eval mode (batch norm's
    running statistics, as a trained G is sampled; G's own mode is restored after) and under bf16
    autocast when ``precision`` is bf16. ``masks`` maps G's layer names to (channels,) factors on
    that layer's feature maps (0 drops a map, paper section 6.3.1). With ``layers`` (names of G's
    hidden layers) the result is ``(images, {name: N x C x s x s activations after the masks})``,
    the activations float32 on the CPU too. ``labels`` (N,) int64: the class of each z, required iff
    ``G.num_classes > 0``.
    """
    device = torch.device(device)
    if (labels is None) != (G.num_classes == 0):
        raise ConfigError(f"this generator is {'conditional' if G.num_classes else 'unconditional'}: "
                          + ("pass a class label for each z" if G.num_classes else "it takes no class labels"))
    outside = labels is not None and bool(((labels < 0) | (labels >= G.num_classes)).any())
    if labels is not None and (labels.shape != (len(z),) or outside):
        raise ConfigError(f"labels: expected {len(z)} class indices in [0, {G.num_classes}), got shape "
                          f"{tuple(labels.shape)}")
    conditions = [None] * len(range(0, len(z), batch_size)) if labels is None else labels.split(batch_size)
    images, acts = [], {name: [] for name in layers}
    training = G.training
    G.eval()
    try:
        for chunk, y in zip(z.reshape(len(z), -1, 1, 1).split(batch_size), conditions):
            with autocast(device, precision):
                extra = {} if y is None else {"labels": y.to(device)}
                x, named = G.forward_with_intermediates(chunk.to(device), layers, masks, **extra)
            images.append(x.float().cpu())
            for name in layers:
                acts[name].append(named[name].float().cpu())
    finally:
        G.train(training)
    images = torch.cat(images)
    return (images, {name: torch.cat(a) for name, a in acts.items()}) if layers else images
