"""Resizing RGB-D frames to the model size: one function for the live node, offline replay and training clips, so
every path sees the same pixels (area for colour when shrinking, nearest for depth so edges never blend)."""
from __future__ import annotations

import cv2
import numpy as np

from .camera import scale_intrinsics


def resize_rgbd(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, out_hw: tuple[int, int]):
    """Resize colour (area/bilinear) and depth (nearest: never blend across edges) and scale K to match."""
    h, w = rgb.shape[:2]
    if (h, w) == tuple(out_hw):
        return rgb, depth, np.asarray(K, np.float64)
    interp = cv2.INTER_AREA if out_hw[0] < h else cv2.INTER_LINEAR
    rgb2 = cv2.resize(rgb, (out_hw[1], out_hw[0]), interpolation=interp)
    depth2 = None
    if depth is not None:
        if depth.shape != (h, w):
            raise ValueError(f"depth {depth.shape} and colour {(h, w)} sizes differ (align depth to colour)")
        depth2 = cv2.resize(depth, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_NEAREST)
    return rgb2, depth2, scale_intrinsics(K, (h, w), tuple(out_hw))
