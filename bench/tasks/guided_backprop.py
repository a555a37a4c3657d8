"""What D's last-layer features respond to: guided backpropagation (paper, section 6.2, Fig. 5).

The paper shows, for the first 6 features of the discriminator's last convolution layer, guided
backpropagation of their maximal axis-aligned responses on real images, beside the same for a
randomly initialised network: the trained features respond to beds and windows, the random ones to
nothing in particular. Here:

1. The first ``images`` of ``split`` pass through D; a feature's response on an image is its
   maximum over the layer's spatial locations (one unit: axis-aligned).
2. For each of the first ``features`` channels, the ``top`` images with the largest response, and
   the gradient of that one unit with respect to the image under guided backpropagation
   (Springenberg et al. 2015): every (Leaky)ReLU passes back only positive gradients, and only
   where its input was positive.
3. The same for a D of the same configuration initialised from the run's seed.

``maps.png``: one row per feature, trained D's rows first, then the random D's; each image beside
its map (zero gradient mid-grey, each map scaled by its own largest magnitude). Rows: per model and
feature, ``max_response`` (the top image's) and ``mean_response`` (over the searched images). No
score of the maps is reported: guided backpropagation is known to draw image-like edges for random
networks too (Adebayo et al. 2018, "Sanity checks for saliency maps"), so a sharpness number would
not say what the network learned; the picture is to be read beside the random D's.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from bench.features import require_image_features, to_uint8
from bench.results import Measurement
from bench.tasks.base import TASKS, RunContext, Task, Workload
from dcgan.errors import ConfigError
from dcgan.nets import FeatureTaps
from dcgan.params import Params, param

MODELS = ("trained-d", "random-d")


@dataclass(frozen=True)
class GuidedBackpropParams(Params):
    images: int = param(2000, "the first N images of the split searched for maximal responses (the paper gives "
                              "none)", low=1)
    features: int = param(6, "the first features (channels) of the layer; paper: 6", low=1)
    top: int = param(4, "images shown per feature, largest response first", low=1)
    layer: str | None = param(None, "D layer; none: D's last convolution layer, the paper's")


class _GuidedLeakyReLU(torch.autograd.Function):
    """LeakyReLU forward; backward passes a gradient only where it is positive and the input was positive."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return nn.functional.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0), None


class GuidedLeakyReLU(nn.Module):
    def __init__(self, slope: float):
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GuidedLeakyReLU.apply(x, self.slope)


def guided(D: FeatureTaps) -> FeatureTaps:
    """A copy of ``D`` whose (Leaky)ReLUs backpropagate the guided way; same forward values."""
    out = copy.deepcopy(D)
    for i, module in enumerate(out.main):
        if isinstance(module, (nn.LeakyReLU, nn.ReLU)):
            out.main[i] = GuidedLeakyReLU(getattr(module, "negative_slope", 0.0))
    return out


def guided_map(guided_D: FeatureTaps, image: torch.Tensor, layer: str, channel: int) -> torch.Tensor:
    """The gradient (C, H, W) of ``channel``'s largest unit of ``layer`` with respect to ``image``
    (C, H, W, in [-1, 1]), backpropagated through ``guided_D`` (a ``guided`` copy of D)."""
    x = image[None].clone().requires_grad_(True)
    act = guided_D.forward_intermediates(x, [layer])[layer][0, channel]
    act.flatten().max().backward()
    return x.grad[0]


@torch.no_grad()
def responses(D: FeatureTaps, images: torch.Tensor, layer: str, batch_size: int) -> torch.Tensor:
    """(N, channels): each feature's largest value over ``layer``'s locations, per image."""
    return torch.cat([D.forward_intermediates(x, [layer])[layer].flatten(2).amax(2) for x in images.split(batch_size)])


@TASKS.register("guided-backprop")
class GuidedBackprop(Task):
    summary = "guided backprop of D's last-layer features' maximal responses, trained vs random D (paper 6.2)"
    paper = "6.2"
    smoke = {"images": 40, "features": 2, "top": 2}
    section = "learning"
    pictures = {"maps.png": "one row per feature, the trained D's (T) first, then a random D's (R); each image "
                            "beside its guided-backprop map: trained features whose top images share a part that "
                            "their maps trace, random ones responding to nothing in particular (paper Fig. 5)"}

    @classmethod
    def workload(cls, p: GuidedBackpropParams, sizes: dict[str, int]) -> Workload:
        """Both Ds over the searched images, then a forward and a backward per map."""
        return Workload(d_images=len(MODELS) * (min(p.images, sizes.get(cls.default_split, p.images))
                                                + 3 * p.features * p.top))
    needs = "discriminator"
    default_split = "train"
    Params = GuidedBackpropParams

    def check(self, ctx: RunContext, p: GuidedBackpropParams) -> None:
        require_image_features(ctx.net("discriminator")[0])

    def run(self, ctx: RunContext, p: GuidedBackpropParams) -> list[Measurement]:
        trained, cfg = ctx.net("discriminator")
        layer = p.layer or trained.layer_names[-1]
        if layer not in trained.layer_names:
            raise ConfigError(f"unknown discriminator layer {layer!r}; this D has {', '.join(trained.layer_names)}")
        if not 1 <= p.features <= trained.feature_channels[layer] or p.top < 1 or p.images < p.top:
            raise ConfigError(f"guided-backprop needs 1 <= features <= {trained.feature_channels[layer]} "
                              f"(the channels of {layer}), top >= 1 and images >= top")
        data = ctx.split(ctx.split_name, cfg.image_size, cfg.nc)
        n = min(p.images, len(data))
        images = (torch.stack([data[i][0] for i in range(n)]).float() / 127.5 - 1).to(ctx.device)  # as D sees them
        rows, out = [], []
        for model in MODELS:
            D = ctx.discriminator(model)
            r, guided_D = responses(D, images, layer, ctx.batch_size).cpu(), guided(D)
            for c in range(p.features):
                best = torch.argsort(r[:, c], descending=True)[:p.top]
                row = []
                for i in best.tolist():
                    g = guided_map(guided_D, images[i], layer, c).cpu()
                    row += [(to_uint8(images[i].cpu()), f"{model[0].upper()} f{c} #{i}", None),
                            (to_uint8(g / g.abs().max().clamp_min(1e-12)), f"r={r[i, c]:.2f}", None)]
                rows.append(row)
                extra = {"images": n, "top_images": best.tolist()}
                out += [Measurement("max_response", r[best[0], c].item(), split=ctx.split_name, model=model,
                                    features=f"{layer}/f{c}", details=extra),
                        Measurement("mean_response", r[:, c].mean().item(), split=ctx.split_name, model=model,
                                    features=f"{layer}/f{c}", details=extra)]
        from bench.pictures import contact_sheet

        contact_sheet(rows, ctx.artifact("maps.png"), tile=max(64, cfg.image_size))
        return out
