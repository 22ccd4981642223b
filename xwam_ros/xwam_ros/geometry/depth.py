"""Inverse-depth normalisation used for the depth branch's pseudo-RGB targets, and its inverse.

X-WAM encodes depth as inverse depth replicated into three channels in [-1, 1]. The paper does not state the range;
we use an explicit metric range [near, far] (config ``depth_near``/``depth_far``):

    x = 2 * (1/d - 1/far) / (1/near - 1/far) - 1

so d = near maps to +1 and d = far to -1. Depths outside the range are clipped; invalid depths (NaN, <= 0) map to -1
(the far plane), which keeps VAE inputs finite.
"""
from __future__ import annotations

import numpy as np


def _check_range(near: float, far: float) -> None:
    if not (0 < near < far):
        raise ValueError(f"depth range must satisfy 0 < near < far, got near={near}, far={far}")


def metric_to_inverse_depth(depth_m: np.ndarray, near: float, far: float) -> np.ndarray:
    _check_range(near, far)
    d = np.asarray(depth_m, np.float64)
    valid = np.isfinite(d) & (d > 0)
    d = np.clip(np.where(valid, d, far), near, far)
    x = 2.0 * (1.0 / d - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0
    return x.astype(np.float32)


def inverse_depth_to_metric(x: np.ndarray, near: float, far: float) -> np.ndarray:
    _check_range(near, far)
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    inv = (x + 1.0) / 2.0 * (1.0 / near - 1.0 / far) + 1.0 / far
    return (1.0 / inv).astype(np.float32)
