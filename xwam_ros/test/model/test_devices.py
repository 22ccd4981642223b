"""Device and dtype placement without a GPU (issue 11, target 5).

The meta device stands in for an accelerator: a meta tensor meeting a CPU tensor in one op raises, and the query
runs without data (shapes only), so a whole policy query -- VAE encode, text, every transformer call, diffusers'
UniPC steps, the video continuation -- placed on meta proves nothing is left on, or created on, the CPU on the way.
"""
import numpy as np
import pytest
import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import Observation, XWAMPolicy
from xwam_ros.model.transformer import XWAMTransformer
from xwam_ros.model.vae import LatentCodec
from forward_inputs import forward_inputs


def _obs(cfg, seed=0):
    rng = np.random.default_rng(seed)
    return Observation(rng.integers(0, 255, (cfg.num_views, cfg.height, cfg.width, 3), dtype=np.uint8),
                       rng.normal(size=cfg.state_dim).astype(np.float32), "pick up the cube")


def test_a_whole_query_runs_on_the_policy_device():
    cfg = get_preset("tiny", action_steps=2, video_steps=3)
    policy = XWAMPolicy.from_config(cfg).to("meta")
    for mod in (policy.transformer, policy.codec, policy.text_encoder):
        assert {p.device.type for p in mod.parameters()} == {"meta"}
    res = policy.denoise_actions(_obs(cfg))
    assert res.actions.device.type == "meta" and res.actions.shape == (1, cfg.num_actions, cfg.action_dim)
    assert res.states.device.type == "meta" and res.states.shape == (1, cfg.num_states, cfg.state_dim)
    video, depth = policy.denoise_video(res)  # the imagination's remaining calls, depth branch on the last
    shape = (1, cfg.latent_channels, cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w)
    assert video.device.type == depth.device.type == "meta" and video.shape == depth.shape == shape


def test_vae_runs_on_its_own_device_and_returns_on_the_callers():
    """A codec on the accelerator (meta) given CPU clips, as the latent cache does: the VAE must run on its own
    device, then hand the latents back to the CPU. Meta has no data to hand back, so the one error allowed is that
    last copy; a CPU input reaching the meta convolutions would fail earlier with a device mismatch."""
    cfg = get_preset("tiny")
    codec = LatentCodec.tiny(cfg).to("meta")
    x = torch.zeros(1, cfg.num_views, 3, 1, cfg.height, cfg.width)
    for fn in (codec.encode, codec.decode):
        arg = x if fn == codec.encode else torch.zeros(1, cfg.latent_channels, 1, cfg.num_views, cfg.latent_h,
                                                       cfg.latent_w)
        with pytest.raises(NotImplementedError, match="Cannot copy out of meta tensor"):
            fn(arg)
    z = codec.encode(x.to("meta"))  # caller on the same device: no copy at all
    assert z.device.type == "meta" and z.shape == (1, cfg.latent_channels, 1, cfg.num_views, cfg.latent_h,
                                                   cfg.latent_w)


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_autocast_forward_is_finite_and_close_to_float32(seed):
    """The paper trains and serves under bf16 autocast. Measured max |bf16 - fp32| / max |fp32|: <= 0.010 (seeds 0
    and 1, 1 and 2 threads, AMD EPYC); bound 0.05. The time embedding and heads stay float32 as in the original."""
    torch.manual_seed(seed)
    c = get_preset("tiny")
    net = XWAMTransformer(c).eval()
    inp = forward_inputs(c, seed)
    with torch.inference_mode():
        ref = net(*inp, run_depth=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = net(*inp, run_depth=True)
            _, e0 = net.time_modulation(torch.full((1, 3), 500))
    assert e0.dtype == torch.float32
    for name in ("video", "actions", "states", "depth"):
        o, r = getattr(out, name), getattr(ref, name)
        assert o.dtype == torch.float32 and torch.isfinite(o).all(), name
        rel = ((o - r).abs().max() / r.abs().max()).item()
        assert 0 < rel < 0.05, f"{name}: {rel:.3g}"  # > 0: autocast did run in bf16
