import numpy as np
import pytest
import torch

from xwam_ros.model.schedule import AsyncSchedule, LinearUniPC, flow_sigmas, make_scheduler


def test_sigmas_and_timesteps_follow_the_official_convention():
    """Official fm_solvers_unipc.py: sigmas = shift(linspace(0.999, 0, N + 1)[:-1]) then 0; the network timesteps are
    int64(sigma * 1000), truncated."""
    for n in (10, 50):
        ours = flow_sigmas(n, 5.0)
        s = np.linspace(0.999, 0.0, n + 1)[:-1]
        assert np.array_equal(ours[:-1], 5 * s / (1 + 4 * s)) and ours[-1] == 0
        sched = make_scheduler(n, 5.0)
        # diffusers keeps sigmas in float32: at most half an ulp of 1.0 (6e-8) from the float64 values
        assert np.allclose(sched.sigmas.numpy(), ours, atol=1e-7, rtol=0)
        assert sched.timesteps.dtype == torch.int64
        assert np.array_equal(sched.timesteps.numpy(), (ours[:-1] * 1000).astype(np.int64))
    assert make_scheduler(10).timesteps.tolist() == [999, 978, 952, 920, 882, 833, 768, 681, 555, 356]


def test_index_alignment_after_ten_of_fifty_calls():
    sch = AsyncSchedule(50, 10, 5.0)
    assert sch.timesteps_at(0) == (999, 999)
    # after 10 calls the action schedule is exhausted (timestep 0) while the video is still very noisy
    assert sch.sigma_action[10] == 0.0
    s = 0.999 * (1 - 10 / 50)
    assert abs(sch.sigma_video[10] - 5 * s / (1 + 4 * s)) < 1e-12 and 0.95 < sch.sigma_video[10] < 0.955
    assert sch.timesteps_at(10) == (952, 0) and sch.timesteps_at(49)[1] == 0
    # ANS training support: the video is never cleaner than the action at any call
    assert all(sch.timesteps_at(i)[0] >= sch.timesteps_at(i)[1] for i in range(50))
    assert all(sch.sigmas_at(i)[0] >= sch.sigmas_at(i)[1] for i in range(50))


def test_unipc_solves_a_straight_flow_exactly():
    # x_t = (1 - s) x0 + s eps has constant velocity eps - x0: a flow-prediction solver must land on x0.
    torch.manual_seed(0)
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    sched = make_scheduler(10)
    s0 = sched.sigmas[0]  # 0.9998: the official grid starts just below pure noise
    x = (1 - s0) * x0 + s0 * eps
    for t in sched.timesteps:
        x = sched.step(eps - x0, t, x).prev_sample
    assert torch.allclose(x, x0, atol=1e-4)


@pytest.mark.parametrize("steps", [1, 2, 10, 50])
def test_linear_unipc_steps_as_diffusers_does(steps):
    """LinearUniPC against diffusers' UniPC on the same random outputs, including a sample changed between steps
    (the policy pins state 0): every step's prev_sample within float32 rounding (measured <= 6.6e-7 of the largest
    value)."""
    g = torch.Generator().manual_seed(steps)
    ref, fast = make_scheduler(steps, 5.0), LinearUniPC(steps, 5.0)
    assert torch.equal(ref.timesteps, fast.timesteps)
    x_ref = x_fast = torch.randn(2, 3, 5, generator=g)
    for i, t in enumerate(ref.timesteps):
        v = torch.randn(2, 3, 5, generator=g)
        x_ref, x_fast = ref.step(v, t, x_ref).prev_sample, fast.step(v, t, x_fast).prev_sample
        assert torch.allclose(x_fast, x_ref, rtol=1e-5, atol=1e-5 * x_ref.abs().max().item()), i
        pinned = torch.randn(2, 1, 5, generator=g)
        x_ref, x_fast = x_ref.clone(), x_fast.clone()
        x_ref[:, :1], x_fast[:, :1] = pinned, pinned
    with pytest.raises(ValueError, match="steps are done"):
        fast.step(v, 0, x_fast)


def test_linear_unipc_refuses_steps_out_of_order():
    fast = LinearUniPC(10)
    with pytest.raises(ValueError, match="step 0 is at timestep 999, got 978"):
        fast.step(torch.zeros(3), 978, torch.zeros(3))
