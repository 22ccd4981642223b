"""Safety limits applied to every chunk before anything is sent to the robot (no rclpy).

Order of checks: non-finite values reject the whole chunk; targets are clamped to the joint range; the first target
may not jump more than ``max_step`` away from the measured joint state; every step's change is limited by both
``max_step`` and ``max_velocity * dt``, so the output satisfies every hard limit.

The report counts what was really limited. A *saturating* axis (the gripper: models command "open"/"close" past the
finger range and the hand stops at its end) being clamped to its range is the normal meaning of the command, so it
is reported as ``saturated_steps``, not as a position clamp; clamping the target before the rate limit keeps a
saturated gripper from counting as rate-limited on every step (the output is the same as limiting first and clamping
last, because the previous output always lies inside the range).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SafetyLimits:
    position_min: list[float]
    position_max: list[float]
    max_velocity: list[float]  # rad/s (or m/s) per joint
    max_step: list[float]  # per control step, per joint
    max_observation_age_s: float = 0.5
    max_inference_s: float = 5.0
    saturating: list[int] = field(default_factory=list)  # joint indices whose range clamp is normal (grippers)

    def validate(self, num_joints: int | None = None) -> "SafetyLimits":
        n = len(self.position_min)
        for name in ("position_max", "max_velocity", "max_step"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"safety.{name} has {len(getattr(self, name))} entries, expected {n}")
        if num_joints is not None and n != num_joints:
            raise ValueError(f"safety limits cover {n} joints but the arm has {num_joints}")
        if np.any(np.asarray(self.position_min) >= np.asarray(self.position_max)):
            raise ValueError("safety.position_min must be below position_max for every joint")
        if np.any(np.asarray(self.max_velocity) <= 0) or np.any(np.asarray(self.max_step) <= 0):
            raise ValueError("safety.max_velocity and safety.max_step must be positive")
        if any(not 0 <= i < n for i in self.saturating):
            raise ValueError(f"saturating joint indices {self.saturating} out of range for {n} joints")
        if self.max_observation_age_s <= 0 or self.max_inference_s <= 0:
            raise ValueError("safety.max_observation_age_s and max_inference_s must be positive")
        return self


class ChunkRejected(ValueError):
    """The chunk must not be executed at all; the message says why."""


class SafetyFilter:
    def __init__(self, limits: SafetyLimits):
        self.limits = limits.validate()
        self.lo = np.asarray(limits.position_min, np.float64)
        self.hi = np.asarray(limits.position_max, np.float64)
        self.vmax = np.asarray(limits.max_velocity, np.float64)
        self.smax = np.asarray(limits.max_step, np.float64)

    def apply(self, positions: np.ndarray, dt: float, current: np.ndarray) -> tuple[np.ndarray, dict]:
        """Limit a [K, J] chunk that starts from the measured ``current`` [J]; returns (safe chunk, report)."""
        p = np.asarray(positions, np.float64)
        cur = np.asarray(current, np.float64)
        if p.ndim != 2 or p.shape[1] != self.lo.size or cur.shape != (self.lo.size,):
            raise ChunkRejected(f"chunk {p.shape} / state {cur.shape} do not match {self.lo.size} limited joints")
        if not np.all(np.isfinite(p)):
            raise ChunkRejected("chunk contains NaN or inf")
        if not np.all(np.isfinite(cur)):
            raise ChunkRejected("measured joint state contains NaN or inf")
        step = np.minimum(self.smax, self.vmax * dt)
        outside = (p < self.lo) | (p > self.hi)
        sat = np.zeros(self.lo.size, bool)
        sat[list(self.limits.saturating)] = True
        target = np.clip(p, self.lo, self.hi)
        out, n_rate = _rate_limit(target, np.clip(cur, self.lo, self.hi), step)
        return out, {"rate_limited_steps": n_rate,
                     "position_clamped_steps": int(np.sum(np.any(outside & ~sat, axis=1))),
                     "saturated_steps": int(np.sum(np.any(outside & sat, axis=1))),
                     "max_deviation": float(np.max(np.abs(out - p))) if len(p) else 0.0}

    def check_stale(self, obs_stamp_s: float, now_s: float) -> str | None:
        age = now_s - obs_stamp_s
        if age > self.limits.max_observation_age_s:
            return f"observation is {age:.3f} s old (limit {self.limits.max_observation_age_s} s)"
        if age < -0.5:
            return f"observation stamp is {-age:.3f} s in the future (clock mismatch?)"
        return None


def _rate_limit(target: np.ndarray, start: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, int]:
    """out[k] = out[k-1] + clip(target[k] - out[k-1], -step, step), out[-1] = start; and how many steps were limited.

    Sequential in k, so not one numpy expression: up to the first limited step the output is the target itself
    (checked in one vectorised pass, the usual case); from there on a loop over Python floats (a numpy call per step
    cost 0.6 ms per 32-step chunk, more than the rest of the safety stage)."""
    deltas = np.diff(target, axis=0, prepend=start[None])
    over = np.any(np.abs(deltas) > step, axis=1)
    if not over.any():
        return target.copy(), 0
    first = int(np.argmax(over))
    out = target.copy()
    prev = (out[first - 1] if first else start).tolist()
    lim = step.tolist()
    n_rate = 0
    for k in range(first, len(target)):
        row, limited = target[k].tolist(), False
        for j, (t, s) in enumerate(zip(row, lim)):
            d = t - prev[j]
            if d > s or d < -s:
                d, limited = (s if d > 0 else -s), True
            prev[j] += d
        out[k] = prev
        n_rate += limited
    return out, n_rate
