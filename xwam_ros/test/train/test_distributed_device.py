"""Collectives put their tensors on the device the backend reduces on (NCCL: the rank's GPU; gloo: CPU), whatever
device the caller's tensor is on, and hand the result back on the caller's device."""
import pytest
import torch
import torch.distributed as dist

from xwam_ros.train.distributed import (all_reduce_sum, global_denominator, mean_over_ranks, reduction_device)


def test_reduction_device_per_backend():
    assert reduction_device("nccl", torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert reduction_device("NCCL", torch.device("cpu")).type == "cuda"  # a CPU tensor still goes to a GPU
    assert reduction_device("gloo", torch.device("cuda", 1)) == torch.device("cpu")
    assert reduction_device("gloo") == torch.device("cpu")


@pytest.fixture
def gloo_group(tmp_path):
    """A real one-process gloo group (the CPU backend; no GPU here)."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_reductions_run_on_the_gloo_device(gloo_group):
    t = torch.tensor([3.0, 5.0])
    out = all_reduce_sum(t)
    assert out.device == t.device and torch.equal(out, t) and out is not t
    # world=2 as the trainer passes it under torchrun: the one rank's sum divided by the world size
    assert torch.equal(global_denominator(2)(torch.tensor(8.0)), torch.tensor(4.0))
    assert mean_over_ranks(6.0, 2) == 3.0
    meta = torch.zeros(2, device="meta")  # a caller on another device (meta stands in for a GPU under gloo):
    with pytest.raises(NotImplementedError, match="Cannot copy out of meta"):  # moved to the CPU before reducing
        all_reduce_sum(meta)
