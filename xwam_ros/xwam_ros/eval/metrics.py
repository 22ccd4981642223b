"""Image, depth and point-cloud metrics of the paper's Table 3 protocol (numpy / OpenCV / SciPy, no learned weights).

LPIPS needs network weights that cannot be downloaded here; evaluators report it as skipped.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import cKDTree


def psnr(pred: np.ndarray, target: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of uint8-range images; inf when identical."""
    mse = float(np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak ** 2 / mse)


def ssim(pred: np.ndarray, target: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, per channel then averaged), as in Wang et al. 2004."""
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    x, y = pred.astype(np.float64), target.astype(np.float64)
    blur = lambda a: cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def depth_metrics(pred: np.ndarray, target: np.ndarray) -> dict:
    """AbsRel and delta < 1.25 over pixels where both depths are valid (finite, > 0)."""
    valid = np.isfinite(pred) & np.isfinite(target) & (pred > 0) & (target > 0)
    if not valid.any():
        return {"abs_rel": float("nan"), "delta1": float("nan"), "valid_px": 0}
    p, t = pred[valid].astype(np.float64), target[valid].astype(np.float64)
    ratio = np.maximum(p / t, t / p)
    return {"abs_rel": float(np.mean(np.abs(p - t) / t)), "delta1": float(np.mean(ratio < 1.25)),
            "valid_px": int(valid.sum())}


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance: mean nearest-neighbour distance a->b plus b->a (metres)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    da, _ = cKDTree(b).query(a, k=1)
    db, _ = cKDTree(a).query(b, k=1)
    return float(da.mean() + db.mean())
