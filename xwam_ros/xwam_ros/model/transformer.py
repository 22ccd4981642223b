"""The X-WAM diffusion transformer: Wan2.2-TI2V blocks over one (video, action, state) sequence plus a one-way
depth branch.

Parameter names and maths follow the official checkpoints (see docs/model.md), so ``load_state_dict(strict=True)``
accepts released weights. Things worth knowing:

* every token carries its own timestep; modulation (shift/scale/gate) is computed and applied in float32;
* views are patchified separately by one Conv3d and tagged with a learned view embedding; tokens are ordered
  (latent frame, view, h, w), then actions, then states; attention is full and bidirectional;
* the depth branch copies the last M blocks; its queries attend to [its own K/V ; the main block's K/V] at the same
  layer, while the main branch never sees depth -- so actions and video are bit-identical with or without it;
* text cross-attention K/V depend only on the instruction, so ``prepare_text`` computes them once per query and
  every denoising call reuses them (exact).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import XWAMConfig
from .rope import apply_rope, rope_tables


def sinusoidal_embedding(dim: int, t: torch.Tensor) -> torch.Tensor:
    """Wan's timestep sinusoid: cos half first, then sin, base 10000, built in float64."""
    half = dim // 2
    pos = t.to(torch.float64).reshape(-1)
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    ang = pos[:, None] * freqs[None]
    return torch.cat([ang.cos(), ang.sin()], dim=1).reshape(*t.shape, dim)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the activations' dtype."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype) if self.weight is not None else \
            F.layer_norm(x.float(), self.normalized_shape, eps=self.eps).to(x.dtype)


def _heads(x: torch.Tensor, n: int) -> torch.Tensor:
    return x.unflatten(-1, (n, -1))  # [B, L, H, d]


def _sdpa(q, k, v):
    # SDPA wants [B, H, L, d]; it picks the fastest available kernel for the device
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def qkv(self, x, cos, sin):
        n = self.num_heads
        q = apply_rope(_heads(self.norm_q(self.q(x)), n), cos, sin)
        k = apply_rope(_heads(self.norm_k(self.k(x)), n), cos, sin)
        return q, k, _heads(self.v(x), n)

    def forward(self, x, cos, sin, extra_kv=None, return_kv=False):
        q, k, v = self.qkv(x, cos, sin)
        if extra_kv is not None:  # depth branch: [own K/V ; main branch K/V]
            k, v = torch.cat([k, extra_kv[0]], dim=1), torch.cat([v, extra_kv[1]], dim=1)
        out = self.o(_sdpa(q, k, v))
        return (out, (k, v)) if return_kv else out


class CrossAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q, self.norm_k = RMSNorm(dim, eps), RMSNorm(dim, eps)

    def text_kv(self, context):
        return _heads(self.norm_k(self.k(context)), self.num_heads), _heads(self.v(context), self.num_heads)

    def forward(self, x, kv):
        q = _heads(self.norm_q(self.q(x)), self.num_heads)
        return self.o(_sdpa(q, *kv))


class Block(nn.Module):
    """A Wan2.2 DiT block: modulated self-attention (RoPE), text cross-attention, modulated GELU-tanh FFN."""

    def __init__(self, cfg: XWAMConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = LayerNorm32(d, eps=cfg.eps, elementwise_affine=False)
        self.self_attn = SelfAttention(d, cfg.num_heads, cfg.eps)
        self.norm3 = LayerNorm32(d, eps=cfg.eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(d, cfg.num_heads, cfg.eps)
        self.norm2 = LayerNorm32(d, eps=cfg.eps, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d ** 0.5)

    def forward(self, x, e0, cos, sin, text_kv, extra_kv=None, return_kv=False):
        mod = (self.modulation.float()[None] + e0).unbind(dim=2)  # 6 x [B, L, D], float32
        h = (self.norm1(x).float() * (1 + mod[1]) + mod[0]).to(x.dtype)
        y = self.self_attn(h, cos, sin, extra_kv=extra_kv, return_kv=return_kv)
        y, kv = y if return_kv else (y, None)
        x = (x.float() + y.float() * mod[2]).to(x.dtype)
        x = x + self.cross_attn(self.norm3(x), text_kv)
        y = self.ffn((self.norm2(x).float() * (1 + mod[4]) + mod[3]).to(x.dtype))
        x = (x.float() + y.float() * mod[5]).to(x.dtype)
        return (x, kv) if return_kv else x


class Head(nn.Module):
    """Affine-free LayerNorm, shift/scale from the time embedding, then a linear map back to patches."""

    def __init__(self, cfg: XWAMConfig):
        super().__init__()
        d = cfg.dim
        self.norm = LayerNorm32(d, eps=cfg.eps, elementwise_affine=False)
        self.head = nn.Linear(d, math.prod(cfg.patch_size) * cfg.latent_channels)
        self.modulation = nn.Parameter(torch.randn(1, 2, d) / d ** 0.5)

    def forward(self, x, e):
        shift, scale = (self.modulation.float()[None] + e.float()[:, :, None]).unbind(dim=2)
        return self.head((self.norm(x).float() * (1 + scale) + shift).to(x.dtype))


def _mlp(i: int, hidden: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, o))


@dataclass
class XWAMOutput:
    video: torch.Tensor  # velocity [B, C, T, V, h, w]
    actions: torch.Tensor  # velocity [B, Ta, A]
    states: torch.Tensor  # velocity [B, Tp, S]
    depth: torch.Tensor | None  # clean depth latent [B, C, T, V, h, w]


@dataclass
class TextCache:
    """Per-block text K/V for one instruction (main blocks, then depth blocks)."""

    main: list
    depth: list


class XWAMTransformer(nn.Module):
    def __init__(self, cfg: XWAMConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.latent_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = _mlp(cfg.text_dim, d, d)
        self.view_embedding = nn.Embedding(cfg.num_views, d)
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(cfg)
        self.extra_blocks = nn.ModuleList([nn.ModuleList(Block(cfg) for _ in range(cfg.num_depth_layers))])
        self.extra_heads = nn.ModuleList([Head(cfg)])
        self.action_encoder = _mlp(cfg.action_dim, d, d)
        self.action_decoder = _mlp(d, d, cfg.action_dim)
        self.proprio_encoder = _mlp(cfg.proprio_dim, d, d)
        self.proprio_decoder = _mlp(d, d, cfg.proprio_dim)
        self.gradient_checkpointing = False
        self.init_new_parts()
        self.init_depth_branch_from_main()

    # --- initialisation --------------------------------------------------------------------------------------------
    def init_new_parts(self) -> None:
        """X-WAM's additions to Wan start from N(0, 0.02) (view embedding, action/state MLPs, depth head)."""
        mods = [self.view_embedding, self.action_encoder, self.action_decoder, self.proprio_encoder,
                self.proprio_decoder, self.extra_heads]
        for m in mods:
            for name, p in m.named_parameters():
                if name.endswith("bias"):
                    nn.init.zeros_(p)
                else:
                    nn.init.normal_(p, std=0.02)

    @torch.no_grad()
    def init_depth_branch_from_main(self) -> None:
        """Depth block j starts as a copy of main block N - M + j."""
        n0 = self.cfg.num_main_only_layers
        for j, blk in enumerate(self.extra_blocks[0]):
            blk.load_state_dict(self.blocks[n0 + j].state_dict())

    # --- token plumbing --------------------------------------------------------------------------------------------
    def patchify(self, video: torch.Tensor) -> torch.Tensor:
        """[B, C, T, V, h, w] -> [B, T*V*gh*gw, D] with the view embedding added, order (frame, view, h, w)."""
        b, _, t, v = video.shape[:4]
        x = self.patch_embedding(video.permute(0, 3, 1, 2, 4, 5).flatten(0, 1))  # [B*V, D, T, gh, gw]
        x = x.unflatten(0, (b, v)) + self.view_embedding.weight[None, :, :, None, None, None].to(x.dtype)
        return x.permute(0, 3, 1, 4, 5, 2).flatten(1, 4)  # [B, T, V, gh, gw, D] -> tokens

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T*V*gh*gw, p0*p1*p2*C] -> [B, C, T, V, h, w] (channel fastest inside a patch, as in Wan)."""
        c = self.cfg
        p0, p1, p2 = c.patch_size
        gh, gw = c.latent_h // p1, c.latent_w // p2
        x = x.reshape(x.shape[0], c.latent_frames, c.num_views, gh, gw, p0, p1, p2, c.latent_channels)
        x = x.permute(0, 8, 1, 5, 2, 3, 6, 4, 7)  # B, C, T, p0, V, gh, p1, gw, p2
        return x.reshape(x.shape[0], c.latent_channels, c.latent_frames * p0, c.num_views, c.latent_h, c.latent_w)

    def embed_text(self, text_embeds: torch.Tensor) -> torch.Tensor:
        """Pad to text_len with zeros (Wan attends over the padded context too), then the text MLP."""
        L = self.cfg.text_len
        if text_embeds.shape[1] > L:
            raise ValueError(f"text has {text_embeds.shape[1]} tokens, more than text_len {L}")
        pad = text_embeds.new_zeros(text_embeds.shape[0], L - text_embeds.shape[1], text_embeds.shape[2])
        return self.text_embedding(torch.cat([text_embeds, pad], dim=1))

    def prepare_text(self, text_embeds: torch.Tensor) -> TextCache:
        ctx = self.embed_text(text_embeds.to(self.patch_embedding.weight.dtype))
        return TextCache([b.cross_attn.text_kv(ctx) for b in self.blocks],
                         [b.cross_attn.text_kv(ctx) for b in self.extra_blocks[0]])

    def _time(self, video_t, action_t, state_t, b):
        c = self.cfg
        vt = video_t if video_t.ndim == 2 else video_t[:, None].expand(b, c.latent_frames)
        per_frame = c.num_views * c.tokens_per_view
        t = torch.cat([vt.repeat_interleave(per_frame, dim=1), action_t, state_t], dim=1).float()  # [B, L]
        e = self.time_embedding(sinusoidal_embedding(c.freq_dim, t).float().to(self.time_embedding[0].weight.dtype))
        e = e.float()
        e0 = self.time_projection(e.to(self.time_projection[1].weight.dtype)).float().unflatten(2, (6, c.dim))
        return e, e0

    # --- forward ---------------------------------------------------------------------------------------------------
    def _run(self, blk, *args, **kw):
        if self.gradient_checkpointing and self.training:
            return checkpoint(blk, *args, use_reentrant=False, **kw)
        return blk(*args, **kw)

    def forward(self, video_latents, video_timesteps, text_embeds, actions, action_timesteps, states,
                state_timesteps, run_depth: bool = False, text_cache: TextCache | None = None) -> XWAMOutput:
        c = self.cfg
        b = video_latents.shape[0]
        dtype = self.patch_embedding.weight.dtype
        if text_cache is None:
            if text_embeds is None:
                raise ValueError("pass text_embeds or a text_cache from prepare_text()")
            text_cache = self.prepare_text(text_embeds)
        nv = c.num_video_tokens
        x = torch.cat([self.patchify(video_latents.to(dtype)), self.action_encoder(actions.to(dtype)),
                       self.proprio_encoder(states.to(dtype))], dim=1)
        e, e0 = self._time(video_timesteps, action_timesteps, state_timesteps, b)
        cos, sin = rope_tables(c, x.device)
        n0 = c.num_main_only_layers
        for i in range(n0):
            x = self._run(self.blocks[i], x, e0, cos, sin, text_cache.main[i])
        depth = None
        if run_depth and c.num_depth_layers:
            y, e0v, cv, sv = x[:, :nv], e0[:, :nv], cos[:nv], sin[:nv]
            for j, dblk in enumerate(self.extra_blocks[0]):
                x, kv = self._run(self.blocks[n0 + j], x, e0, cos, sin, text_cache.main[n0 + j], return_kv=True)
                y = self._run(dblk, y, e0v, cv, sv, text_cache.depth[j], extra_kv=kv)
            depth = self.unpatchify(self.extra_heads[0](y, e[:, :nv]))
        else:
            for i in range(n0, c.num_layers):
                x = self._run(self.blocks[i], x, e0, cos, sin, text_cache.main[i])
        video = self.unpatchify(self.head(x[:, :nv], e[:, :nv]))
        acts = self.action_decoder(x[:, nv:nv + c.num_actions])
        sts = self.proprio_decoder(x[:, nv + c.num_actions:])
        return XWAMOutput(video, acts, sts, depth)
