"""Inverse-depth normalisation used for the depth branch's pseudo-RGB targets, and its inverse.

X-WAM encodes depth as inverse depth replicated into three channels in [-1, 1]. The paper does not state the range;
we use an explicit metric range [near, far] (config ``depth_near``/``depth_far``):

    x = 2 * (1/d - 1/far) / (1/near - 1/far) - 1

so d = near maps to +1 and d = far to -1. Depths outside the range are clipped; invalid depths (NaN, <= 0) map to -1
(the far plane), which keeps VAE inputs finite.

``near`` and ``far`` are scalars or one value per view (the first axis of the depth array): the codes are only 8 bits
of a latent's worth of resolution, and one range for a wrist camera (a few cm) and a static one (metres) leaves each
view a sliver of [-1, 1] (XWAMConfig.depth_ranges).
"""
from __future__ import annotations

import numpy as np


def _check_range(near, far) -> None:
    if not np.all((0 < np.asarray(near)) & (np.asarray(near) < np.asarray(far))):
        raise ValueError(f"depth range must satisfy 0 < near < far, got near={near}, far={far}")


def _per_view(value, x: np.ndarray) -> np.ndarray:
    """A scalar as is; one value per view reshaped to broadcast over x's trailing axes."""
    a = np.asarray(value, np.float64)
    if a.ndim == 0:
        return a
    if a.ndim != 1 or len(a) != x.shape[0]:
        raise ValueError(f"depth range: {a.shape} values for {x.shape[0]} views (shape {x.shape})")
    return a.reshape(a.shape + (1,) * (x.ndim - 1))


def invalid_to_far(depth_m: np.ndarray, far) -> np.ndarray:
    """NaN depths (no reading) set to the far plane, per view when ``far`` is."""
    d = np.asarray(depth_m, np.float32)
    return np.where(np.isnan(d), _per_view(far, d), d).astype(np.float32)


def metric_to_inverse_depth(depth_m: np.ndarray, near: float, far: float) -> np.ndarray:
    _check_range(near, far)
    d = np.asarray(depth_m, np.float64)
    near, far = _per_view(near, d), _per_view(far, d)
    valid = np.isfinite(d) & (d > 0)
    d = np.clip(np.where(valid, d, far), near, far)
    x = 2.0 * (1.0 / d - 1.0 / far) / (1.0 / near - 1.0 / far) - 1.0
    return x.astype(np.float32)


def inverse_depth_to_metric(x: np.ndarray, near: float, far: float) -> np.ndarray:
    _check_range(near, far)
    x = np.clip(np.asarray(x, np.float64), -1.0, 1.0)
    near, far = _per_view(near, x), _per_view(far, x)
    inv = (x + 1.0) / 2.0 * (1.0 / near - 1.0 / far) + 1.0 / far
    return (1.0 / inv).astype(np.float32)
