"""Invariants of the training objective (model/loss.py), on a real tiny transformer.

The paper/official masks (docs/reference xwam-paper-notes "Masks"): the video loss excludes latent frame 0, the state
loss excludes state 0 and invalid dims, the action loss excludes invalid dims, clean-action ANS samples have zero
action and state loss, each term is a masked mean, the depth term is an unmasked MSE over all frames, all weights 1.
Exact equalities are used where the masked entries enter only through a multiplication by 0.
"""
import pytest
import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.loss import TrainBatch, training_loss
from xwam_ros.model.noise import TimestepSample
from xwam_ros.model.transformer import XWAMOutput, XWAMTransformer

B = 3


@pytest.fixture(scope="module")
def setup():
    cfg = get_preset("tiny", height=32, width=32)
    torch.manual_seed(0)
    net = XWAMTransformer(cfg)
    g = torch.Generator().manual_seed(1)
    shape_v = (B, cfg.latent_channels, cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w)
    batch = TrainBatch(torch.randn(shape_v, generator=g), torch.randn(B, cfg.num_actions, cfg.action_dim, generator=g),
                       torch.randn(B, cfg.num_states, cfg.state_dim, generator=g),
                       torch.randn(B, cfg.text_len, cfg.text_dim, generator=g),
                       depth_latents=torch.randn(shape_v, generator=g))
    noise = (torch.randn(shape_v, generator=g), torch.randn(batch.actions.shape, generator=g),
             torch.randn(batch.states.shape, generator=g))
    # sample 0: clean action (ANS case 1); samples 1, 2: noisy action, video noisier
    ts = TimestepSample(torch.tensor([0.4, 0.9, 0.7]), torch.tensor([0.0, 0.6, 0.3]),
                        torch.tensor([True, False, False]))
    return cfg, net, batch, noise, ts


class Tamper(torch.nn.Module):
    """The real network, with a function applied to its outputs (to show which outputs the loss reads)."""

    def __init__(self, net, fn):
        super().__init__()
        self.net, self.fn, self.last = net, fn, None

    def forward(self, *a, **k):
        out = self.net(*a, **k)
        self.last = self.fn(out)
        return self.last


def _loss(model, batch, noise, ts):
    return training_loss(model, batch, timesteps=ts, noise=noise, text_dropout=0.0)


def test_frame0_and_state0_outputs_and_noise_do_not_change_the_loss(setup):
    cfg, net, batch, noise, ts = setup
    with torch.no_grad():
        ref = _loss(net, batch, noise, ts)

        def garbage(out):
            v, s = out.video.clone(), out.states.clone()
            v[:, :, 0] += 100.0
            s[:, 0] += 100.0
            return XWAMOutput(v, out.actions, s, out.depth)
        tampered = _loss(Tamper(net, garbage), batch, noise, ts)
        eps_v, eps_a, eps_s = (n.clone() for n in noise)
        eps_v[:, :, 0] += 5.0  # frame 0 and state 0 are clean conditions: their noise is never used
        eps_s[:, 0] += 5.0
        renoised = _loss(net, batch, (eps_v, eps_a, eps_s), ts)
    for k in ("video", "action", "state", "depth", "loss"):
        assert torch.equal(tampered[k], ref[k]), k
        assert torch.equal(renoised[k], ref[k]), k
    # ... while the other frames and states do count
    with torch.no_grad():
        def shift_frame1(out):
            v, s = out.video.clone(), out.states.clone()
            v[:, :, 1] += 100.0  # large, so the rise (~100^2 x the share of frame 1 / state 1) does not depend on
            s[:, 1] += 100.0  # the sign of the network's error there (seed-independent)
            return XWAMOutput(v, out.actions, s, out.depth)
        moved = _loss(Tamper(net, shift_frame1), batch, noise, ts)
    assert moved["video"] > ref["video"] + 100 and moved["state"] > ref["state"] + 100


def test_clean_action_samples_give_zero_action_and_state_gradient(setup):
    cfg, net, batch, noise, ts = setup
    keep = Tamper(net, lambda out: out)

    def grads():
        out = keep.last
        out.actions.retain_grad()
        out.states.retain_grad()
        return out
    res = _loss(keep, batch, noise, ts)
    out = grads()
    res["loss"].backward()
    ga, gs = out.actions.grad, out.states.grad
    assert torch.count_nonzero(ga[0]) == 0 and torch.count_nonzero(gs[0]) == 0  # sample 0: clean action
    assert torch.count_nonzero(ga[1:]) == ga[1:].numel()
    assert torch.count_nonzero(gs[1:, 0]) == 0 and torch.count_nonzero(gs[1:, 1:]) == gs[1:, 1:].numel()
    net.zero_grad()
    # a batch of only clean-action samples: no gradient reaches the action/state decoders at all
    all_clean = TimestepSample(ts.sigma_video, torch.zeros(B), torch.ones(B, dtype=torch.bool))
    _loss(net, batch, noise, all_clean)["loss"].backward()
    for mod in (net.action_decoder, net.proprio_decoder):
        assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in mod.parameters())
    assert torch.count_nonzero(net.head.head.weight.grad) > 0
    net.zero_grad()


def test_each_term_is_the_masked_mean_the_paper_gives(setup):
    cfg, net, batch, noise, ts = setup
    a_mask = torch.ones(B, cfg.action_dim)
    a_mask[2, -3:] = 0  # single-arm sample: padded dims
    s_mask = torch.ones(B, cfg.state_dim)
    s_mask[1, :2] = 0
    mb = TrainBatch(batch.video_latents, batch.actions, batch.states, batch.text_embeds, a_mask, s_mask,
                    batch.depth_latents)
    keep = Tamper(net, lambda out: out)
    with torch.no_grad():
        res = _loss(keep, mb, noise, ts)
    out = keep.last
    eps_v, eps_a, eps_s = noise
    # independent reference: explicit loops over the entries that the paper keeps
    sq_v = (out.video - (eps_v - batch.video_latents)) ** 2
    want_v = sq_v[:, :, 1:].mean()
    vals_a, vals_s = [], []
    for b in range(B):
        if ts.clean_action[b]:
            continue
        for d in range(cfg.action_dim):
            if a_mask[b, d]:
                vals_a.append((out.actions[b, :, d] - (eps_a[b, :, d] - batch.actions[b, :, d])) ** 2)
        for d in range(cfg.state_dim):
            if s_mask[b, d]:
                vals_s.append((out.states[b, 1:, d] - (eps_s[b, 1:, d] - batch.states[b, 1:, d])) ** 2)
    want_a, want_s = torch.cat(vals_a).mean(), torch.cat(vals_s).mean()
    want_d = ((out.depth - batch.depth_latents) ** 2).mean()  # all frames, frame 0 included, no mask
    # float32 sums in a different order: relative 1e-6 is ~10x the measured spread
    for k, want in (("video", want_v), ("action", want_a), ("state", want_s), ("depth", want_d)):
        torch.testing.assert_close(res[k], want, rtol=1e-5, atol=0, msg=k)
    torch.testing.assert_close(res["loss"], want_v + want_a + want_s + want_d, rtol=1e-5, atol=0)


def test_masked_dims_get_no_gradient(setup):
    cfg, net, batch, noise, ts = setup
    a_mask = torch.ones(B, cfg.action_dim)
    a_mask[:, 0] = 0
    mb = TrainBatch(batch.video_latents, batch.actions, batch.states, batch.text_embeds, a_mask, None,
                    batch.depth_latents)
    keep = Tamper(net, lambda out: out)
    res = _loss(keep, mb, noise, ts)
    keep.last.actions.retain_grad()
    res["loss"].backward()
    assert torch.count_nonzero(keep.last.actions.grad[:, :, 0]) == 0
    assert torch.count_nonzero(keep.last.actions.grad[1:, :, 1:]) > 0
    net.zero_grad()
