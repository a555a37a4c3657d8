"""The training process group under torchrun: joining it, and gathering a small object from every rank."""
from __future__ import annotations

import os

import torch.distributed as dist

from dcgan.device import resolve_device


def gather_objects(obj, world: int) -> list:
    """Every rank's ``obj``, in rank order (a one-element list without DDP)."""
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def join_process_group(device: str) -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): nccl on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0
    if not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return dist.get_world_size(), dist.get_rank()
