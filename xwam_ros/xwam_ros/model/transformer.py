"""The X-WAM diffusion transformer: Wan2.2-TI2V-5B blocks over one (video, action, state) sequence plus a one-way
depth branch. Parameter names are those of the official checkpoints (official-checkpoint-schema.md), so a released
state dict loads with strict=True.

Residual stream and modulation are float32 whatever the weight dtype (bf16 weights are cast per Linear), matching
the original code's float32 autocast around modulation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import CrossAttention, SelfAttention, linear
from .config import XWAMConfig
from .rope import SequenceLayout, rope_tables


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[...] timesteps -> [..., dim] float64: cos half first, then sin; frequencies 10000^(-i/half)."""
    half = dim // 2
    freqs = torch.pow(torch.tensor(10000.0, dtype=torch.float64),
                      -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    ang = t.to(torch.float64)[..., None] * freqs
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    """Linear, GELU(tanh), Linear: indices 0 and 2 as in the checkpoints."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(approximate="tanh"), nn.Linear(d_hidden, d_out))


def run_mlp(seq: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    return linear(seq[2], linear_gelu(seq[0], x))


def linear_gelu(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """GELU(tanh) of a Linear. Inference on a float32 CPU model takes oneDNN's linear with the GELU fused in as a
    post-op (the op inductor emits for the same pattern): PyTorch's own CPU tanh-GELU costs about as much as the
    matmul before it at the FFN's width (measured 0.9 vs 2.9 ms at 221 x 1536). Same math; elsewhere the plain pair."""
    w = layer.weight
    if (_ONEDNN and not torch.is_grad_enabled() and x.device.type == "cpu" and w.dtype == torch.float32
            and not torch.compiler.is_compiling()):
        return torch.ops.mkldnn._linear_pointwise(x.float(), w, layer.bias, "gelu", [], "tanh")
    return F.gelu(linear(layer, x), approximate="tanh")


# oneDNN (mkldnn) is in every x86/ARM CPU build of PyTorch; checked once so other builds fall back
_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def linear32(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """A Linear evaluated in float32 (time embedding and heads are float32 in the original, which runs them under a
    float32 autocast): also under a bf16 autocast."""
    bias = None if layer.bias is None else layer.bias.float()
    if x.device.type not in ("cpu", "cuda") or not torch.is_autocast_enabled(x.device.type):  # (meta: no autocast)
        return F.linear(x.float(), layer.weight.float(), bias)
    with torch.autocast(x.device.type, enabled=False):
        return F.linear(x.float(), layer.weight.float(), bias)


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Affine-free LayerNorm in float32 (norm1, norm2 and the heads' norm)."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


@dataclass
class TokenTimes:
    """Per-token time conditioning, compact: one row per distinct timestep (a query has about three: the clean
    frame/state 0, the video's and the action's), and each token's row. The time MLPs then run on those rows only,
    and each block adds its modulation to them before one gather to tokens."""
    e: torch.Tensor  # [U, D] float32 (the heads' conditioning)
    e0: torch.Tensor  # [U, 6, D] float32 (the blocks')
    index: torch.Tensor  # [B, L] int64 row of each token

    def narrow(self, n: int) -> "TokenTimes":
        """The first n tokens (the video part, for the depth branch and the video head)."""
        return TokenTimes(self.e, self.e0, self.index[:, :n])


def modulation_per_token(modulation: torch.Tensor, e, scale_chunks) -> torch.Tensor:
    """modulation [1, K, D] + time conditioning -> [B, L, K, D] float32, with 1 already added to the scale chunks
    (``x * (1 + scale)`` of the original, done on the few distinct rows before the gather). ``e`` is a TokenTimes
    (its e0 for K=6, its e for K=2) or a dense per-token [B, L, K, D] tensor."""
    if isinstance(e, TokenTimes):
        rows = e.e0 if modulation.shape[1] == 6 else e.e[:, None]
        m = modulation.float() + rows  # [U, K, D]
    else:
        m = modulation.float().unsqueeze(0) + e
    # built from a list: an index_put into zeros cost ~30 us per call, a third of this function at the tiny preset
    ones = torch.tensor([[float(k in scale_chunks)] for k in range(m.shape[-2])], dtype=m.dtype, device=m.device)
    m = m + ones
    if not isinstance(e, TokenTimes):
        return m
    # index_select, not m[index]: advanced indexing takes a general kernel ~4x slower at [221, 6, 512]
    return m.index_select(0, e.index.flatten()).unflatten(0, e.index.shape)


class XWAMBlock(nn.Module):
    """One Wan block with per-token modulation e [B, L, 6, D] (float32)."""

    def __init__(self, cfg: XWAMConfig):
        super().__init__()
        d = cfg.dim
        self.eps = cfg.eps
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d ** 0.5)
        self.self_attn = SelfAttention(d, cfg.num_heads, cfg.eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps, elementwise_affine=True)
        self.cross_attn = CrossAttention(d, cfg.num_heads, cfg.eps)
        self.ffn = mlp(d, cfg.ffn_dim, d)

    def _mod(self, e):
        """(shift, 1 + scale, gate, shift, 1 + scale, gate), each [B, L, D] float32."""
        return modulation_per_token(self.modulation, e, (1, 4)).unbind(dim=2)

    def attn_in(self, x, e):
        return torch.addcmul(e[0], layer_norm(x, self.eps), e[1])  # norm(x) * (1 + scale) + shift

    def finish(self, x, y, e, text_kv):
        """Everything after self-attention: gated residual, text cross-attention, FFN."""
        x = torch.addcmul(x, y.float(), e[2])
        n3 = self.norm3  # affine LayerNorm, computed in float32 even for bf16 weights (as Wan's WanLayerNorm)
        h = F.layer_norm(x.float(), x.shape[-1:], n3.weight.float(), n3.bias.float(), n3.eps)
        x = x + self.cross_attn(h, text_kv).float()
        h = torch.addcmul(e[3], layer_norm(x, self.eps), e[4])
        return torch.addcmul(x, run_mlp(self.ffn, h).float(), e[5])

    def forward(self, x, e, cos, sin, text_kv, return_kv: bool = False, extra_kv=None):
        e = self._mod(e)
        res = self.self_attn(self.attn_in(x, e), cos, sin, extra_kv=extra_kv, return_kv=return_kv)
        y, kv = res if return_kv else (res, None)
        x = self.finish(x, y, e, text_kv)
        return (x, kv) if return_kv else x


class Head(nn.Module):
    """Affine-free LayerNorm, shift/scale from e + modulation, Linear to patch-volume x channels."""

    def __init__(self, dim: int, out_dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, e) -> torch.Tensor:
        """e: TokenTimes, or dense [B, L, D]."""
        shift, scale1 = modulation_per_token(self.modulation, e if isinstance(e, TokenTimes) else e.unsqueeze(2),
                                             (1,)).unbind(dim=2)
        return linear32(self.head, torch.addcmul(shift, layer_norm(x, self.eps), scale1))


_COMPILED: dict = {}  # id(transformer) -> (transformer, its compiled ``run``), for ``compile: true``


@dataclass
class TextCache:
    """Text cross-attention K/V for every main and depth block; valid for one instruction (batch)."""
    main: list
    depth: list


@dataclass
class XWAMOutput:
    video: torch.Tensor  # velocity [B, C, T, V, h, w]
    actions: torch.Tensor  # velocity [B, Ta, action_dim]
    states: torch.Tensor  # velocity [B, Tp, state_dim]
    depth: torch.Tensor | None  # clean depth latent [B, C, T, V, h, w]


class XWAMTransformer(nn.Module):
    def __init__(self, cfg: XWAMConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        d, p = cfg.dim, cfg.patch_size
        out = math.prod(p) * cfg.latent_channels
        self.patch_embedding = nn.Conv3d(cfg.latent_channels, d, kernel_size=p, stride=p)
        self.text_embedding = mlp(cfg.text_dim, d, d)
        self.view_embedding = nn.Embedding(cfg.num_views, d)
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(XWAMBlock(cfg) for _ in range(cfg.num_layers))
        self.head = Head(d, out, cfg.eps)
        self.extra_blocks = nn.ModuleList([nn.ModuleList(XWAMBlock(cfg) for _ in range(cfg.num_depth_layers))])
        self.extra_heads = nn.ModuleList([Head(d, out, cfg.eps)])
        self.action_encoder = mlp(cfg.action_dim, d, d)
        self.action_decoder = mlp(d, d, cfg.action_dim)
        self.proprio_encoder = mlp(cfg.state_dim, d, d)
        self.proprio_decoder = mlp(d, d, cfg.state_dim)
        self.gradient_checkpointing = False
        self.init_new_parts()
        self.init_depth_branch_from_main()

    # --- initialisation ----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def init_new_parts(self, std: float = 0.02) -> None:
        """Paper: the parts X-WAM adds to Wan (view embedding, action/state MLPs, depth head) start from N(0, 0.02)."""
        for mod in (self.view_embedding, self.action_encoder, self.action_decoder, self.proprio_encoder,
                    self.proprio_decoder, self.extra_heads):
            for name, prm in mod.named_parameters():
                if name.endswith("bias"):
                    prm.zero_()
                else:
                    prm.normal_(0.0, std)

    @torch.no_grad()
    def init_depth_branch_from_main(self) -> None:
        """Depth block j starts as a copy of main block N - M + j."""
        first = self.cfg.num_layers - self.cfg.num_depth_layers
        for j, blk in enumerate(self.extra_blocks[0]):
            blk.load_state_dict(self.blocks[first + j].state_dict())

    def enable_gradient_checkpointing(self, enabled: bool = True) -> "XWAMTransformer":
        """Recompute each block's activations in the backward pass (training memory for compute)."""
        self.gradient_checkpointing = enabled
        return self

    # --- inputs ------------------------------------------------------------------------------------------------------
    def embed_video(self, latents: torch.Tensor) -> torch.Tensor:
        """[B, C, T, V, h, w] -> [B, T*V*gh*gw, D] in (frame, view, h, w) order, view embedding added."""
        b, c, t, v, h, w = latents.shape
        if c != self.cfg.latent_channels or v != self.cfg.num_views:
            raise ValueError(f"video latents {tuple(latents.shape)} do not match C={self.cfg.latent_channels}, "
                             f"V={self.cfg.num_views}")
        per_view = latents.permute(0, 3, 1, 2, 4, 5).reshape(b * v, c, t, h, w)  # each view is its own video
        x = self.patch_embedding(per_view.to(self.patch_embedding.weight.dtype)).float()  # [B*V, D, T, gh, gw]
        x = x.unflatten(0, (b, v)) + self.view_embedding.weight.float()[None, :, :, None, None, None]
        return x.permute(0, 3, 1, 4, 5, 2).flatten(1, 4)  # [B, T, V, gh, gw, D] -> [B, L, D]

    def unpatchify(self, x: torch.Tensor, t: int, gh: int, gw: int) -> torch.Tensor:
        """[B, L, pt*ph*pw*C] (patch-major channels, as Wan) -> [B, C, T, V, h, w]."""
        pt, ph, pw = self.cfg.patch_size
        b, v, c = x.shape[0], self.cfg.num_views, self.cfg.latent_channels
        x = x.reshape(b, t, v, gh, gw, pt, ph, pw, c)
        x = x.permute(0, 8, 1, 5, 2, 3, 6, 4, 7)  # B, C, T, pt, V, gh, ph, gw, pw
        return x.reshape(b, c, t * pt, v, gh * ph, gw * pw)

    @staticmethod
    def _per_token(ts: torch.Tensor, b: int, n: int, repeat: int = 1) -> torch.Tensor:
        """[B] or [B, n] timesteps -> [B, n * repeat] (each entry repeated for its tokens)."""
        ts = torch.as_tensor(ts)
        if ts.ndim == 0:
            ts = ts.expand(b)
        if ts.ndim == 1:
            ts = ts[:, None].expand(b, n)
        if tuple(ts.shape) != (b, n):
            raise ValueError(f"timesteps of shape {tuple(ts.shape)}, expected [{b}] or [{b}, {n}]")
        return ts.repeat_interleave(repeat, dim=1)

    def time_modulation(self, t: torch.Tensor):
        """Per-token timesteps [B, L] -> (e [B, L, D], e0 [B, L, 6, D]); float32 whatever the weight dtype, as the
        original runs this under a float32 autocast."""
        emb = sinusoid(t, self.cfg.freq_dim).float()
        e = linear32(self.time_embedding[2], F.silu(linear32(self.time_embedding[0], emb)))
        e0 = linear32(self.time_projection[1], F.silu(e))
        return e, e0.unflatten(-1, (6, self.cfg.dim))

    def token_times(self, t: torch.Tensor) -> TokenTimes:
        """``time_modulation`` computed once per distinct timestep (the same rows, without L-fold repetition)."""
        if t.device.type == "meta" or torch.compiler.is_compiling():
            # unique() has a data-dependent size: no data on meta, a graph break under torch.compile; one row per
            # token gives the same values
            values, index = t.flatten(), torch.arange(t.numel(), device=t.device).view(t.shape)
        else:
            values, index = torch.unique(t, return_inverse=True)
        e, e0 = self.time_modulation(values)
        return TokenTimes(e, e0, index)

    # --- text --------------------------------------------------------------------------------------------------------
    def prepare_text(self, text_embeds: torch.Tensor) -> TextCache:
        """Embed the text once and compute every block's cross-attention K/V (reused across denoising calls)."""
        ctx = run_mlp(self.text_embedding, text_embeds)
        return TextCache([blk.cross_attn.text_kv(ctx) for blk in self.blocks],
                         [blk.cross_attn.text_kv(ctx) for blk in self.extra_blocks[0]])

    # --- forward -----------------------------------------------------------------------------------------------------
    def _block(self, blk, *args, **kw):
        if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(blk, *args, use_reentrant=False, **kw)
        return blk(*args, **kw)

    def forward(self, *args, **kwargs) -> XWAMOutput:
        """One network call (see ``run``); through torch.compile when the config says ``compile: true``. The compiled
        function is kept outside the module's attributes so state dicts and module structure stay as without."""
        if not self.cfg.compile:
            return self.run(*args, **kwargs)
        compiled = _COMPILED.get(id(self))
        if compiled is None or compiled[0] is not self:
            compiled = _COMPILED[id(self)] = (self, torch.compile(self.run))
        return compiled[1](*args, **kwargs)

    def run(self, video_latents, video_timesteps, text_embeds, actions, action_timesteps, states,
            state_timesteps, run_depth: bool = False, text_cache: TextCache | None = None) -> XWAMOutput:
        """One network call on the joint (video, action, state) sequence.

        Args:
            video_latents: [B, C, T, V, h, w] noisy video latents (latent frame 0 = the clean current frame).
            video_timesteps: [B] or [B, T] in [0, 1000] (sigma x 1000; frame 0 at 0). Integers at inference (the
                scheduler's int64 timesteps), floats in training, as in the official code.
            text_embeds: [B, L, text_dim] encoder output, or None when ``text_cache`` is given.
            actions: [B, Ta, action_dim] noisy normalised actions; action_timesteps: [B] or [B, Ta].
            states: [B, Tp, state_dim] noisy normalised states (state 0 = the current one, clean);
                state_timesteps: [B] or [B, Tp] (state 0 at 0).
            run_depth: also run the depth branch (the main-branch outputs are identical either way).
            text_cache: from ``prepare_text`` (reused across calls for one instruction).

        Returns:
            XWAMOutput: velocities (noise - clean) for video, actions and states, float32; the clean depth latent
            [B, C, T, V, h, w] when ``run_depth``, else None.
        """
        cfg = self.cfg
        b, _, t, _, h, w = video_latents.shape
        gh, gw = h // cfg.patch_size[1], w // cfg.patch_size[2]
        ta, tp = actions.shape[1], states.shape[1]
        layout = SequenceLayout(t, cfg.num_views, gh, gw, ta, tp, cfg.actions_per_frame)
        nv = layout.num_video_tokens
        if text_cache is None:
            if text_embeds is None:
                raise ValueError("pass text_embeds or a text_cache from prepare_text()")
            text_cache = self.prepare_text(text_embeds)

        x = torch.cat([self.embed_video(video_latents), run_mlp(self.action_encoder, actions).float(),
                       run_mlp(self.proprio_encoder, states).float()], dim=1)
        tt = torch.cat([self._per_token(video_timesteps, b, t, cfg.num_views * gh * gw),
                        self._per_token(action_timesteps, b, ta), self._per_token(state_timesteps, b, tp)], dim=1)
        times = self.token_times(tt.to(x.device))
        cos, sin = rope_tables(layout, cfg.head_dim, cfg.rope_theta, x.device)

        split = cfg.num_layers - cfg.num_depth_layers if run_depth else cfg.num_layers
        for i in range(split):
            x = self._block(self.blocks[i], x, times, cos, sin, text_cache.main[i])
        depth = None
        if run_depth:
            x, depth = self._run_depth(x, times, cos, sin, text_cache, nv, split)
            depth = self.unpatchify(depth, t, gh, gw)

        video = self.unpatchify(self.head(x[:, :nv], times.narrow(nv)), t, gh, gw)
        act = run_mlp(self.action_decoder, x[:, nv:nv + ta]).float()
        st = run_mlp(self.proprio_decoder, x[:, nv + ta:]).float()
        return XWAMOutput(video, act, st, depth)

    def _run_depth(self, x, times, cos, sin, text_cache, nv, first):
        """Interleave main block first+j (exposing its K/V) with depth block j; main never reads depth."""
        y = x[:, :nv]
        tv, cv, sv = times.narrow(nv), cos[:nv], sin[:nv]
        for j, dblk in enumerate(self.extra_blocks[0]):
            x, kv = self._block(self.blocks[first + j], x, times, cos, sin, text_cache.main[first + j],
                                return_kv=True)
            y = self._block(dblk, y, tv, cv, sv, text_cache.depth[j], extra_kv=kv)
        return x, self.extra_heads[0](y, tv)
