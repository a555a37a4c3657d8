"""Super-resolution: how close an SR generator's images come to the HR images, beside the baselines.

Protocol (docs/tasks/sr.md):

1. The test pairs. A registered data set's ``--split`` at the generator's image size, or, for
   ``--dataset folder``, the folder's images at their own sizes (an SR test set such as Set14, or
   DIV2K's paired layout, ``HR/`` beside ``LR_bicubic/X4/``, whose LR files are used as they are): the
   HR image cropped to a multiple of the scale, its LR made by the antialiased bicubic of
   ``dcgan.data.pairs`` unless read from the LR folder.
2. The methods, on the same LR images: ``nearest`` and ``bicubic`` upsampling (the bicubic is
   ``dcgan.data.pairs.bicubic``: Keys' kernel with a = -0.5, as PIL's and MATLAB's ``imresize``),
   ``srresnet`` (the stage-1 G the GAN run started from, when found unchanged, or the ``srresnet``
   parameter) and the checkpoint's G itself (``srgan`` for a GAN-stage G, ``srresnet`` for a stage-1
   G). Each SR image is rounded to uint8, as a saved file holds it.
3. PSNR and SSIM on the Y channel with ``border`` pixels cropped (``bench.sr_metrics``: the convention of
   SRGAN, EDSR and BasicSR), each a mean over the images; every image's values in ``per_image.csv``.
4. FID of each method's SR images against the HR images, through ``bench.fidelity``, when the set holds
   at least ``fid_min_images`` images of one size: PSNR rewards the blurry average of the plausible HR
   images, FID how much the SR images look like HR ones (the SRGAN paper's point, there made with a
   mean opinion score).
5. ``crops.png``: a crop of the first images, one row each: bicubic | SRResNet | the G | HR, pixels
   enlarged by whole factors (nearest neighbour), never resampled.

Rows (model: the method; features: ``Y, border N`` or the Inception convention): ``psnr``, ``ssim``
and ``fid`` per method, details the image count, the spread and the checkpoint of a G baseline.
"""
from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.features import to_uint8
from bench.pictures import contact_sheet
from bench.results import Measurement
from bench.sr_metrics import psnr, smallest_side, ssim
from bench.tasks.base import TASKS, RunContext, Task, Workload
from bench.tasks.fid import InceptionParams, checked_extractor, convention
from dcgan.checkpoint import fingerprint, load_net
from dcgan.data import get_spec
from dcgan.data.pairs import TestPair, bicubic, check_hr_source, make_pair, read_test_folder
from dcgan.errors import ConfigError, DataError
from dcgan.fsutil import atomic_path
from dcgan.models.srgan import super_resolve
from dcgan.params import param

SHOWN_SIDE = 128  # crops.png shows each crop at least this many pixels wide


@dataclass(frozen=True)
class SRParams(InceptionParams):
    border: int | None = param(None, "pixels cropped from every side before PSNR and SSIM; none: the scale (SRGAN's, "
                                     "EDSR's and BasicSR's convention)", low=0)
    srresnet: str | None = param(None, "a stage-1 SRResNet G export measured as a baseline; none: the one the GAN "
                                       "run started from (its g.pt records path and hash), if still there unchanged")
    fid_min_images: int = param(1000, "FID rows when the set holds at least this many images of one size (FID is "
                                      "biased high at small counts)", low=2)
    shown: int = param(4, "images in crops.png, one row each", low=1, high=32)
    crop: int = param(96, "side of the crops in crops.png, in HR pixels (the whole image when smaller)", low=8)


@TASKS.register("sr")
class SuperResolution(Task):
    summary = "super-resolution: PSNR/SSIM on Y and FID of an SR G beside nearest, bicubic and its SRResNet"
    paper = "Ledig et al. 2017, section 3"
    Params = SRParams
    needs = "generator"
    takes = "lr"
    default_dataset = "cifar10"
    default_split = "test"
    smoke = {"shown": 2}
    section = "super-resolution"
    headline = ("psnr", "ssim", "fid")
    pictures = {"crops.png": "the same crop of each image, one row each: bicubic | SRResNet | the G | HR; the GAN's "
                             "textures should be sharper than SRResNet's smooth ones, and not the HR's own"}

    @classmethod
    def workload(cls, p: SRParams, sizes: dict[str, int]) -> Workload:
        n = sizes.get("test", 0)
        return Workload(g_images=2 * n, inception_images=5 * n if n >= p.fid_min_images else 0)

    def check(self, ctx: RunContext, p: SRParams) -> None:
        if p.srresnet is not None:
            if ctx.net("generator")[1].stage != "gan":
                raise ConfigError(f"srresnet={p.srresnet}: --ckpt {ctx.ckpt} is itself a stage-1 SRResNet; the "
                                  "baseline is for a GAN-stage G")
            _srresnet(p.srresnet, ctx)

    def reads(self, ctx: RunContext, p: SRParams) -> list[tuple[str, str, str | None]]:
        return [(ctx.dataset, _split(ctx), ctx.data_root)]

    def run(self, ctx: RunContext, p: SRParams) -> list[Measurement]:
        G, cfg = ctx.net("generator")
        border = cfg.scale if p.border is None else p.border
        pairs = _pairs(ctx, cfg, border)
        methods: dict[str, tuple[torch.nn.Module | None, Path | None]] = {"nearest": (None, None),
                                                                         "bicubic": (None, None)}
        baseline, note = _baseline(ctx, p)
        if baseline is not None and cfg.stage == "gan":
            methods["srresnet"] = baseline
        methods[_name(cfg)] = (G, None)
        outputs = {name: _upscale(name, net, pairs, cfg.scale, ctx) for name, (net, _) in methods.items()}
        hr = [pair.hr for pair in pairs]
        rows, per_image = [], {}
        features = f"Y, border {border}"
        for name, sr in outputs.items():
            scores = {metric: torch.cat([fn(a[None], b[None], border) for a, b in zip(sr, hr)])
                      for metric, fn in (("psnr", psnr), ("ssim", ssim))}
            per_image[name] = scores
            path = methods[name][1]
            details = {"images": len(pairs), **({"srresnet_baseline": note} if cfg.stage == "gan" and
                                                   name in ("srresnet", "srgan") else {})}
            rows += [Measurement(metric, float(values.mean()), split=_split(ctx), model=name, features=features,
                                 details={**details, "std": float(values.std()) if len(values) > 1 else 0.0},
                                 ckpt=path)
                     for metric, values in scores.items()]
        rows += _fid_rows(ctx, p, outputs, hr, methods)
        _write_per_image(ctx.artifact("per_image.csv"), pairs, per_image)
        _picture(ctx.artifact("crops.png"), pairs, outputs, per_image, p)
        return rows


def _split(ctx: RunContext) -> str:
    """The split read: ``--split`` (test by default), or a data set's only split (a folder's)."""
    splits = get_spec(ctx.dataset).splits
    return splits[0] if len(splits) == 1 else ctx.split_name


def _name(cfg) -> str:
    return "srgan" if cfg.stage == "gan" else "srresnet"


def _pairs(ctx: RunContext, cfg, border: int) -> list[TestPair]:
    """The test pairs (module docstring, step 1), every image large enough for the metrics."""
    if ctx.dataset == "folder":
        pairs = read_test_folder(Path(ctx.data_root) if ctx.data_root else None, cfg.scale, cfg.nc)
    else:
        data = ctx.split(_split(ctx), cfg.image_size, cfg.nc)
        check_hr_source(data, cfg.image_size, "the generator's image size")
        pairs = [make_pair(data.item_name(i), data[i][0], cfg.scale) for i in range(len(data))]
    least = smallest_side(border)
    for pair in pairs:
        if min(pair.hr.shape[-2:]) < least:
            raise DataError(f"image {pair.name} is {pair.hr.shape[-2]}x{pair.hr.shape[-1]} after cropping to a multiple "
                            f"of {cfg.scale}: PSNR/SSIM with a border of {border} need at least {least} pixels a side")
    return pairs


def _srresnet(path: str, ctx: RunContext) -> tuple[torch.nn.Module, Path]:
    """The stage-1 G at ``path``, refused unless it is an SRResNet of the checkpoint's scale and channels."""
    G, cfg = ctx.net("generator")
    base, base_cfg, _ = load_net(path, "generator", takes="lr")
    if base_cfg.stage != "srresnet" or (base_cfg.scale, base_cfg.nc) != (cfg.scale, cfg.nc):
        raise ConfigError(f"srresnet={path}: expected a stage-1 SRResNet G of scale x{cfg.scale} and {cfg.nc} "
                          f"channel(s), found a {base_cfg.stage} G of x{base_cfg.scale}, {base_cfg.nc} channel(s)")
    return base.to(ctx.device), Path(path)


def _baseline(ctx: RunContext, p: SRParams) -> tuple[tuple[torch.nn.Module, Path] | None, str]:
    """The SRResNet baseline and a note on where it came from (or why there is none)."""
    if p.srresnet is not None:
        return _srresnet(p.srresnet, ctx), "the srresnet parameter"
    _, _, blob = load_net(ctx.ckpt, "generator", takes="lr")
    meta = blob.get("meta", {})
    init, expected = meta.get("init"), meta.get("init_sha256")
    if not init:
        return None, "none: the run records no stage-1 G"
    if not Path(init).is_file():
        return None, f"none: the stage-1 G the run started from, {init}, is not there"
    if fingerprint(init) != expected:
        return None, f"none: {init} has changed since the run started from it"
    return _srresnet(init, ctx), f"the run's stage-1 G, {init}"


def _upscale(name: str, net: torch.nn.Module | None, pairs: list[TestPair], scale: int, ctx: RunContext
             ) -> list[torch.Tensor]:
    """Each pair's SR image by ``name``, uint8 (same-size LR images go through a G in batches)."""
    out = []
    for group in _same_size(pairs):
        lr = torch.stack([pair.lr for pair in group])
        size = (lr.shape[-2] * scale, lr.shape[-1] * scale)
        if name == "nearest":
            sr = F.interpolate(lr, size=size, mode="nearest")
        elif name == "bicubic":
            sr = bicubic(lr, size)
        else:
            sr = to_uint8(super_resolve(net, lr, batch_size=ctx.batch_size, device=ctx.device,
                                        precision=ctx.precision))
        out += list(sr)
    return out


def _same_size(pairs: list[TestPair]):
    """Runs of consecutive pairs whose LR images have one size (a data set's: one run)."""
    start = 0
    for i in range(1, len(pairs) + 1):
        if i == len(pairs) or pairs[i].lr.shape != pairs[start].lr.shape:
            yield pairs[start:i]
            start = i


def _fid_rows(ctx: RunContext, p: SRParams, outputs: dict[str, list[torch.Tensor]], hr: list[torch.Tensor],
              methods: dict) -> list[Measurement]:
    """FID of each method's SR images against the HR images, for a large enough set of one size."""
    if len(hr) < p.fid_min_images or len({x.shape for x in hr}) > 1:
        return []
    from bench import fidelity

    extractor = checked_extractor(ctx, p)
    weights = extractor.weights(p.inception_weights)
    options = dict(extractor=p.extractor, weights=weights, device=ctx.device, batch_size=p.inception_batch_size,
                   precision=ctx.precision)
    t0 = time.perf_counter()
    real, _ = fidelity.fid_features(fidelity.Tensors(torch.stack(hr)), None, **options)
    rows = []
    for name, sr in outputs.items():
        fake, _ = fidelity.fid_features(fidelity.Tensors(torch.stack(sr)), None, **options)
        rows.append(Measurement("fid", fidelity.frechet_distance(fake, real), split=_split(ctx), model=name,
                                features=convention(extractor, ctx), ckpt=methods[name][1],
                                details={"images": len(hr), "weights_sha256": fingerprint(weights),
                                         "metric_seconds": round(time.perf_counter() - t0, 2)}))
    return rows


def _write_per_image(path: Path, pairs: list[TestPair], per_image: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["image", "method", "psnr", "ssim"])
        for name, scores in per_image.items():
            for pair, a, b in zip(pairs, scores["psnr"], scores["ssim"]):
                out.writerow([pair.name, name, f"{float(a):.4f}", f"{float(b):.5f}"])


def _picture(path: Path, pairs: list[TestPair], outputs: dict, per_image: dict, p: SRParams) -> None:
    """crops.png (module docstring, step 5): the centre crop of the first ``shown`` images."""
    shown = [m for m in ("bicubic", "srresnet", "srgan") if m in outputs]
    side = min(p.crop, *(min(pair.hr.shape[-2:]) for pair in pairs[:p.shown]))
    rows = []
    for i, pair in enumerate(pairs[:p.shown]):
        h, w = pair.hr.shape[-2:]
        top, left = (h - side) // 2, (w - side) // 2

        def crop(image: torch.Tensor) -> torch.Tensor:
            return image[:, top:top + side, left:left + side]

        rows.append([(crop(outputs[m][i]), f"{m} {float(per_image[m]['psnr'][i]):.2f} dB", None) for m in shown]
                    + [(crop(pair.hr), "HR", None)])
    contact_sheet(rows, path, tile=side * max(1, -(-SHOWN_SIDE // side)))
