"""Process-group helpers: one process (CPU or GPU) or ``torchrun`` with DDP (gloo on CPU, nccl on GPU)."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed():
    """(rank, world_size); initialises the process group when launched by torchrun with more than one process."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device_for(rank: int) -> torch.device:
    return torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")


def global_denominator(world: int):
    """Masked-mean denominators summed over ranks. DDP averages gradients over ranks, so dividing each rank's sum by
    (global count / world) makes the averaged gradient equal the single-process global masked mean."""
    def fn(local: torch.Tensor) -> torch.Tensor:
        if world == 1:
            return local
        total = local.clone()
        dist.all_reduce(total)
        return total / world
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
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t) / world
