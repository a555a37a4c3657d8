"""The one way images are drawn from a generator.

Training's epoch grids, ``bench sample``, the latent-space tasks, forget, memorisation and the
generated side of the FID all sample through ``generate``, so a z gives the same image wherever it
is drawn (at a given precision and batch size), and a run's ``--precision`` reaches every sample.
"""
from __future__ import annotations

import torch

from dcgan.device import autocast
from dcgan.nets import Generator


@torch.no_grad()
def generate(G: Generator, z: torch.Tensor, *, batch_size: int, device: torch.device | str,
             precision: str = "fp32", masks: dict[str, torch.Tensor] | None = None, layers=()):
    """G's images of ``z`` (N x nz or N x nz x 1 x 1), float32 on the CPU in [-1, 1].

    z goes through G (already on ``device``) ``batch_size`` at a time, in eval mode (batch norm's
    running statistics, as a trained G is sampled; G's own mode is restored after) and under bf16
    autocast when ``precision`` is bf16. ``masks`` maps G's layer names to (channels,) factors on
    that layer's feature maps (0 drops a map, paper section 6.3.1). With ``layers`` (names of G's
    hidden layers) the result is ``(images, {name: N x C x s x s activations after the masks})``,
    the activations float32 on the CPU too.
    """
    device = torch.device(device)
    images, acts = [], {name: [] for name in layers}
    training = G.training
    G.eval()
    try:
        for chunk in z.reshape(len(z), -1, 1, 1).split(batch_size):
            with autocast(device, precision):
                x, named = G.forward_with_intermediates(chunk.to(device), layers, masks)
            images.append(x.float().cpu())
            for name in layers:
                acts[name].append(named[name].float().cpu())
    finally:
        G.train(training)
    images = torch.cat(images)
    return (images, {name: torch.cat(a) for name, a in acts.items()}) if layers else images
