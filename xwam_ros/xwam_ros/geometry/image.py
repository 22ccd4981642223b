"""Resizing RGB-D frames to the model size: one function for the live node, offline replay and training clips, so
every path sees the same pixels (area for colour when shrinking, nearest for depth so edges never blend)."""
from __future__ import annotations

import cv2
import numpy as np

from .camera import scale_intrinsics


def resize_colour(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Colour [H, W, C] to ``out_hw``: area averaging when shrinking (linear when growing). A large shrink goes down
    an exact 2x area pyramid first while both sides stay at least twice the target: OpenCV's non-integer area path
    costs ~1.1 ms for 640x480 -> 64x64, the pyramid ~0.25 ms. Both are box filters; the pyramid's boxes differ at
    their fractional edges (a few grey levels). 128 -> 64, the simulator's, is one exact 2x step as before."""
    h, w = img.shape[:2]
    th, tw = out_hw
    if (h, w) == (th, tw):
        return img
    if th > h:
        return cv2.resize(img, (tw, th), interpolation=cv2.INTER_LINEAR)
    while h % 2 == 0 and w % 2 == 0 and h >= 2 * th and w >= 2 * tw:
        h, w = h // 2, w // 2
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return img if (h, w) == (th, tw) else cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA)


def resize_rgbd(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, out_hw: tuple[int, int]):
    """Resize colour (area/bilinear) and depth (nearest: never blend across edges) and scale K to match."""
    h, w = rgb.shape[:2]
    if (h, w) == tuple(out_hw):
        return rgb, depth, np.asarray(K, np.float64)
    rgb2 = resize_colour(rgb, tuple(out_hw))
    depth2 = None
    if depth is not None:
        if depth.shape != (h, w):
            raise ValueError(f"depth {depth.shape} and colour {(h, w)} sizes differ (align depth to colour)")
        depth2 = cv2.resize(depth, (out_hw[1], out_hw[0]), interpolation=cv2.INTER_NEAREST)
    return rgb2, depth2, scale_intrinsics(K, (h, w), tuple(out_hw))
