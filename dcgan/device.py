"""Device and precision selection shared by training and the benchmarks."""
from __future__ import annotations

import contextlib
import functools
import os
import warnings

import torch

from dcgan.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an unavailable device is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; expected one of {', '.join(DEVICES)}") from None


def rank_device(device: torch.device, rank: int) -> torch.device:
    """The device of one process of a torchrun job: ``cuda:LOCAL_RANK`` (made the current CUDA device) when
    ``device`` is CUDA without an index and there are several GPUs, else ``device`` itself."""
    if device.type == "cuda" and device.index is None and torch.cuda.device_count() > 1:
        local = int(os.environ.get("LOCAL_RANK", rank))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def autocast(device: torch.device, precision: str):
    """bf16 autocast for convolutions and matmuls; fp32 is a no-op context."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cpu":
        warn_if_bf16_is_emulated()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


@functools.cache
def warn_if_bf16_is_emulated() -> None:
    """bf16 pays off only on CPUs with native bf16 instructions (AVX-512 BF16, AMX); elsewhere
    oneDNN emulates it and a DCGAN step ran about 40x slower than fp32 (AVX2 EPYC, measured)."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if supported is not None and not supported():
        warnings.warn(f"--precision bf16: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
                      "bf16 instructions, so bf16 runs emulated and far slower than fp32; use --precision fp32",
                      stacklevel=3)


def describe_device(device: torch.device) -> str:
    """What ran a job, for a report's footer: the GPU's name, or the CPU's model, vector extension and
    threads (speed on a CPU depends on them: native bf16 or not, AVX-512 or AVX2)."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type != "cpu":
        return str(device)
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:  # not Linux
        import platform

        model = platform.processor()
    capability = torch.backends.cpu.get_cpu_capability()
    return f"cpu ({model or 'unknown model'}, {capability}, {torch.get_num_threads()} threads)"


def keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks instead of returning them to the OS after every step.

    A training step frees and re-allocates the same large activation buffers; with glibc's
    defaults each is unmapped and faulted in again (130k+ page faults per 64 px step here). Raising
    the mmap and trim thresholds keeps them, changes no number, and saved about 8% of a CPU step.
    A no-op off glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):
        return


def seed_everything(seed: int) -> None:
    """Seed the global generators once per run; tasks use explicit generators for their own draws."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
