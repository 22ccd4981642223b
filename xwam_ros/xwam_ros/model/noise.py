"""Training-time timestep samplers for (video, action) noise levels.

Sigmas live in [0, 1] (1 = pure noise). Three samplers, selectable by name:

* ``"ans"`` -- Asynchronous Noise Sampling (X-WAM): with probability ``p_clean`` the action is already decoded
  (sigma_a = 0, sigma_v ~ U(0, 1)); otherwise sigma_a ~ U(0, 1) and sigma_v = sigma_a + (1 - sigma_a) * b with
  b ~ Beta(1.5, 1), so the video is never cleaner than the action -- the only region the index-aligned inference
  schedule (video 50 calls, action 10) ever visits.
* ``"independent"`` -- UWM / DreamZero-style: both U(0, 1), independently.
* ``"synchronous"`` -- one shared sigma.

The timestep shift ``s*t / (1 + (s-1)*t)`` is applied afterwards to both; it is monotone, so ordering is preserved.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

SAMPLERS = ("ans", "independent", "synchronous")


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """Wan/X-WAM timestep shift; pushes mass toward high noise for shift > 1."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


@dataclass
class TimestepSample:
    sigma_video: torch.Tensor  # [B]
    sigma_action: torch.Tensor  # [B]; states share it
    clean_action: torch.Tensor  # [B] bool: action/state are conditions, not targets


def _beta(batch: int, a: float, b: float, generator: torch.Generator | None) -> torch.Tensor:
    """Beta(a, b) draws from ``generator`` only (torch.distributions.Beta cannot take a Generator).

    Beta(a, 1) uses its inverse CDF u ** (1/a) (exact, one uniform per sample); general b uses X / (X + Y) with
    X ~ Gamma(a), Y ~ Gamma(b) drawn by torch._standard_gamma, which takes the generator (as the official code's
    sample_beta does)."""
    if b == 1.0:
        return torch.rand(batch, generator=generator, dtype=torch.float64) ** (1.0 / a)
    x = torch._standard_gamma(torch.full((batch,), a, dtype=torch.float64), generator=generator)
    y = torch._standard_gamma(torch.full((batch,), b, dtype=torch.float64), generator=generator)
    return x / (x + y)


def sample_timesteps(kind: str, batch: int, generator: torch.Generator | None = None, p_clean: float = 0.5,
                     beta: tuple[float, float] = (1.5, 1.0), shift: float = 5.0) -> TimestepSample:
    """Draw per-sample (sigma_video, sigma_action) for one training batch."""
    if kind not in SAMPLERS:
        raise ValueError(f"sampler kind {kind!r} is not one of {SAMPLERS}")
    if not 0.0 <= p_clean <= 1.0:
        raise ValueError(f"p_clean must be in [0, 1], got {p_clean}")
    u_a = torch.rand(batch, generator=generator, dtype=torch.float64)
    u_v = torch.rand(batch, generator=generator, dtype=torch.float64)
    clean = torch.zeros(batch, dtype=torch.bool)
    if kind == "ans":
        clean = torch.rand(batch, generator=generator, dtype=torch.float64) < p_clean
        b = _beta(batch, beta[0], beta[1], generator)
        joint_v = u_a + (1.0 - u_a) * b
        sigma_a = torch.where(clean, torch.zeros_like(u_a), u_a)
        sigma_v = torch.where(clean, u_v, joint_v)
    elif kind == "independent":
        sigma_a, sigma_v = u_a, u_v
    else:
        sigma_a = sigma_v = u_v
    return TimestepSample(sigma_video=shift_sigma(sigma_v, shift).float(),
                          sigma_action=shift_sigma(sigma_a, shift).float(), clean_action=clean)
