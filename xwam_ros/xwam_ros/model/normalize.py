"""Quantile normalisation of actions and states, saved with every checkpoint.

Each quantity is mapped linearly so its 1st/99th percentiles land on -1/+1. Actions use a symmetric range [-M, M]
(M = max(|q01|, |q99|)): normalisation is a pure scale, so a zero action (no motion) stays exactly zero. Passthrough
dimensions (e.g. quaternion components, already in [-1, 1]) are left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_EPS = 1e-6  # a dimension that never varies gets unit scale instead of a division by zero


@dataclass
class Normalizer:
    action_low: np.ndarray
    action_high: np.ndarray
    state_low: np.ndarray
    state_high: np.ndarray
    state_passthrough: tuple[int, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("action_low", "action_high", "state_low", "state_high"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise ValueError(f"Normalizer.{name} must be a finite 1-D vector, got {arr!r}")
            setattr(self, name, arr)
        if self.action_low.shape != self.action_high.shape or self.state_low.shape != self.state_high.shape:
            raise ValueError("Normalizer low/high shapes differ")
        if np.any(self.action_low != -self.action_high):
            raise ValueError("Normalizer action range must be symmetric (low == -high)")
        self.state_passthrough = tuple(int(i) for i in self.state_passthrough)
        if any(i < 0 or i >= self.state_dim for i in self.state_passthrough):
            raise ValueError(f"state_passthrough {self.state_passthrough} out of range for state_dim {self.state_dim}")

    @property
    def action_dim(self) -> int:
        return self.action_low.shape[0]

    @property
    def state_dim(self) -> int:
        return self.state_low.shape[0]

    @classmethod
    def fit(cls, actions: np.ndarray, states: np.ndarray, passthrough_state_dims=(), q=(0.01, 0.99)) -> "Normalizer":
        """Statistics from data: actions [N, A], states [N, S] (rows from every step of every episode)."""
        a_lo, a_hi = np.quantile(np.asarray(actions, np.float64), q, axis=0)
        m = np.maximum(np.abs(a_lo), np.abs(a_hi))
        s_lo, s_hi = np.quantile(np.asarray(states, np.float64), q, axis=0)
        return cls(-m, m, s_lo, s_hi, tuple(passthrough_state_dims))

    @classmethod
    def identity(cls, action_dim: int, state_dim: int) -> "Normalizer":
        return cls(-np.ones(action_dim), np.ones(action_dim), -np.ones(state_dim), np.ones(state_dim))

    # --- actions: scale only -------------------------------------------------------------------------------------
    def _action_scale(self) -> np.ndarray:
        return np.maximum(self.action_high, _EPS)

    def normalize_actions(self, a: np.ndarray) -> np.ndarray:
        return (np.asarray(a) / self._action_scale()).astype(np.float32)

    def denormalize_actions(self, a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, np.float64) * self._action_scale()).astype(np.float32)

    # --- states: affine to [-1, 1] -------------------------------------------------------------------------------
    def _state_affine(self) -> tuple[np.ndarray, np.ndarray]:
        centre = (self.state_high + self.state_low) / 2.0
        half = np.maximum((self.state_high - self.state_low) / 2.0, _EPS)
        if self.state_passthrough:
            idx = list(self.state_passthrough)
            centre, half = centre.copy(), half.copy()
            centre[idx], half[idx] = 0.0, 1.0
        return centre, half

    def normalize_states(self, s: np.ndarray) -> np.ndarray:
        centre, half = self._state_affine()
        return ((np.asarray(s, np.float64) - centre) / half).astype(np.float32)

    def denormalize_states(self, s: np.ndarray) -> np.ndarray:
        centre, half = self._state_affine()
        return (np.asarray(s, np.float64) * half + centre).astype(np.float32)

    # --- persistence ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"action": {"low": self.action_low.tolist(), "high": self.action_high.tolist()},
                "state": {"low": self.state_low.tolist(), "high": self.state_high.tolist(),
                          "passthrough": list(self.state_passthrough)},
                "quantiles": [0.01, 0.99]}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        try:
            return cls(np.asarray(d["action"]["low"]), np.asarray(d["action"]["high"]),
                       np.asarray(d["state"]["low"]), np.asarray(d["state"]["high"]),
                       tuple(d["state"].get("passthrough", ())))
        except KeyError as exc:
            raise ValueError(f"normalization dict is missing key {exc}") from exc
