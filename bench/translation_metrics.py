"""The ``translation`` task's pairs, translations and FID: what each (input, target) pair means for the two kinds
of domain, every input translated and cycled back, and the FID per target domain.

Both kinds are handled through 0/1 membership rows: an image's row says which domains it belongs to (one-hot
of its class; its attribute row), a target's row the domains it asks for. A pair translates into another
domain when the two rows differ; its translation lands in domain k from outside it when the target's row
has k and the input's does not (the images FID compares with domain k's real ones); the classifier's
decision about domain k is right when it equals the target's (the class asked for; the flipped attribute).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from bench.features import to_uint8
from bench.results import Measurement
from dcgan.checkpoint import fingerprint
from dcgan.errors import DataError
from dcgan.models.family import to_unit
from dcgan.models.stargan import StarGANConfig, target_grid, translate

L1_FEATURES = "L1 of pixels in [-1, 1]"  # the reconstruction rows' features: G's range, the training's g_rec
CHUNK = 1024  # inputs translated at a time: their K translations sit in memory as floats only for a chunk


class Pairs:
    """The inputs' (input, target) pairs: ``targets`` (N, K) domain indices or (N, K, K) attribute rows (row k of
    input i: its k-th target, ``target_grid``), and as (N, K) masks: ``off``, the pairs translating into
    another domain; ``into``, those whose translation lands in domain k from outside it; ``own_member``, the
    domains each input belongs to."""

    def __init__(self, labels: torch.Tensor, cfg: StarGANConfig):
        self.labels, self.domains, self.multi_label = labels, cfg.domains, cfg.multi_label
        K = len(cfg.domains)
        self.targets = target_grid(labels, cfg)
        self.own_member = self.members(labels)
        target_member = self.members(self.targets)  # (N, K, K): row k, the domains target k asks for
        self.wanted = torch.diagonal(target_member, dim1=1, dim2=2)  # (N, K): target k's value for domain k
        self.off = (target_member != self.own_member[:, None]).any(-1)
        self.into = (self.wanted == 1) & (self.own_member == 0)
        self.K = K

    def members(self, labels: torch.Tensor) -> torch.Tensor:
        """0/1 rows of domain membership of class indices (one-hot) or attribute rows (as they are)."""
        return labels.long() if self.multi_label else F.one_hot(labels.long(), len(self.domains))

    @staticmethod
    def check_domains(data, cfg: StarGANConfig, where: str) -> None:
        """Every domain must have images in ``data`` (a class domain its images, an attribute images that have
        it): one-line ``DataError`` naming the first that has none."""
        if data.labels is None:
            raise DataError(f"{where} has no labels: translation needs the domains of each image")
        members = data.labels.long() if cfg.multi_label else F.one_hot(data.labels.long(), len(cfg.domains))
        counts = members.sum(0)
        for name, n in zip(cfg.domains, counts.tolist()):
            if n == 0:
                what = f"attribute {name!r}: no image of" if cfg.multi_label else f"domain {name!r} has no images in"
                raise DataError(f"{what} {where}")

    def decisions(self, predicted: torch.Tensor) -> torch.Tensor:
        """The classifier's predictions as membership rows (..., K): the class predicted, or the attributes."""
        return self.members(predicted)

    def translated_right(self, decisions: torch.Tensor) -> torch.Tensor:
        """(N, K) whether the classifier's decision about domain k on translation k of each input (decisions
        (N, K, K); (N, 1, K): one image per input, the identity baseline's) is what target k asks for."""
        said = torch.diagonal(decisions.expand(-1, self.K, -1), dim1=1, dim2=2)
        return said == self.wanted

    def real_accuracy(self, decisions: torch.Tensor) -> tuple[float, dict]:
        """The classifier on the real inputs (decisions (N, K)): classes, the share of images whose class it
        gets (per domain: of that domain's images); attributes, of the (image, attribute) values it gets (per
        attribute: over every image)."""
        right = decisions == self.own_member
        if self.multi_label:
            return self.summary(right, torch.ones_like(right))
        return self.summary(right.all(1, keepdim=True).expand(-1, self.K), self.own_member.bool())

    def summary(self, values: torch.Tensor, mask: torch.Tensor, overall: float | None = None) -> tuple[float, dict]:
        """(the mean of ``values`` (N, K) over ``mask``'s pairs, or ``overall``; details: the mean per domain k
        over the pairs of column k, and their counts)."""
        values, mask = values.double(), mask.bool()
        per = {name: float(values[mask[:, k], k].mean()) for k, name in enumerate(self.domains) if mask[:, k].any()}
        counts = {name: int(mask[:, k].sum()) for k, name in enumerate(self.domains)}
        value = float(values[mask].mean()) if overall is None else overall
        return value, {"per_domain": per, "n_per_domain": counts, "pairs": int(mask.sum())}

    def shown_inputs(self, shown: int) -> list[int]:
        """The inputs of the picture: the first ``shown`` of each class domain in domain order, or the first
        ``shown`` x K inputs (attributes)."""
        if self.multi_label:
            return list(range(min(len(self.labels), shown * self.K)))
        return [i for k in range(self.K) for i in torch.nonzero(self.labels == k).flatten()[:shown].tolist()]

    def own_name(self, i: int) -> str:
        return "" if self.multi_label else self.domains[int(self.labels[i])]

    def target_name(self, i: int, k: int) -> str:
        """Target k of input i, as a caption: the domain, or the attribute set (+) or unset (-)."""
        if self.multi_label:
            return ("+" if self.wanted[i, k] else "-") + self.domains[k]
        return self.domains[k]


def _l1(unit: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Per image, the mean absolute difference of two batches of images in [-1, 1]."""
    return (unit - out).abs().flatten(1).mean(1)


def translate_all(G, x: torch.Tensor, pairs: Pairs, ctx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every input of ``x`` (uint8, N) into each of its targets, ``CHUNK`` inputs at a time, on the run's device
    and precision: (the translations rounded to uint8 as saved images are, (N, K, C, S, S); the L1 of each
    input and its translation cycled back, G(G(x, target), own) on G's float outputs, (N, K), NaN for a pair
    into its own domain; the L1 of each input and G(x, own), (N,))."""
    N, K = pairs.off.shape
    fakes = torch.empty((N, K, *x.shape[1:]), dtype=torch.uint8)
    rec, own = torch.full((N, K), float("nan")), torch.empty(N)
    options = dict(batch_size=ctx.batch_size, device=ctx.device, precision=ctx.precision)
    with tqdm(total=N * K, desc="translating", unit="image", disable=None, leave=False) as bar:
        for s in range(0, N, CHUNK):
            xs, labels = x[s:s + CHUNK], pairs.labels[s:s + CHUNK]
            unit = to_unit(xs, False)
            own[s:s + CHUNK] = _l1(unit, translate(G, xs, labels, **options))
            for k in range(K):
                fake = translate(G, xs, pairs.targets[s:s + CHUNK, k], **options)
                fakes[s:s + CHUNK, k] = to_uint8(fake)
                off = pairs.off[s:s + CHUNK, k]
                rec[s:s + CHUNK, k][off] = _l1(unit[off], translate(G, fake[off], labels[off], **options))
                bar.update(len(xs))
    return fakes, rec, own


def fid_rows(ctx, p, x: torch.Tensor, fakes: torch.Tensor, pairs: Pairs, reference, features: str
             ) -> tuple[list[Measurement], str]:
    """FID per domain k of the translations landing in k from outside it (``stargan``) and of those inputs
    unchanged (``identity``), each against the images of domain k in ``reference`` (the train split at three
    channels), and their means over domains; with ``""``, or no rows and why (a domain short of
    ``fid_min_images`` on either side)."""
    from bench import fidelity
    from bench.extractors import EXTRACTORS

    ref_member = pairs.members(reference.labels)
    fake_n, real_n = pairs.into.sum(0).tolist(), ref_member.sum(0).tolist()
    for name, nf, nr in zip(pairs.domains, fake_n, real_n):
        if min(nf, nr) < p.fid_min_images:
            return [], (f"not measured: domain {name!r} has {nf} translated images from outside it and {nr} real "
                        f"train images, fewer than fid_min_images={p.fid_min_images}")
    extractor = EXTRACTORS.get(p.extractor)
    weights = extractor.weights(p.inception_weights)
    options = dict(extractor=p.extractor, weights=weights, device=ctx.device, batch_size=p.inception_batch_size,
                   precision=ctx.precision)
    t0 = time.perf_counter()
    real = fidelity.ImagesOnly(reference)
    real_x, _ = fidelity.fid_features(real, fidelity.real_cache_name(reference, p.extractor, weights, ctx.precision),
                                      **options)
    extracted = real.reads > 0
    fake_x, _ = fidelity.fid_features(fidelity.Tensors(fakes[pairs.into]), None, **options)
    input_x, _ = fidelity.fid_features(fidelity.Tensors(x), None, **options)
    which = pairs.into.nonzero()[:, 1]  # the domain of each row of fake_x, in the order fakes[into] takes them
    per = {"stargan": {}, "identity": {}}
    for k, name in enumerate(pairs.domains):
        real_k = real_x[ref_member[:, k] == 1]
        per["stargan"][name] = fidelity.frechet_distance(fake_x[which == k], real_k)
        per["identity"][name] = fidelity.frechet_distance(input_x[pairs.into[:, k]], real_k)
    common = {"reference": "train", "n_per_domain": dict(zip(pairs.domains, fake_n)),
              "n_real_per_domain": dict(zip(pairs.domains, real_n)), "weights_sha256": fingerprint(weights),
              "real_features": "extracted" if extracted else "cached",
              "metric_seconds": round(time.perf_counter() - t0, 2)}
    return [Measurement("fid", sum(values.values()) / len(values), split=ctx.split_name, model=model,
                        features=features, details={**common, "per_domain": values})
            for model, values in per.items()], ""
