"""Optimiser and learning-rate schedule of the paper (section 6): AdamW, linear warmup then cosine decay to 0."""
from __future__ import annotations

import math

import torch


def lr_lambda(cfg):
    """Multiplier of cfg.lr at a 0-based step: ramps over ``warmup`` steps, then a half cosine that reaches 0 at
    ``steps`` (so the last update is taken at a tiny, not zero, rate)."""
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / (cfg.warmup + 1)
        p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
    return f


def build_optimizer(cfg, params):
    """(AdamW, LambdaLR) over the trainable parameters; weight decay applies to every weight as in the paper."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
