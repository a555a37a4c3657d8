"""Walking in the latent space and vector arithmetic on z (Radford et al. 2016, section 6).

Both tasks read only a generator (``reads_data = False``): no data set is loaded, and ``--dataset``
is optional; when given, the data set column of their rows names what G was trained on. Their
pictures are the result; the numbers beside them are deliberately few and each means exactly what
its docstring says.

- ``latent-walk`` (section 6.1): walks through 9 random points in Z, linear and spherical
  interpolation, one picture row per walk. A memorising generator would show sharp transitions
  along a walk; ``max_step_ratio`` measures the sharpest one. A conditional generator walks at a
  fixed class, walk i at class i mod the number of classes, so only z moves.
- ``vector-arithmetic`` (section 6.3.2): concepts are the mean z of 3 or more samples picked by
  index from ``bench sample``'s numbered grid; ``A - B + C`` is rendered with 8 noisy neighbours
  beside the same arithmetic done on pixels, and a direction ``mean(right) - mean(left)`` (the
  paper's "turn" vector) is added at growing scale to random samples.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal
from pathlib import Path

import torch

from bench.pictures import captioned_rows
from bench.results import Measurement
from bench.tasks.base import TASKS, RunContext, Task, Workload
from dcgan.checkpoint import fingerprint
from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError, NotApplicable
from dcgan.generate import balanced_labels
from dcgan.nets import sample_z
from dcgan.params import Params, param
from dcgan.grids import save_grid

INTERPOLATIONS = ("linear", "spherical")
MIN_EXEMPLARS = 3  # paper 6.3.2: "averaging the Z vector for three exemplars" made results stable


# ---- interpolation and the walk's measurement ------------------------------------------------------

def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White 2016, "Sampling generative networks") between rows of ``a`` and
    ``b`` at fractions ``t``: it follows the great circle, so the norm stays near that of typical z
    where a straight line cuts through the low-norm middle a Gaussian prior rarely draws."""
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).clamp(-1, 1)
    omega = torch.acos(cos)[:, None]
    t = t[:, None]
    straight = omega.abs() < 1e-6  # (anti)parallel endpoints: the circle is undefined, use the line
    sin = torch.where(straight, torch.ones_like(omega), torch.sin(omega))
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
    return torch.where(straight, (1 - t) * a + t * b, curved)


def walk(points: torch.Tensor, steps: int, kind: str) -> torch.Tensor:
    """z along a walk through ``points`` (P x nz): the first point, then ``steps`` evenly spaced
    fractions of each segment up to and including its end, 1 + (P - 1) * steps vectors."""
    t = torch.arange(1, steps + 1, dtype=points.dtype) / steps
    a = points[:-1].repeat_interleave(steps, 0)
    b = points[1:].repeat_interleave(steps, 0)
    tt = t.repeat(len(points) - 1)
    between = (1 - tt[:, None]) * a + tt[:, None] * b if kind == "linear" else slerp(a, b, tt)
    return torch.cat([points[:1], between])


def max_step_ratio(images: torch.Tensor) -> float:
    """The largest change between consecutive images of a walk (L2 over all pixels) divided by the
    mean change: 1.0 when every step changes the image equally, large when one step jumps.

    A generator that had memorised its training images would move smoothly within one and then jump
    to the next; a smooth latent space keeps this near 1. Segments between farther apart anchors
    change the image more per step, so a smooth walk still reads somewhat above 1, and the ratio
    grows with the number of steps (the mean falls, a real jump does not). For scale: a walk whose
    image stays put within each segment and jumps once per segment reads ``steps`` times the ratio of
    its largest to its mean jump, so at least ``steps``. NaN when nothing changes.
    """
    change = (images[1:] - images[:-1]).flatten(1).double().norm(dim=1)
    mean = change.mean()
    return float(change.max() / mean) if mean > 0 else math.nan


# ---- latent-walk ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WalkParams(Params):
    walks: int = param(8, "rows of the picture, one walk each (the paper's figure 4 shows several)", low=1)
    points: int = param(9, "points per walk; paper 6.1: interpolation between a series of 9 random points in Z",
                        low=2)
    steps: int = param(4, "images per segment between two points (the paper gives none): 33 tiles a row", low=1)
    interpolations: tuple[Literal[INTERPOLATIONS], ...] = param(INTERPOLATIONS, "paths between the points",
                                                                 nonempty=True)


@TASKS.register("latent-walk")
class LatentWalk(Task):
    """Rows: ``max_step_ratio`` per walk (``draw`` = walk index, ``features`` = linear or spherical);
    ``bench report`` gives the mean over walks. Pictures: ``linear.png`` and ``spherical.png``, one
    walk per row, the 9 points at every ``steps``-th tile (the first and last tile are points)."""

    summary = "interpolations through 9 random points in Z (section 6.1): picture + sharpest step per walk"
    Params = WalkParams
    paper = "6.1"
    smoke = {"walks": 2, "points": 3, "steps": 2}
    needs = "generator"
    reads_data = False  # G alone: the pictures are its samples
    section = "learning"
    headline = ("max_step_ratio",)
    pictures = {
        "linear.png": "walks along straight lines through 9 random z, one walk a row, the 9 points at every "
                      "few tiles: the images should change smoothly; a sharp jump inside a segment is what a "
                      "memorising generator would show (paper 6.1)",
        "spherical.png": "the same walks along great circles, whose z keep the norm of typical samples",
    }

    @classmethod
    def workload(cls, p: WalkParams, sizes: dict[str, int]) -> Workload:
        return Workload(g_images=p.walks * (1 + (p.points - 1) * p.steps) * len(p.interpolations))

    def run(self, ctx: RunContext, p: WalkParams) -> list[Measurement]:
        G, cfg = ctx.net("generator")
        points = sample_z(p.walks * p.points, cfg, torch.Generator().manual_seed(ctx.seed))
        points = points.view(p.walks, p.points, cfg.nz)
        length = 1 + (p.points - 1) * p.steps  # images a walk
        # a conditional G: each walk at one class, walk i at class i mod K
        labels = balanced_labels(p.walks, G.num_classes).repeat_interleave(length) if G.num_classes else None
        out = []
        for kind in p.interpolations:
            z = torch.cat([walk(w, p.steps, kind) for w in points])
            images = ctx.generate(z, labels)
            per_walk = images.view(p.walks, -1, *images.shape[1:])
            save_grid(images, ctx.artifact(f"{kind}.png"), nrow=per_walk.shape[1])
            out += [Measurement("max_step_ratio", max_step_ratio(w), draw=i, split="", model="generator",
                                features=kind) for i, w in enumerate(per_walk)]
        return out


# ---- vector-arithmetic ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArithmeticParams(Params):
    z: str | None = param(None, "the z file `bench sample --out grid.png` writes: grid.png.z.pt")
    concept_a: tuple[int, ...] = param((), "tile indices of the numbered grid averaged into concept A of A - B + C",
                                       low=0)
    concept_b: tuple[int, ...] = param((), "tile indices for concept B", low=0)
    concept_c: tuple[int, ...] = param((), "tile indices for concept C", low=0)
    neighbours: int = param(8, "noisy neighbours of the result (paper figure 7: the result and 8 around it)", low=0)
    noise: float = param(0.25, "uniform noise scale added to the result (paper 6.3.2: +-0.25)", low=0)
    left: tuple[int, ...] = param((), "tile indices of one end of a direction (paper: faces looking left)", low=0)
    right: tuple[int, ...] = param((), "tile indices of the other end: direction = mean z(right) - mean z(left)",
                                   low=0)
    turn_rows: int = param(8, "samples the direction is added to: the first z drawn with the run's seed", low=1)
    turn_steps: int = param(8, "scales from turn_scale[0] to turn_scale[1], one tile each", low=2)
    turn_scale: tuple[float, ...] = param((0.0, 1.0), "from,to: 0 is the sample itself, 1 the sample + the whole "
                                                       "direction")


@TASKS.register("vector-arithmetic")
class VectorArithmetic(Task):
    """Rows (``model`` generator, ``draw`` 0 unless said):

    - ``z_norm`` of each vector, ``features`` naming it (``a``, ``b``, ``c``, ``a-b+c``,
      ``right-left``). For reference, the mean of k unrelated N(0, I) draws has norm about
      sqrt(nz / k) (5.8 for nz = 100, k = 3): a concept well above that is a shared direction, not
      noise averaging out; a result far below a typical sample's sqrt(nz) lies where G saw few z.
    - ``rms_to_pixel_baseline``: root mean square pixel difference (images in [-1, 1]) between
      G(A - B + C) (``draw`` 0) or its i-th noisy neighbour (``draw`` i) and the pixel-space
      arithmetic mean(A images) - mean(B images) + mean(C images). It says how far the z result is
      from superimposing the exemplars, not whether it is right: that is judged on the picture.

    Pictures: ``arithmetic.png`` (rows A, B, C: the exemplars and G(mean z) last; then G(A - B + C)
    and its neighbours; then the exemplars' mean images and their A - B + C) and ``turn.png`` (one
    sample per row, the direction added at ``turn_steps`` scales from left to right). The turn's
    samples are the first ``turn_rows`` z drawn with the run's seed: `bench sample` with the same
    seed shows them as its first tiles, so each row's start can be found in the numbered grid.
    """

    summary = "A - B + C on averaged z of picked samples, and an added 'turn' direction (section 6.3.2)"
    Params = ArithmeticParams
    paper = "6.3.2"
    # with the z file of a 16-sample `bench sample` grid
    smoke = {"concept_a": (0, 1, 2), "concept_b": (3, 4, 5), "concept_c": (6, 7, 8), "left": (9, 10, 11),
             "right": (12, 13, 14), "neighbours": 2, "turn_rows": 2, "turn_steps": 2}
    needs = "generator"
    reads_data = False  # G alone: the pictures are its samples
    user_input = "a `bench sample` z file and the tiles picked from its numbered grid (--set z=..., concept_a=...)"
    section = "learning"
    pictures = {"arithmetic.png": "each concept's exemplars and G(mean z), then G(A - B + C) with its noisy "
                                  "neighbours, then the same arithmetic on pixels: the z result should show the "
                                  "concept, not a superimposition (paper 6.3.2)",
                "turn.png": "the direction mean(right) - mean(left) added at growing scale, one sample a row"}

    def check(self, ctx: RunContext, p: ArithmeticParams) -> None:
        if ctx.net("generator")[0].num_classes:
            raise NotApplicable("vector-arithmetic averages the z of samples a z file names, and a conditional "
                                "generator's samples depend on their class as well, which the arithmetic leaves out")

    def run(self, ctx: RunContext, p: ArithmeticParams) -> list[Measurement]:
        _, cfg = ctx.net("generator")
        groups = _check(p)
        z = load_z(p.z, cfg)
        for key, indices in groups.items():
            if bad := [i for i in indices if not 0 <= i < len(z)]:
                raise ConfigError(f"{_key(key)}={','.join(map(str, indices))}: index {bad[0]} is out of range for the "
                                  f"{len(z)} z vectors in {p.z}")
        extra = {"z_sha256": fingerprint(p.z)}
        out = []
        if "a" in groups:
            out += self._arithmetic(ctx, p, z, groups, extra)
        if "left" in groups:
            out += self._turn(ctx, p, cfg, z, groups, extra)
        return out

    def _arithmetic(self, ctx, p, z, groups, extra) -> list[Measurement]:
        concept = {k: z[list(groups[k])].mean(0) for k in "abc"}
        y = concept["a"] - concept["b"] + concept["c"]
        noise = torch.rand((p.neighbours, *y.shape), generator=torch.Generator().manual_seed(ctx.seed))
        results = ctx.generate(torch.cat([y[None], y + (2 * noise - 1) * p.noise]))
        rows, means = [], []
        for k in "abc":
            images = ctx.generate(torch.cat([z[list(groups[k])], concept[k][None]]))
            means.append(images[:-1].mean(0))
            rows.append((f"{k.upper()}: {', '.join(map(str, groups[k]))}; G(mean z)", images))
        pixel = means[0] - means[1] + means[2]
        rows += [(f"z: A - B + C, {p.neighbours} neighbours", results),
                 ("pixels: mean A, B, C; A - B + C", torch.stack([*means, pixel.clamp(-1, 1)]))]
        captioned_rows(rows, ctx.artifact("arithmetic.png"))
        rms = (results - pixel).pow(2).flatten(1).mean(1).sqrt()
        norms = {**concept, "a-b+c": y}
        return ([Measurement("z_norm", float(v.norm()), split="", model="generator", features=k, details=extra)
                 for k, v in norms.items()]
                + [Measurement("rms_to_pixel_baseline", float(d), draw=i, split="", model="generator",
                               features="a-b+c", details=extra) for i, d in enumerate(rms)])

    def _turn(self, ctx, p, cfg, z, groups, extra) -> list[Measurement]:
        direction = z[list(groups["right"])].mean(0) - z[list(groups["left"])].mean(0)
        samples = sample_z(p.turn_rows, cfg, torch.Generator().manual_seed(ctx.seed)).view(p.turn_rows, -1)
        scales = torch.linspace(*p.turn_scale, p.turn_steps)
        moved = samples[:, None] + scales[None, :, None] * direction
        save_grid(ctx.generate(moved.flatten(0, 1)), ctx.artifact("turn.png"), nrow=p.turn_steps)
        return [Measurement("z_norm", float(direction.norm()), split="", model="generator", features="right-left",
                            details=extra)]


def _check(p: ArithmeticParams) -> dict[str, tuple[int, ...]]:
    """The index groups asked for, after checking the parameters make sense together."""
    given = {"a": p.concept_a, "b": p.concept_b, "c": p.concept_c, "left": p.left, "right": p.right}
    groups = {k: v for k, v in given.items() if v}
    for wanted in (("a", "b", "c"), ("left", "right")):
        given = [k for k in wanted if k in groups]
        if given and len(given) < len(wanted):
            raise ConfigError(f"{', '.join(map(_key, given))} given without "
                              f"{', '.join(_key(k) for k in wanted if k not in groups)}: "
                              f"expected all of {', '.join(map(_key, wanted))}")
    if not groups:
        raise ConfigError("vector-arithmetic needs concept_a=, concept_b=, concept_c= (A - B + C) and/or left=, "
                          "right= (a direction): "
                          "indices of tiles in `bench sample`'s grid, with z=<grid>.png.z.pt")
    for key, indices in groups.items():
        if len(indices) < MIN_EXEMPLARS:
            raise ConfigError(f"{_key(key)}={','.join(map(str, indices))}: expected at least {MIN_EXEMPLARS} sample "
                              f"indices (the paper averages 3 exemplars per concept)")
    if len(p.turn_scale) != 2:
        raise ConfigError(f"turn_scale={','.join(map(str, p.turn_scale))}: expected two scales (from,to)")
    return groups


def _key(group: str) -> str:
    """The parameter a group of indices came from."""
    return f"concept_{group}" if group in "abc" else group


def load_z(path: str | None, cfg: DCGANConfig) -> torch.Tensor:
    """The z vectors of a ``bench sample`` run as an N x nz tensor, checked against the generator."""
    if not path:
        raise ConfigError("vector-arithmetic needs z=PATH: the <grid>.png.z.pt that `bench sample` writes")
    if not Path(path).is_file():
        raise ConfigError(f"z={path}: no such file; expected the <grid>.png.z.pt that `bench sample` writes")
    try:
        z = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise ConfigError(f"z={path}: not a z file `bench sample` wrote ({type(e).__name__})") from None
    if not isinstance(z, torch.Tensor) or z.dim() not in (2, 4) or not z.is_floating_point():
        raise ConfigError(f"z={path}: expected a float tensor of N z vectors (N x nz or N x nz x 1 x 1)")
    z = z.flatten(1).float()
    if z.shape[1] != cfg.nz:
        raise ConfigError(f"z={path}: holds {z.shape[1]}-dimensional z vectors, the generator takes nz={cfg.nz}")
    return z
