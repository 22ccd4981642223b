"""Wan attention layers with the original parameter names (q, k, v, o, norm_q, norm_k).

Attention itself is torch's fused scaled_dot_product_attention. Without autograd (inference), self-attention runs q, k
and v as one fused projection and normalises/rotates q and k together: the fused weights are built from the official
q/k/v parameters on first use and rebuilt when any of them changes (so state dicts keep the official keys and strict
loading still works); with autograd on, the three separate projections run as in the original. Self-attention can return its post-RoPE K/V so the
depth branch can attend to the main branch, and accept extra K/V to concatenate after its own (the depth branch's
"[own K/V ; main K/V]"). Cross-attention K/V depend only on the text, so they can be computed once per instruction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import apply_rope


class RMSNorm(nn.Module):
    """RMSNorm over the whole projection (all heads together), statistics in float32 as in Wan."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm over the last dim with float32 statistics (the math of RMSNorm.forward, for a fused q/k view)."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)).to(x.dtype) * weight


class SourceWatch:
    """Tells whether source tensors changed since the last look: replaced (``.to()``, new storage) or changed in
    place (``load_state_dict``, an optimizer step: the version counter moves). The key of every cache of derived
    weights here (fused concatenations, packed convolution kernels)."""

    def __init__(self):
        self._key, self._sources = None, None

    def changed(self, tensors) -> bool:
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        if key == self._key:
            return False
        # holding the sources keeps their memory from being reused by a new tensor at the same address
        self._key, self._sources = key, [t.detach() for t in tensors]
        return True


class FusedWeights:
    """Concatenations of parameters, cached until any source parameter changes (SourceWatch). Only used without
    autograd -- the cached tensor is not part of any graph. Costs one extra copy of the fused weights in memory."""

    def __init__(self):
        self._watch, self._value = SourceWatch(), None

    def get(self, tensors, dim: int = 0) -> torch.Tensor:
        if self._watch.changed(tensors):
            with torch.no_grad():
                self._value = torch.cat([t.detach() for t in tensors], dim=dim)
        return self._value


def linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """Apply a Linear in its own weight dtype (the residual stream stays float32 for bf16 weights)."""
    return layer(x.to(layer.weight.dtype))


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """[B, Lq, H, d] x [B, Lk, H, d] -> [B, Lq, H*d]; full (unmasked) attention."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2).flatten(2)


class _Projections(nn.Module):
    """The q/k/v/o projections and q/k RMSNorms every Wan attention layer has (original parameter names)."""

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads = num_heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, -1))


class SelfAttention(_Projections):

    def __init__(self, dim: int, num_heads: int, eps: float):
        super().__init__(dim, num_heads, eps)
        self._fused = (FusedWeights(), FusedWeights(), FusedWeights())  # plain attributes: not in the state dict

    def project(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Post-RoPE q, k and v, each [B, L, H, d] (in the weight dtype)."""
        if not torch.is_grad_enabled() and not torch.compiler.is_compiling():  # (inductor fuses on its own)
            return self._project_fused(x, cos, sin)
        q = self._heads(self.norm_q(linear(self.q, x)))
        k = self._heads(self.norm_k(linear(self.k, x)))
        v = self._heads(linear(self.v, x))
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v

    def _project_fused(self, x, cos, sin):
        """``project`` as one [3D, D] matmul, one RMSNorm over the q/k pair and one RoPE over both (same math)."""
        fw, fb, fn = self._fused
        w = fw.get([self.q.weight, self.k.weight, self.v.weight])
        b = fb.get([self.q.bias, self.k.bias, self.v.bias])
        qkv = F.linear(x.to(w.dtype), w, b).unflatten(-1, (3, -1))  # [B, L, 3, D]
        norm_w = fn.get([self.norm_q.weight[None], self.norm_k.weight[None]])  # [2, D]
        qk = rms_norm(qkv[:, :, :2], norm_w, self.norm_q.eps).unflatten(-1, (self.num_heads, -1))  # [B, L, 2, H, d]
        qk = apply_rope(qk, cos[:, None], sin[:, None])
        return qk[:, :, 0], qk[:, :, 1], qkv[:, :, 2].unflatten(-1, (self.num_heads, -1))

    def forward(self, x, cos, sin, extra_kv=None, return_kv: bool = False):
        q, k, v = self.project(x, cos, sin)
        kv = (k, v)
        if extra_kv is not None:  # depth branch: [own K/V ; main K/V]
            k, v = torch.cat([k, extra_kv[0]], dim=1), torch.cat([v, extra_kv[1]], dim=1)
        out = linear(self.o, sdpa(q, k, v))
        return (out, kv) if return_kv else out


class CrossAttention(_Projections):
    """Text cross-attention; `text_kv` computes the (cacheable) keys and values of a context once."""

    def text_kv(self, context: torch.Tensor):
        k = self.norm_k(linear(self.k, context)).unflatten(-1, (self.num_heads, -1))
        v = linear(self.v, context).unflatten(-1, (self.num_heads, -1))
        return k, v

    def forward(self, x: torch.Tensor, kv) -> torch.Tensor:
        q = self.norm_q(linear(self.q, x)).unflatten(-1, (self.num_heads, -1))
        k, v = kv
        if k.shape[0] != q.shape[0]:  # one cached instruction shared by a batch
            k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
        return linear(self.o, sdpa(q, k, v))
