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


@pytest.mark.parametrize("beta", [(1.5, 1.0), (2.0, 3.0)])
def test_draws_come_from_the_generator_only(beta):
    """Same generator seed -> same draws, for Beta(a, 1) and general Beta(a, b); torch's global RNG untouched."""
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = sample_timesteps("ans", 64, torch.Generator().manual_seed(5), beta=beta)
    torch.manual_seed(999)  # a different global state must not matter
    b = sample_timesteps("ans", 64, torch.Generator().manual_seed(5), beta=beta)
    c = sample_timesteps("ans", 64, torch.Generator().manual_seed(6), beta=beta)
    assert torch.equal(a.sigma_video, b.sigma_video) and torch.equal(a.clean_action, b.clean_action)
    assert not torch.equal(a.sigma_video, c.sigma_video)
    torch.manual_seed(123)
    sample_timesteps("ans", 64, torch.Generator().manual_seed(5), beta=beta)
    assert torch.equal(torch.get_rng_state(), before)


def test_general_beta_marginal():
    g = torch.Generator().manual_seed(4)
    ts = sample_timesteps("ans", N, g, p_clean=0.0, beta=(2.0, 3.0), shift=1.0)
    t_a, t_v = ts.sigma_action.double().numpy(), ts.sigma_video.double().numpy()
    b = (t_v - t_a) / (1 - t_a)
    # Beta(2, 3): CDF 6x^2 - 8x^3 + 3x^4 (closed form), mean 0.4
    assert _ks(b, lambda x: 6 * x ** 2 - 8 * x ** 3 + 3 * x ** 4) < 0.01
    assert abs(b.mean() - 0.4) < 0.005
