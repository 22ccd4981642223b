"""The X-WAM training objective: flow matching on video latents, actions and states, plus depth-latent regression.

x_t = (1 - sigma) * x_0 + sigma * eps, target velocity eps - x_0, network timesteps sigma * 1000.
Masks: latent frame 0 and state 0 are clean conditions (sigma 0) and out of the loss; per-dimension validity masks
drop padded action/state dims (single-arm data in dual-arm slots); in the ANS clean-action case actions and states are
given clean and their losses are zeroed for that sample (it trains action-conditioned video continuation).
The depth head regresses the clean depth latent directly (MSE over all frames), not a velocity. Each term is a masked
mean; all weights are 1 as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .noise import TimestepSample, sample_timesteps


@dataclass
class TrainBatch:
    video_latents: torch.Tensor  # [B, C, T, V, h, w], normalised latents
    actions: torch.Tensor  # [B, Ta, A], normalised
    states: torch.Tensor  # [B, Tp, S], normalised
    text_embeds: torch.Tensor  # [B, L, text_dim]
    action_mask: torch.Tensor | None = None  # [B, A] 1 = valid dim
    state_mask: torch.Tensor | None = None  # [B, S]
    depth_latents: torch.Tensor | None = None  # [B, C, T, V, h, w]

    def to(self, device) -> "TrainBatch":
        return TrainBatch(**{k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in vars(self).items()})


def _masked_mean(sq: torch.Tensor, weight: torch.Tensor, denom_fn=None) -> torch.Tensor:
    """Masked mean. ``denom_fn`` may replace the local weight count (data-parallel training passes the global count
    divided by the world size, so averaging gradients over ranks gives exactly the global masked mean)."""
    weight = weight.expand_as(sq).to(sq.dtype)
    denom = weight.sum() if denom_fn is None else denom_fn(weight.sum().detach())
    return (sq * weight).sum() / denom.clamp_min(1.0)


def _drop_text(text: torch.Tensor, empty: torch.Tensor | None, p: float, gen: torch.Generator | None) -> torch.Tensor:
    if empty is None or p <= 0:
        return text
    drop = torch.rand(text.shape[0], generator=gen) < p
    if not drop.any():
        return text
    empty = empty.to(text).expand(text.shape[0], -1, -1)
    return torch.where(drop.to(text.device)[:, None, None], empty, text)


def _noise_like(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x)


def training_loss(model, batch: TrainBatch, sampler_kind: str = "ans", generator: torch.Generator | None = None,
                  p_clean: float = 0.5, shift: float = 5.0, empty_text: torch.Tensor | None = None,
                  text_dropout: float = 0.1, timesteps: TimestepSample | None = None, noise=None,
                  text_drop: torch.Tensor | None = None, denom_fn=None) -> dict[str, torch.Tensor]:
    """One training step's losses.

    ``generator`` (CPU) makes the draws reproducible. A trainer can instead pass per-sample ``timesteps``, ``noise``
    (eps_video, eps_action, eps_state) and ``text_drop`` (bool [B]) drawn from per-sample generators, so that the
    same sample gets the same noise whatever the number of processes.
    """
    x0v, x0a, x0s = batch.video_latents, batch.actions, batch.states
    b, _, t_lat = x0v.shape[:3]
    ts = timesteps or sample_timesteps(sampler_kind, b, generator, p_clean=p_clean, shift=shift)
    sv = ts.sigma_video.to(x0v)
    sa = ts.sigma_action.to(x0v)
    clean = ts.clean_action.to(x0v.device)

    if noise is None:
        noise = (_noise_like(x0v, generator), _noise_like(x0a, generator), _noise_like(x0s, generator))
    eps_v, eps_a, eps_s = (n.to(x) for n, x in zip(noise, (x0v, x0a, x0s)))
    xv = (1 - sv.view(b, 1, 1, 1, 1, 1)) * x0v + sv.view(b, 1, 1, 1, 1, 1) * eps_v
    xv[:, :, 0] = x0v[:, :, 0]  # the current frame is a clean condition
    xa = (1 - sa.view(b, 1, 1)) * x0a + sa.view(b, 1, 1) * eps_a
    xs = (1 - sa.view(b, 1, 1)) * x0s + sa.view(b, 1, 1) * eps_s
    xs[:, 0] = x0s[:, 0]  # the current state is a clean condition

    t_video = (sv * 1000).view(b, 1).repeat(1, t_lat)
    t_video[:, 0] = 0
    t_action = (sa * 1000).view(b, 1).repeat(1, x0a.shape[1])
    t_state = (sa * 1000).view(b, 1).repeat(1, x0s.shape[1])
    t_state[:, 0] = 0

    if text_drop is not None and empty_text is not None:
        text = torch.where(text_drop.to(x0v.device)[:, None, None],
                           empty_text.to(batch.text_embeds).expand_as(batch.text_embeds), batch.text_embeds)
    else:
        text = _drop_text(batch.text_embeds, empty_text, text_dropout, generator)
    out = model(xv, t_video, text, xa, t_action, xs, t_state, run_depth=batch.depth_latents is not None)

    frame_w = torch.ones(1, 1, t_lat, 1, 1, 1, device=x0v.device)
    frame_w[:, :, 0] = 0
    loss_v = _masked_mean((out.video.float() - (eps_v - x0v).float()) ** 2, frame_w, denom_fn)

    target_w = (~clean).to(x0v.dtype)  # clean-action samples: actions/states are conditions
    a_mask = batch.action_mask if batch.action_mask is not None else torch.ones(b, x0a.shape[2], device=x0a.device)
    s_mask = batch.state_mask if batch.state_mask is not None else torch.ones(b, x0s.shape[2], device=x0s.device)
    a_w = target_w.view(b, 1, 1) * a_mask.view(b, 1, -1).to(x0a.dtype)
    s_w = target_w.view(b, 1, 1) * s_mask.view(b, 1, -1).to(x0s.dtype) * torch.ones(1, x0s.shape[1], 1, device=x0s.device)
    s_w[:, 0] = 0
    loss_a = _masked_mean((out.actions.float() - (eps_a - x0a).float()) ** 2, a_w, denom_fn)
    loss_s = _masked_mean((out.states.float() - (eps_s - x0s).float()) ** 2, s_w, denom_fn)

    loss = loss_v + loss_a + loss_s
    result = {"video": loss_v.detach(), "action": loss_a.detach(), "state": loss_s.detach()}
    if batch.depth_latents is not None:
        loss_d = _masked_mean((out.depth.float() - batch.depth_latents.float()) ** 2,
                              torch.ones(1, device=x0v.device), denom_fn)
        loss = loss + loss_d
        result["depth"] = loss_d.detach()
    result["loss"] = loss
    return result
