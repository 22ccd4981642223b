import numpy as np
import pytest
import torch

from xwam_ros.model.noise import sample_timesteps, shift_sigma

N = 200_000


def _unshift(s, shift=5.0):
    return s / (shift - (shift - 1.0) * s)


def _ks(samples, cdf):
    x = np.sort(samples)
    emp = np.arange(1, len(x) + 1) / len(x)
    return np.max(np.abs(emp - cdf(x)))


def test_shift_is_monotone_and_fixes_endpoints():
    s = torch.linspace(0, 1, 101, dtype=torch.float64)
    out = shift_sigma(s, 5.0)
    assert out[0] == 0 and out[-1] == 1
    assert torch.all(out[1:] > out[:-1])
    assert torch.allclose(_unshift(out), s)


def test_ans_video_never_cleaner_than_action_and_clean_share():
    g = torch.Generator().manual_seed(0)
    ts = sample_timesteps("ans", N, g, p_clean=0.5)
    assert torch.all(ts.sigma_video >= ts.sigma_action)
    assert abs(ts.clean_action.float().mean().item() - 0.5) < 0.01
    assert torch.all(ts.sigma_action[ts.clean_action] == 0)


def test_ans_marginals_match_formulas():
    g = torch.Generator().manual_seed(1)
    ts = sample_timesteps("ans", N, g, p_clean=0.5, shift=1.0)  # unshifted to compare with closed forms
    joint = ~ts.clean_action
    t_a = ts.sigma_action[joint].double().numpy()
    t_v = ts.sigma_video[joint].double().numpy()
    assert _ks(t_a, lambda x: x) < 0.01  # U(0,1)
    b = (t_v - t_a) / (1 - t_a)
    assert _ks(b, lambda x: x ** 1.5) < 0.01  # Beta(1.5, 1) CDF
    assert abs(b.mean() - 0.6) < 0.01
    assert _ks(ts.sigma_video[ts.clean_action].double().numpy(), lambda x: x) < 0.01


def test_shifted_marginal_of_independent():
    g = torch.Generator().manual_seed(2)
    ts = sample_timesteps("independent", N, g, shift=5.0)
    u = _unshift(ts.sigma_video.double()).numpy()
    assert _ks(u, lambda x: x) < 0.01
    assert (ts.sigma_video < ts.sigma_action).float().mean() > 0.4  # independent: visits t_v < t_a


def test_synchronous_shares_sigma():
    ts = sample_timesteps("synchronous", 1000, torch.Generator().manual_seed(3))
    assert torch.equal(ts.sigma_video, ts.sigma_action)


def test_bad_kind():
    with pytest.raises(ValueError, match="sampler kind"):
        sample_timesteps("nope", 4)
