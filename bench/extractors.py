"""The feature networks the generative metrics run (``EXTRACTORS``): torch-fidelity's InceptionV3 as it ships,
and the same network with a faster CPU forward whose features equal it to ~1e-6 (``FastInceptionV3``), each
registered with torch-fidelity under a name that also carries the precision (``torch_fidelity_name``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar

import torch
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d, FeatureExtractorInceptionV3

from dcgan.device import autocast
from dcgan.registry import Registry
from dcgan.weights import resolve_weights


@dataclass(frozen=True)
class Extractor:
    """A feature extractor the metrics can run with, and how result rows name it."""

    cls: type  # a torch_fidelity FeatureExtractorBase subclass, built from a weights file
    convention: str  # the network, its weights and the resize: FID values are comparable only within one
    weights: Callable[[str | None], Path]  # the weights file for an inception_weights value (None: default)
    precisions: tuple[str, ...] = ("fp32", "bf16")  # the --precision values it runs at


EXTRACTORS: Registry[Extractor] = Registry("feature extractor")


# torch-fidelity's InceptionV3 modules in the order its forward runs them, up to the 2048-d pool3 features
TRUNK = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
         "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
         "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "AvgPool")
TRUNK_FEATURES = {"2048", "logits_unbiased", "logits"}  # what the fast forward serves; others take torch-fidelity's


def _tf1_grid(n_in: int, n_out: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TensorFlow 1.x's sampling along one axis (align_corners=False, no half-pixel offset), as
    torch-fidelity computes it: source position o * n_in / n_out, its floor, the next pixel (clamped
    to the edge) and the fraction."""
    pos = torch.arange(n_out, dtype=torch.float32, device=device) * torch.tensor(n_in / n_out, dtype=torch.float32)
    lo = pos.long()
    return lo, (lo + 1).clamp_max(n_in - 1), pos - lo.float()


def tf1_resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """torch-fidelity's ``interpolate_bilinear_2d_like_tensorflow1x`` to ``size`` x ``size``, bit for bit,
    at a fraction of its cost.

    It gathers the four corners at the output size and blends along x twice, then along y. Blending
    along x first at the input's height gives the same rows (the same operations on the same
    values), so only the y step runs at the output size: two gathers and one blend instead of four
    gathers and three blends.
    """
    ylo, yhi, dy = _tf1_grid(x.shape[2], size, x.device)
    xlo, xhi, dx = _tf1_grid(x.shape[3], size, x.device)
    left, right = x[:, :, :, xlo], x[:, :, :, xhi]
    rows = left + (right - left) * dx.view(1, 1, 1, size)
    top, bottom = rows[:, :, ylo, :], rows[:, :, yhi, :]
    return top + (bottom - top) * dy.view(1, 1, size, 1)


class FastInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's InceptionV3, same weights and same resize, faster on the CPU.

    - The TensorFlow-style resize to 299 x 299 blends along x at the input's height first
      (``tf1_resize``): the same pixels, bit for bit, for half the gathers and a third of the blends.
    - Batch norm is folded into the convolutions (one pass over each activation instead of three).
    - Activations are channels_last (oneDNN's native layout: no reorder per convolution), in inference mode.

    The features equal torch-fidelity's to under 1e-5 relative (benchmarks/fid_throughput.py and a
    test measure it; the resize is exact, the folded batch norm and channels_last convolutions are
    not). Features other than pool3 and the logits (the 64/192/768-d taps) take torch-fidelity's
    own forward. ``precision = "bf16"`` (a subclass per precision, see ``torch_fidelity_name``)
    autocasts the convolutions: faster with native bf16, but the features move by ~1e-2.
    """

    precision: ClassVar[str] = "fp32"

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list, **kwargs)
        for block in self.modules():
            if isinstance(block, BasicConv2d):
                block.conv, block.bn = fuse_conv_bn_eval(block.conv, block.bn), torch.nn.Identity()
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        with torch.inference_mode(), autocast(x.device, self.precision):
            if not set(self.features_list) <= TRUNK_FEATURES:
                return tuple(f.float() for f in super().forward(x))
            if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"expected uint8 images N x 3 x H x W, got {x.dtype} {tuple(x.shape)}")
            x = tf1_resize(x.float(), self.INPUT_IMAGE_SIZE)
            x = ((x - 128) / 128).contiguous(memory_format=torch.channels_last)
            for name in TRUNK:
                x = getattr(self, name)(x)
            pool3 = torch.flatten(x, 1).float()
            unbiased = pool3 @ self.fc.weight.T if {"logits", "logits_unbiased"} & set(self.features_list) else None
            features = {"2048": pool3, "logits_unbiased": unbiased,
                        "logits": None if unbiased is None else unbiased + self.fc.bias}
            return tuple(features[f].float() for f in self.features_list)


class StockInceptionV3(FeatureExtractorInceptionV3):
    """torch-fidelity's own InceptionV3 as it ships (``--set extractor=torch-fidelity``): the reference
    the fast forward is checked against, and a way to compute FID with no code of ours in the network."""

    precision: ClassVar[str] = "fp32"


CONVENTION = "tf-inception-2015-12-05, torch-fidelity bilinear resize"
EXTRACTORS.register("inception-v3")(Extractor(FastInceptionV3, CONVENTION, resolve_weights))
EXTRACTORS.register("torch-fidelity")(Extractor(StockInceptionV3, CONVENTION, resolve_weights, ("fp32",)))


def torch_fidelity_name(extractor: str, precision: str) -> str:
    """The name ``extractor`` at ``precision`` is registered under with torch-fidelity (once per process).

    The precision is in the name because torch-fidelity builds extractors from a registered class and
    names its cache files after it: bf16 features must never be served for fp32 ones.
    """
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    name = f"dcgan-bench-{extractor}-{precision}"
    if name not in FEATURE_EXTRACTORS_REGISTRY:
        base = EXTRACTORS.get(extractor).cls
        register_feature_extractor(name, type(f"{base.__name__}_{precision}", (base,), {"precision": precision}))
    return name
