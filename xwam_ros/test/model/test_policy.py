"""The policy facade: determinism, resumable imagination, step counts, input checks."""
import numpy as np
import pytest

from xwam_ros.model.config import get_preset
from xwam_ros.model.normalize import Normalizer
from xwam_ros.model.policy import Observation, XWAMPolicy


@pytest.fixture(scope="module")
def policy():
    cfg = get_preset("tiny", action_steps=3, video_steps=7)
    return XWAMPolicy.from_config(cfg, seed=0)


def _obs(cfg, seed=0):
    rng = np.random.default_rng(seed)
    return Observation(rng.integers(0, 255, (cfg.num_views, cfg.height, cfg.width, 3), dtype=np.uint8),
                       rng.normal(size=cfg.state_dim).astype(np.float32), "lift the red cube")


def test_seeded_and_deterministic(policy):
    obs = _obs(policy.config)
    a, b, c = policy.predict_action_chunk(obs, seed=3), policy.predict_action_chunk(obs, seed=3), policy.predict_action_chunk(obs, seed=4)
    assert np.array_equal(a.actions, b.actions) and not np.allclose(a.actions, c.actions)
    assert a.actions.shape == (32, policy.config.action_dim) and a.action_steps == 3
    assert np.array_equal(a.states[0], obs.state)  # state 0 is the given condition


@pytest.mark.slow  # two full 50-call imaginations
def test_continue_equals_imagine_and_leaves_the_result_reusable(policy):
    obs = _obs(policy.config)
    res = policy.predict_action_chunk(obs, seed=1)
    cont1 = policy.continue_imagination(res)
    cont2 = policy.continue_imagination(res)  # the policy result is not consumed
    full = policy.imagine(obs, seed=1)
    assert np.array_equal(cont1.rgb, full.rgb) and np.array_equal(cont1.depth, full.depth)
    assert np.array_equal(cont1.rgb, cont2.rgb)
    assert np.array_equal(full.actions, res.actions)  # actions are final after the action steps
    cfg = policy.config
    assert full.rgb.shape == (cfg.num_views, cfg.num_frames, cfg.height, cfg.width, 3) and full.video_steps == 7
    assert np.all((full.depth >= cfg.depth_near - 1e-4) & (full.depth <= cfg.depth_far + 1e-3))


def test_synchronous_timing_path_gives_the_same_actions(policy):
    obs = _obs(policy.config)
    assert np.array_equal(policy.predict_action_chunk(obs, seed=2).actions, policy.predict_action_chunk(obs, seed=2, depth_every_call=True).actions)


def test_denormalised_outputs_and_save_load(policy, tmp_path):
    cfg = policy.config
    # same state statistics as the identity normaliser (so the model input is unchanged), actions scaled by 0.5
    norm = Normalizer(-np.full(cfg.action_dim, 0.5), np.full(cfg.action_dim, 0.5), -np.ones(cfg.state_dim),
                      np.ones(cfg.state_dim))
    p = XWAMPolicy(policy.transformer, policy.codec, policy.text_encoder, norm, cfg)
    obs = _obs(cfg)
    r = p.predict_action_chunk(obs, seed=0)
    assert np.allclose(r.actions, policy.predict_action_chunk(obs, seed=0).actions * 0.5, atol=1e-5)  # scale-only actions
    p.save_pretrained(tmp_path / "ck")
    q = XWAMPolicy.from_pretrained(tmp_path / "ck")
    assert np.array_equal(q.predict_action_chunk(obs, seed=0).actions, r.actions)


def test_bad_observations(policy):
    cfg = policy.config
    obs = _obs(cfg)
    with pytest.raises(ValueError, match="rgb"):
        policy.predict_action_chunk(Observation(obs.rgb[:, :10], obs.state, ""))
    with pytest.raises(ValueError, match="state"):
        policy.predict_action_chunk(Observation(obs.rgb, np.full(cfg.state_dim, np.nan, np.float32), ""))


def test_from_config_is_seeded_without_touching_the_global_rng():
    import torch

    cfg = get_preset("tiny", action_steps=2, video_steps=2)
    torch.manual_seed(42)
    before = torch.get_rng_state()
    a = XWAMPolicy.from_config(cfg, seed=3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(7)  # another global state: the same seed still gives the same weights
    b = XWAMPolicy.from_config(cfg, seed=3)
    c = XWAMPolicy.from_config(cfg, seed=4)
    sa, sb, sc = (p.transformer.state_dict() for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["blocks.0.self_attn.q.weight"], sc["blocks.0.self_attn.q.weight"])
