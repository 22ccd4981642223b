"""Process-group helpers: one process (CPU or GPU) or ``torchrun`` with DDP (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed():
    """(rank, world_size); initialises the process group when launched by torchrun with more than one process."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        if torch.cuda.is_available():  # NCCL works on the current device: make it this rank's GPU
            torch.cuda.set_device(device_for(int(os.environ.get("RANK", 0))))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_for(rank: int) -> torch.device:
    return torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")


def reduction_device(backend: str, device: torch.device | None = None) -> torch.device:
    """Where a tensor must live for a collective of ``backend``: NCCL only reduces CUDA tensors (on this rank's GPU:
    ``device`` when it is a CUDA device, else the current one), gloo CPU tensors."""
    if str(backend).lower() == "nccl":
        if device is not None and torch.device(device).type == "cuda":
            return torch.device(device)
        return torch.device("cuda", torch.cuda.current_device() if torch.cuda.is_available() else 0)
    return torch.device("cpu")


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks, reduced on the backend's device and returned on ``t``'s device (``t`` untouched)."""
    buf = t.detach().to(reduction_device(dist.get_backend(), t.device), copy=True)
    dist.all_reduce(buf)
    return buf.to(t.device)


def global_denominator(world: int):
    """Masked-mean denominators summed over ranks. DDP averages gradients over ranks, so dividing each rank's sum by
    (global count / world) makes the averaged gradient equal the single-process global masked mean."""
    def fn(local: torch.Tensor) -> torch.Tensor:
        if world == 1:
            return local
        return all_reduce_sum(local) / world
    return fn


def wrap_model(net: torch.nn.Module, world: int, device: torch.device):
    """DDP when there is more than one process. For the 5B model, FSDP2 (torch.distributed.fsdp.fully_shard on each
    block, then on the root) shards parameters/optimizer state instead; not wired here (DDP is what is tested)."""
    if world == 1:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)


def mean_over_ranks(value: float, world: int) -> float:
    if world == 1:
        return value
    return float(all_reduce_sum(torch.tensor([value], dtype=torch.float64))) / world
