"""The inference fast paths give the outputs of the plain path: fused q/k/v (built from the official parameters and
rebuilt when they change), the per-instruction text K/V cache of the policy, and ``compile: true``."""
import copy

import numpy as np
import pytest
import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import Observation, XWAMPolicy
from xwam_ros.model.transformer import XWAMTransformer
from forward_inputs import forward_inputs

# measured max |difference| of fused vs separate projections: <= 1e-6 (tiny, seeds 0/1, 1 and 2 threads)
TOL = 1e-5


def _max_diff(a, b):
    return max((getattr(a, n) - getattr(b, n)).abs().max().item() for n in ("video", "actions", "states", "depth"))


@pytest.mark.parametrize("seed", [0, 1])
def test_fused_inference_path_equals_the_autograd_path_and_follows_weight_changes(seed):
    torch.manual_seed(seed)
    c = get_preset("tiny")
    net = XWAMTransformer(c).eval()
    inp = forward_inputs(c, seed)
    with torch.no_grad():
        fused = net(*inp, run_depth=True)
    plain = net(*inp, run_depth=True)  # grad enabled: the separate q, k, v projections of the original
    assert _max_diff(fused, plain) < TOL
    other = XWAMTransformer(c).eval()
    net.load_state_dict(other.state_dict(), strict=True)  # in place: the fused weights must be rebuilt
    with torch.no_grad():
        after, ref = net(*inp, run_depth=True), other(*inp, run_depth=True)
    assert _max_diff(after, ref) < TOL and _max_diff(after, fused) > 1e-3
    assert set(net.state_dict()) == set(other.state_dict())  # official keys only, nothing fused saved


def test_policy_text_cache_is_reused_and_renewed_when_its_weights_change():
    cfg = get_preset("tiny")
    policy = XWAMPolicy.from_config(cfg)
    with torch.inference_mode():
        first = policy._text("pick up the cube")
        assert policy._text("pick up the cube") is first  # computed once per instruction
        assert policy._text("open the drawer") is not first
    with torch.no_grad():
        policy.transformer.blocks[2].cross_attn.k.weight.mul_(2.0)  # e.g. an optimizer step between validations
    with torch.inference_mode():
        renewed = policy._text("pick up the cube")
    assert renewed is not first and not torch.equal(renewed.main[2][0], first.main[2][0])
    assert torch.equal(renewed.main[0][0], first.main[0][0])


@pytest.mark.slow
def test_compiled_forward_equals_eager():
    """compile: true (inductor, needs a C++ compiler) against eager; measured max |diff| ~1e-6."""
    torch.manual_seed(0)
    c = get_preset("tiny")
    eager = XWAMTransformer(c).eval()
    comp = XWAMTransformer(c.replace(compile=True)).eval()
    comp.load_state_dict(eager.state_dict(), strict=True)
    inp = forward_inputs(c)
    with torch.inference_mode():
        for depth in (False, True):
            a, b = eager(*inp, run_depth=depth), comp(*inp, run_depth=depth)
            names = ("video", "actions", "states") + (("depth",) if depth else ())
            assert max((getattr(a, n) - getattr(b, n)).abs().max().item() for n in names) < TOL
    assert set(comp.state_dict()) == set(eager.state_dict())


@pytest.mark.parametrize("stride", [16, 8])
def test_fast_paths_of_the_vae_equal_diffusers_own_modules(stride):
    """The frame-0 2D-convolution shortcut (vae.FirstFrameCausalConv3d) and the sum-of-squares channel norm
    (vae.ChannelRMSNorm) against diffusers' own WanCausalConv3d / WanRMS_norm on the same weights, and the single-frame
    encode (LatentCodec._posterior_mode, oneDNN-packed frame-0 kernels) against diffusers' encode: one frame and a
    whole clip, encode and decode. Measured max |diff| <= 2.2e-6 (decode)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm

    from xwam_ros.model.vae import ChannelRMSNorm, FirstFrameCausalConv3d, LatentCodec
    cfg = get_preset("tiny", vae_stride=(4, stride, stride))
    fast = LatentCodec.tiny(cfg, seed=3)
    for m in fast.vae.modules():  # non-trivial norm weights, so a scale or bias mistake shows
        if isinstance(m, WanRMS_norm):
            m.gamma.data.uniform_(0.5, 1.5)
            if isinstance(m.bias, torch.Tensor):
                m.bias.data.uniform_(-0.2, 0.2)
    plain = copy.deepcopy(fast)
    originals = {FirstFrameCausalConv3d: WanCausalConv3d, ChannelRMSNorm: WanRMS_norm}
    swapped = [m for m in plain.vae.modules() if type(m) in originals]
    assert {type(m) for m in swapped} == set(originals)
    assert not any(type(m) in (WanCausalConv3d, WanRMS_norm) for m in fast.vae.modules())
    for m in swapped:
        m.__class__ = originals[type(m)]
    # and diffusers' own chunked encode (LatentCodec's single-frame path skips its chunk cache)
    plain._posterior_mode = lambda x: plain.vae.encode(x).latent_dist.mode()
    video = torch.rand(1, cfg.num_views, 3, cfg.num_frames, cfg.height, cfg.width,
                       generator=torch.Generator().manual_seed(stride)) * 2 - 1
    for frames in (1, cfg.num_frames):
        z_fast, z_plain = fast.encode(video[:, :, :, :frames]), plain.encode(video[:, :, :, :frames])
        assert (z_fast - z_plain).abs().max().item() < TOL
        assert (fast.decode(z_plain) - plain.decode(z_plain)).abs().max().item() < TOL


def test_frame0_kernel_caches_follow_new_weights():
    """The frame-0 kernels cached per convolution (contiguous slice, oneDNN-packed copy) are rebuilt when the weights
    change in place (load_state_dict, an optimizer step): a codec that encoded before loading another's weights then
    encodes exactly as that other codec."""
    from xwam_ros.model.vae import LatentCodec
    cfg = get_preset("tiny")
    a, b = LatentCodec.tiny(cfg, seed=1), LatentCodec.tiny(cfg, seed=2)
    frame = torch.rand(1, cfg.num_views, 3, 1, cfg.height, cfg.width, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        before = a.encode(frame * 2 - 1)
        a.vae.load_state_dict(b.vae.state_dict())
        after, want = a.encode(frame * 2 - 1), b.encode(frame * 2 - 1)
    assert (before - want).abs().max().item() > 1e-2  # different weights, different latents
    assert (after - want).abs().max().item() < TOL


def test_a_codec_with_packed_frame0_kernels_copies_and_pickles():
    """A codec that has encoded (oneDNN-packed kernels cached, tensors without storage) deep-copies and pickles as
    the policy's imagination thread and inference process need, and the copies encode exactly as the original."""
    import pickle

    from xwam_ros.model.vae import LatentCodec
    cfg = get_preset("tiny")
    codec = LatentCodec.tiny(cfg, seed=4)
    frame = torch.rand(1, cfg.num_views, 3, 1, cfg.height, cfg.width, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want = codec.encode(frame * 2 - 1)
    for other in (copy.deepcopy(codec), pickle.loads(pickle.dumps(codec))):
        with torch.inference_mode():
            assert (other.encode(frame * 2 - 1) - want).abs().max().item() < TOL
