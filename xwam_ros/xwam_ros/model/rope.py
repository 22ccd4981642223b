"""3D rotary position embedding for the joint (video, action, state) sequence.

Wan's RoPE, unchanged for video: the head dim d is split into a time part d - 4*(d//6) and height/width parts of
2*(d//6) each; each part rotates adjacent channel pairs by position * theta^(-2i/part). Every view reuses the same
integer (frame, h, w) positions -- only the learned view embedding tells views apart (the paper keeps the pretrained
RoPE untouched). Action and state tokens live on the video's time axis at fractional positions (action k at
k / (4 * action_num), state j at j / 4, in latent-frame units) with h = w = 0, so the model aligns them with frames by
positional proximity. Angles are computed in float64 and cached as cos/sin tables per (config, device).
"""
from __future__ import annotations

import torch


def rope_split(head_dim: int) -> tuple[int, int, int]:
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def _inv_freq(part: int, theta: float) -> torch.Tensor:
    return 1.0 / torch.pow(torch.tensor(theta, dtype=torch.float64),
                           torch.arange(0, part, 2, dtype=torch.float64) / part)


def token_positions(cfg) -> torch.Tensor:
    """[seq_len, 3] float64 (t, h, w) positions in sequence order: video (frame, view, h, w), actions, states."""
    gh, gw = cfg.latent_h // cfg.patch_size[1], cfg.latent_w // cfg.patch_size[2]
    f, hh, ww = torch.meshgrid(torch.arange(cfg.latent_frames), torch.arange(gh), torch.arange(gw), indexing="ij")
    grid = torch.stack([f, hh, ww], dim=-1).to(torch.float64)  # [F, gh, gw, 3]
    video = grid[:, None].expand(-1, cfg.num_views, -1, -1, -1).reshape(-1, 3)  # same positions for every view
    zeros_a = torch.zeros(cfg.num_actions, 2, dtype=torch.float64)
    t_act = torch.arange(cfg.num_actions, dtype=torch.float64) / (4 * cfg.action_num)
    t_state = torch.arange(cfg.num_states, dtype=torch.float64) / 4.0
    actions = torch.cat([t_act[:, None], zeros_a], dim=1)
    states = torch.cat([t_state[:, None], torch.zeros(cfg.num_states, 2, dtype=torch.float64)], dim=1)
    return torch.cat([video, actions, states], dim=0)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """[L, head_dim // 2] float64 rotation angles for the adjacent channel pairs."""
    parts = rope_split(head_dim)
    return torch.cat([positions[:, i:i + 1] * _inv_freq(p, theta)[None] for i, p in enumerate(parts)], dim=1)


_CACHE: dict = {}


def rope_tables(cfg, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each [seq_len, head_dim // 2], cached."""
    key = (cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w, cfg.patch_size, cfg.num_actions,
           cfg.num_states, cfg.action_num, cfg.head_dim, cfg.rope_theta, str(device), dtype)
    if key not in _CACHE:
        ang = rope_angles(token_positions(cfg), cfg.head_dim, cfg.rope_theta)
        _CACHE[key] = (ang.cos().to(device, dtype), ang.sin().to(device, dtype))
    return _CACHE[key]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, L, H, d] (pairs (2i, 2i+1)) by tables [L, d/2]; computed in float32 at least."""
    dtype = x.dtype
    xf = x.float() if x.dtype != torch.float64 else x
    a, b = xf[..., 0::2], xf[..., 1::2]
    c, s = cos[None, :, None].to(xf.dtype), sin[None, :, None].to(xf.dtype)
    out = torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2)
    return out.to(dtype)
