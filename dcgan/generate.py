"""The one way images are drawn from a generator.

Training's epoch grids, ``bench sample``, the latent-space tasks, forget, memorisation and the
generated side of the FID all sample through ``generate``, so a z gives the same image wherever it
is drawn (at a given precision and batch size), and a run's ``--precision`` reaches every sample.

A conditional generator (``G.num_classes > 0``) draws each z at a class: ``labels``, one class index
per z, is then required (and refused for an unconditional G). Samples drawn without a class in mind
(FID, memorisation, forget) are class-balanced (``balanced_labels``, via ``default_labels``); a grid
with one row per class shows every z at every class (``class_rows``).
"""
from __future__ import annotations

import contextlib

import torch

from dcgan.device import autocast
from dcgan.errors import ConfigError
from dcgan.nets import Generator


@contextlib.contextmanager
def evaluating(net: torch.nn.Module):
    """``net`` in eval mode for the block (batch norm's running statistics, as a trained net is run),
    its own mode restored after, whatever happens inside."""
    training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(training)


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
    the activations float32 on the CPU too. ``labels``: an N-long LongTensor of classes, required
    exactly when G is conditional.
    """
    device = torch.device(device)
    check_labels(labels, G.num_classes, len(z))
    images, acts = [], {name: [] for name in layers}
    label_chunks = labels.split(batch_size) if labels is not None else None
    with evaluating(G):
        for i, chunk in enumerate(z.reshape(len(z), -1, 1, 1).split(batch_size)):
            y = label_chunks[i].to(device) if label_chunks is not None else None
            with autocast(device, precision):
                x, named = G.forward_with_intermediates(chunk.to(device), layers, masks, labels=y)
            images.append(x.float().cpu())
            for name in layers:
                acts[name].append(named[name].float().cpu())
    images = torch.cat(images)
    return (images, {name: torch.cat(a) for name, a in acts.items()}) if layers else images


def check_labels(labels: torch.Tensor | None, num_classes: int, n: int) -> None:
    """One-line errors for labels that do not fit a generator of ``num_classes`` classes (0:
    unconditional) drawing ``n`` images: missing, given to an unconditional G, of the wrong type,
    length or range."""
    if not num_classes:
        if labels is not None:
            raise ConfigError("this generator is unconditional: it draws no classes, so it takes no labels")
        return
    if labels is None:
        raise ConfigError(f"this generator is conditional ({num_classes} classes): give the class of each sample "
                          "(labels)")
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.long or labels.shape != (n,):
        shown = f"{labels.dtype} {tuple(labels.shape)}" if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ConfigError(f"labels: expected a LongTensor of {n} classes (one per z), got {shown}")
    if n and not (0 <= int(labels.min()) and int(labels.max()) < num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ConfigError(f"label {int(bad)}: the generator draws classes 0 to {num_classes - 1}")


def balanced_labels(n: int, num_classes: int) -> torch.Tensor:
    """``n`` labels cycling through the classes, 0, 1, ..., K-1, 0, 1, ...: as even as ``n`` allows."""
    return torch.arange(n) % num_classes


def default_labels(net: torch.nn.Module, n: int) -> torch.Tensor | None:
    """The labels ``n`` images of a net (G or D) are drawn or judged at when no class is asked for: none
    for an unconditional net, class-balanced for a conditional one."""
    return balanced_labels(n, net.num_classes) if net.num_classes else None


def class_rows(z: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every z at every class, row by row: (z repeated ``num_classes`` times, their labels). In a grid
    of ``len(z)`` tiles a row, row c is class c and column j is z[j] throughout."""
    return z.repeat(num_classes, *[1] * (z.dim() - 1)), torch.arange(num_classes).repeat_interleave(len(z))
