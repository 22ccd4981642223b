import numpy as np
import torch

from xwam_ros.model.schedule import AsyncSchedule, flow_sigmas, make_scheduler


def test_sigmas_match_formula_and_diffusers():
    for n in (10, 50):
        ours = flow_sigmas(n, 5.0)
        s = np.linspace(1, 0.001, n + 1)[:-1]
        assert np.allclose(ours[:-1], 5 * s / (1 + 4 * s)) and ours[-1] == 0
        sched = make_scheduler(n, 5.0)
        assert np.allclose(sched.sigmas.numpy(), ours, atol=2e-6)


def test_index_alignment_after_ten_of_fifty_calls():
    sch = AsyncSchedule(50, 10, 5.0)
    v0, a0 = sch.sigmas_at(0)
    assert v0 == a0 == 1.0
    # after 10 calls the action schedule is exhausted (sigma 0) while the video is still very noisy
    assert sch.sigma_action[10] == 0.0
    s = 1 - 10 * 0.999 / 50
    assert abs(sch.sigma_video[10] - 5 * s / (1 + 4 * s)) < 1e-12 and 0.95 < sch.sigma_video[10] < 0.955
    assert sch.sigmas_at(10)[1] == 0.0 and sch.sigmas_at(49)[1] == 0.0
    # ANS training support: the video is never cleaner than the action at any call
    assert all(sch.sigmas_at(i)[0] >= sch.sigmas_at(i)[1] for i in range(50))


def test_unipc_solves_a_straight_flow_exactly():
    # x_t = (1 - s) x0 + s eps has constant velocity eps - x0: a flow-prediction solver must land on x0.
    torch.manual_seed(0)
    x0, eps = torch.randn(4, 3), torch.randn(4, 3)
    sched = make_scheduler(10)
    x = eps.clone()
    for t in sched.timesteps:
        x = sched.step(eps - x0, t, x).prev_sample
    assert torch.allclose(x, x0, atol=1e-4)
