"""SRGAN's content losses (Ledig et al., CVPR 2017, section 2.2.1): what G's SR is compared with its HR by.

- ``mse``: the pixel MSE (the paper's SRResNet-MSE and SRGAN-MSE).
- ``vgg19``: the paper's VGG54 loss, the MSE between the feature maps of torchvision's VGG-19
  (``VGG19_Weights.IMAGENET1K_V1``) after the ReLU of the 4th convolution before the 5th max-pool
  (conv5_4, ``features[:36]``), rescaled as the paper rescales it (``VGG_RESCALE``). The MSE is the mean
  over channels and positions, as common reimplementations take it (the paper's equation (5) divides
  its sum by the map's width and height alone).
- ``inception``: not the paper's. The same idea on the suite's offline Inception-v3, the FID network
  (``dcgan.weights`` resolves its file, which ``bench weights inception`` builds offline), for machines
  that have those weights and not VGG-19's. Its map is the end of Inception's stem (``Conv2d_4a_3x3``,
  after its batch norm and ReLU, 192 channels), because the suite's crops are small and are fed at their
  own size: the 299 px resize FID uses would cost a 299 px Inception forward per image per training step,
  far too much on a CPU. Without it a 32 px crop is 4 x 4 there (12 x 12 at 64 px), while the first mixed
  block, one stride-2 max-pool later, is already 1 x 1 at 32 px: the stem's end is the deepest map that
  keeps a spatial extent (what a content loss compares) at the sizes this suite trains on. Its features
  are rescaled by the paper's VGG factor too (``INCEPTION_RESCALE``).

Both feature nets map the suite's [-1, 1] pixels to their own input normalisation (ImageNet mean and
std for VGG-19, torchvision's preset; ``(x - 128) / 128`` of 0-255 pixels for Inception, torch-fidelity's),
grey images repeated to 3 channels. They are built on the meta device and then given their weights, so
building one draws no random numbers (a run's global RNG state is the same with any content loss) and
initialises no weights only to overwrite them. The trainer freezes them, moves them to its device and never saves
them (``Family.frozen``); the step runs them under its autocast precision (``SRGAN.content``), the loss
itself in float32.
"""
from __future__ import annotations

import contextlib
import sys
from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from dcgan.weights import WeightsError, hub_file, load_state, resolve_weights

VGG54_END = 36  # torchvision vgg19's features[:36]: through conv5_4's ReLU, before the 5th max-pool
# paper, section 3.2: the VGG feature maps are rescaled by 1/12.75, for VGG losses of the pixel MSE's scale; the
# loss is then multiplied by 1/12.75^2 ~ 0.006
VGG_RESCALE = 1 / 12.75
# the stem's activations are large too (mean square ~12 on 32 px crops): with the paper's factor the loss of a
# bicubic x4 upsampling is of its pixel MSE's order (a third to an eighth of it on synthetic and digits crops),
# what the paper rescaled VGG's for
INCEPTION_RESCALE = VGG_RESCALE
# torch-fidelity's FeatureExtractorInceptionV3 modules up to the content map, in its forward's order
INCEPTION_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
# the smallest HR side whose content map is not empty: VGG54 follows four 2x2 max-pools (16 px -> 1 x 1);
# Inception's stem: conv s2, conv, conv, max-pool 3 s2, conv 1x1, conv 3x3, all unpadded but one (19 px -> 1 x 1)
MIN_SIDE = {"mse": 1, "vgg19": 16, "inception": 19}
INSTEAD = "use --content-loss inception or mse"


class PixelMSE(nn.Module):
    """The pixel MSE of SR against HR, in float32."""

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(sr.float(), hr.float())


class FeatureMSE(nn.Module):
    """``rescale`` times each net's features, the MSE between SR's and HR's, in float32. Inputs in
    [-1, 1] become ``x * scale + shift`` per channel (the net's normalisation), grey repeated to RGB; HR's
    features are a target, computed without a graph."""

    def __init__(self, net: nn.Module, scale: torch.Tensor, shift: torch.Tensor, rescale: float):
        super().__init__()
        self.net = net
        self.register_buffer("scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", shift.view(1, 3, 1, 1), persistent=False)
        self.rescale = rescale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x * self.scale + self.shift).float() * self.rescale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return F.mse_loss(self.features(sr), target)


def vgg54() -> FeatureMSE:
    """The paper's VGG54 loss on torchvision's VGG-19 weights, fetched by torchvision's own path (into
    torch's hub cache on first use; a file already there is used as it is)."""
    from torchvision.models import VGG19_Weights

    weights = VGG19_Weights.IMAGENET1K_V1
    target = hub_file(weights.url)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torch's "Downloading: ..." notice: stdout is for results
            state = weights.get_state_dict(progress=sys.stderr.isatty(), check_hash=True, map_location="cpu",
                                           weights_only=True)
    except Exception as e:  # offline: URLError (an OSError); a bad download: RuntimeError; a bad file: several
        if not target.is_file():
            reason = str(e).strip().splitlines()[0][:100] if str(e).strip() else type(e).__name__
            raise WeightsError(f"VGG-19 weights {target} are missing and could not be downloaded ({reason}): put "
                               f"torchvision's {target.name} ({weights.url}) there, or {INSTEAD}") from None
        raise WeightsError(f"VGG-19 weights {target} are unreadable ({type(e).__name__}): delete the file to "
                           f"download it again, or {INSTEAD}") from None
    net = vgg54_net()
    prefix = "features."
    _load(net, {k[len(prefix):]: v for k, v in state.items()
                if k.startswith(prefix) and int(k.split(".")[1]) < VGG54_END}, f"VGG-19 weights {target}")
    preset = weights.transforms()  # ImageNet normalisation of [0, 1] pixels, and [0, 1] = ([-1, 1] + 1) / 2
    mean, std = torch.tensor(preset.mean), torch.tensor(preset.std)
    return FeatureMSE(net, 0.5 / std, (0.5 - mean) / std, VGG_RESCALE)


def inception_stem() -> FeatureMSE:
    """The content loss on the FID Inception's stem (``INCEPTION_STEM``), weights from ``resolve_weights``.

    The stem is built from torch-fidelity's own blocks with its arguments and names, alone: torch-fidelity's
    network always loads its whole file into a randomly initialised net (and with a full unpickler),
    where the stem needs under one percent of it."""
    path = resolve_weights()
    state = load_state(path)
    net = inception_stem_net()
    _load(net, {k: v for k, v in state.items() if k.split(".")[0] in INCEPTION_STEM}, f"Inception weights {path}")
    return FeatureMSE(net, torch.full((3,), 127.5 / 128), torch.full((3,), -0.5 / 128), INCEPTION_RESCALE)


def vgg54_net() -> nn.Sequential:
    """torchvision's VGG-19 ``features[:VGG54_END]`` on the meta device (no weights yet)."""
    from torchvision.models import vgg19

    with torch.device("meta"):
        return vgg19().features[:VGG54_END]


def inception_stem_net() -> nn.Sequential:
    """torch-fidelity's Inception-v3 stem (``INCEPTION_STEM``: its blocks, arguments and names) on the meta
    device (no weights yet)."""
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    with torch.device("meta"):
        layers = (BasicConv2d(3, 32, kernel_size=3, stride=2), BasicConv2d(32, 32, kernel_size=3),
                  BasicConv2d(32, 64, kernel_size=3, padding=1), nn.MaxPool2d(kernel_size=3, stride=2),
                  BasicConv2d(64, 80, kernel_size=1), BasicConv2d(80, 192, kernel_size=3))
        return nn.Sequential(OrderedDict(zip(INCEPTION_STEM, layers)))


def _load(net: nn.Module, state: dict, what: str) -> None:
    """Give a meta-device net its weights (strictly: every tensor it has, nothing else)."""
    try:
        net.load_state_dict(state, assign=True)
    except RuntimeError as e:
        raise WeightsError(f"{what} do not fit the network ({str(e).splitlines()[0][:120]})") from None


BUILDERS: dict[str, Callable[[], nn.Module]] = {"mse": PixelMSE, "vgg19": vgg54, "inception": inception_stem}
CONTENT_LOSSES = tuple(BUILDERS)


def content_loss(name: str) -> nn.Module:
    """The content loss ``name`` (one of ``CONTENT_LOSSES``) as a module ``(sr, hr) -> loss``, on the CPU."""
    return BUILDERS[name]()
