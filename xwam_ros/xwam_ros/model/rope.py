"""3D rotary position embedding for the joint (video, action, state) sequence.

Wan's RoPE, unchanged for video: the head dim d is split into a time part d - 4*(d//6) and height/width parts of
2*(d//6) each; each part rotates adjacent channel pairs (2i, 2i+1) -- the complex-number view of the original code --
by position * theta^(-2i/part). Every view reuses the same integer (frame, h, w) positions: only the learned view
embedding tells views apart (the paper keeps the pretrained RoPE untouched). Action and state tokens live on the
video's time axis at fractional positions (action k at k / (4 * actions_per_frame), state j at j / 4, in latent-frame units)
with h = w = 0, so the model aligns them with frames by positional proximity. Angles are computed in float64 and the
resulting cos/sin tables are cached per (layout, device, dtype).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channel counts of the (time, height, width) parts of one head."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def _inv_freq(part: int, theta: float) -> torch.Tensor:
    return 1.0 / torch.pow(torch.tensor(theta, dtype=torch.float64),
                           torch.arange(0, part, 2, dtype=torch.float64) / part)


@dataclass(frozen=True)
class SequenceLayout:
    """Token counts of one sequence; hashable so it can key the table cache."""
    latent_frames: int
    num_views: int
    grid_h: int  # tokens per view along h (latent_h / patch)
    grid_w: int
    num_actions: int
    num_states: int
    actions_per_frame: int

    @classmethod
    def from_config(cls, cfg, num_actions: int | None = None, num_states: int | None = None) -> "SequenceLayout":
        return cls(cfg.latent_frames, cfg.num_views, cfg.latent_h // cfg.patch_size[1],
                   cfg.latent_w // cfg.patch_size[2], cfg.num_actions if num_actions is None else num_actions,
                   cfg.num_states if num_states is None else num_states, cfg.actions_per_frame)

    @property
    def num_video_tokens(self) -> int:
        return self.latent_frames * self.num_views * self.grid_h * self.grid_w

    @property
    def seq_len(self) -> int:
        return self.num_video_tokens + self.num_actions + self.num_states


def video_positions(frames: int, views: int, gh: int, gw: int) -> torch.Tensor:
    """[frames*views*gh*gw, 3] float64 (t, h, w) in token order (frame, view, h, w); identical for every view."""
    f, hh, ww = torch.meshgrid(torch.arange(frames), torch.arange(gh), torch.arange(gw), indexing="ij")
    grid = torch.stack([f, hh, ww], dim=-1).to(torch.float64)  # [F, gh, gw, 3]
    return grid[:, None].expand(-1, views, -1, -1, -1).reshape(-1, 3)


def token_positions(layout: SequenceLayout) -> torch.Tensor:
    """[seq_len, 3] float64 positions in sequence order: video, actions, states."""
    video = video_positions(layout.latent_frames, layout.num_views, layout.grid_h, layout.grid_w)
    t_act = torch.arange(layout.num_actions, dtype=torch.float64) / (4 * layout.actions_per_frame)
    t_state = torch.arange(layout.num_states, dtype=torch.float64) / 4.0

    def on_time_axis(t):  # h = w = 0
        return torch.cat([t[:, None], torch.zeros(t.numel(), 2, dtype=torch.float64)], dim=1)

    return torch.cat([video, on_time_axis(t_act), on_time_axis(t_state)], dim=0)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> torch.Tensor:
    """[L, head_dim // 2] float64 rotation angles, one per adjacent channel pair."""
    parts = rope_split(head_dim)
    return torch.cat([positions[:, i:i + 1].to(torch.float64) * _inv_freq(p, theta)[None]
                      for i, p in enumerate(parts)], dim=1)


_CACHE: dict = {}


def rope_tables(layout: SequenceLayout, head_dim: int, theta: float, device, dtype=torch.float32):
    """(cos, sin), each [seq_len, head_dim // 2], cached per (layout, head_dim, theta, device, dtype)."""
    key = (layout, head_dim, float(theta), str(torch.device(device)), dtype)
    if key not in _CACHE:
        if len(_CACHE) > 64:  # layouts are few in practice; bound memory anyway
            _CACHE.clear()
        # built outside inference mode: a table first made by the policy (inference_mode) is reused by training,
        # and inference tensors cannot take part in autograd
        with torch.inference_mode(False), torch.no_grad():
            ang = rope_angles(token_positions(layout), head_dim, theta)
            _CACHE[key] = (ang.cos().to(device, dtype), ang.sin().to(device, dtype))
    return _CACHE[key]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, L, H, d] pairwise by tables [L, d/2]; math in float32 (float64 if x is), like the original."""
    dtype = x.dtype
    xf = x if x.dtype == torch.float64 else x.float()
    c, s = cos[None, :, None].to(xf.dtype), sin[None, :, None].to(xf.dtype)
    if torch.compiler.is_compiling():  # inductor fuses the real form; complex tensors would break its graph
        a, b = xf[..., 0::2], xf[..., 1::2]
        return torch.stack([a * c - b * s, a * s + b * c], dim=-1).flatten(-2).to(dtype)
    # the pair (a, b) as a + ib times c + is: one complex multiply instead of six strided real ops and a stack, the
    # same products and sums (bit-identical here), 10x faster at the mid preset's [221, 2, 8, 64] q/k
    rotated = torch.view_as_complex(xf.contiguous().unflatten(-1, (-1, 2))) * torch.complex(c, s)
    return torch.view_as_real(rotated).flatten(-2).to(dtype)
