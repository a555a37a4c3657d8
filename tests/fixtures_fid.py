"""A small feature extractor standing in for the 87 MB Inception in CI, registered as ``tiny``; and
torch-fidelity's Inception with random weights, for the code that reads Inception's own layers.

It has Inception's interface in torch-fidelity (uint8 Bx3xHxW in; pooled features and unbiased
logits out; built from a weights file, whose hash keys the cache and whose NaN ``fc`` means "no
logits", like converted Inception weights), so every step of the pipeline runs for real: sampling,
torch-fidelity's loader, cache and metric code, result rows.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from bench.extractors import EXTRACTORS, Extractor

TINY_CONVENTION = "tiny test net, bilinear resize to 32"


class TinyExtractor(FeatureExtractorBase):
    FEATURES = ("16", "logits_unbiased")

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        self.conv = nn.Conv2d(3, 16, 5, stride=2)
        self.fc = nn.Linear(16, 10)
        self.load_state_dict(torch.load(feature_extractor_weights_path, weights_only=True))
        self.requires_grad_(False).eval()

    def forward(self, x):
        x = F.interpolate(x.float() / 127.5 - 1, size=(32, 32), mode="bilinear", align_corners=False)
        pooled = torch.tanh(self.conv(x)).mean((2, 3))  # tanh: no dead units, a full-rank covariance
        out = {"16": pooled, "logits_unbiased": pooled @ self.fc.weight.T}
        return tuple(out[f] for f in self.features_list)

    @staticmethod
    def get_provided_features_list():
        return TinyExtractor.FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits_unbiased" if metric == "isc" else "16"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return None


EXTRACTORS.register("tiny")(Extractor(TinyExtractor, TINY_CONVENTION, Path))


def write_tiny_weights(path: Path, seed: int = 0, logits: bool = True) -> Path:
    """Deterministic weights for TinyExtractor; ``logits=False`` writes a NaN classifier, as
    ``bench weights inception`` does."""
    g = torch.Generator().manual_seed(seed)
    state = {"conv.weight": torch.randn(16, 3, 5, 5, generator=g) * 0.3,
             "conv.bias": torch.randn(16, generator=g) * 0.1,
             "fc.weight": torch.randn(10, 16, generator=g), "fc.bias": torch.zeros(10)}
    if not logits:
        state["fc.weight"] = torch.full_like(state["fc.weight"], float("nan"))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_random_inception(path: Path) -> dict:
    """torch-fidelity's InceptionV3 with random weights and batch-norm statistics, saved at ``path`` as a
    weights file: built from the class's own initialisation, so nothing is downloaded. Returns its state."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    mp = pytest.MonkeyPatch()
    mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: None)
    mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    try:
        net = fe.FeatureExtractorInceptionV3("random", ["2048"])
    finally:
        mp.undo()
    g = torch.Generator().manual_seed(0)
    for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.weight.data = torch.empty_like(bn.weight).uniform_(0.5, 1.5, generator=g)
        bn.bias.data = torch.randn(bn.bias.shape, generator=g) * 0.1
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g) * 0.1)
        bn.running_var.copy_(torch.empty_like(bn.running_var).uniform_(0.5, 2.0, generator=g))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return net.state_dict()
