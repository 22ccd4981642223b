"""Multi-view RGB-D fusion into one coloured cloud in the robot base frame, and voxel downsampling.

Voxel downsampling is done with numpy (``np.unique`` over integer voxel keys, then per-voxel means): open3d is not
installable on our CPU machines without a 600 MB wheel and system libraries, and this is the only part we would use.
"""
from __future__ import annotations

import numpy as np

from .camera import transform_points, unproject


def view_points(depth: np.ndarray, rgb: np.ndarray, K: np.ndarray, T_base_cam: np.ndarray, min_depth: float,
                max_depth: float, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One view's valid pixels as base-frame points [N, 3] float32 and colours [N, 3] uint8."""
    depth = np.asarray(depth, np.float32)[::stride, ::stride]
    rgb = np.asarray(rgb)[::stride, ::stride]
    if rgb.shape[:2] != depth.shape:
        raise ValueError(f"rgb {rgb.shape[:2]} and depth {depth.shape} sizes differ")
    K = np.array(K, np.float64)
    # pixel j of the subsampled grid *is* pixel stride*j of the full one (slicing, not pooling), so fx, fy, cx and cy
    # all scale by 1/stride; the half-pixel shift of scale_intrinsics belongs to resizing (area averaging) only
    K[:2] /= stride
    valid = (np.isfinite(depth) & (depth >= min_depth) & (depth <= max_depth)).reshape(-1)
    pts = unproject(depth, K)[valid]
    return transform_points(T_base_cam, pts).astype(np.float32), rgb.reshape(-1, 3)[valid].astype(np.uint8)


def fuse_views(depths, rgbs, Ks, T_base_cam, min_depth=0.05, max_depth=5.0,
               voxel: float | None = None, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Fuse V views ([V,H,W] metric depth, [V,H,W,3] rgb, [V,3,3] K, [V,4,4] T_base_cam) into one cloud.

    A view whose extrinsic is None (its TF not known yet) is left out; min/max depth: one value or one per view."""
    if not (len(depths) == len(rgbs) == len(Ks) == len(T_base_cam)):
        raise ValueError("fuse_views needs one depth, rgb, K and extrinsic per view")
    lo, hi = (np.broadcast_to(np.asarray(x, np.float64), (len(depths),)) for x in (min_depth, max_depth))
    parts = [view_points(depths[v], rgbs[v], Ks[v], T_base_cam[v], lo[v], hi[v], stride)
             for v in range(len(depths)) if T_base_cam[v] is not None]
    points = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, 3), np.float32)
    colors = np.concatenate([c for _, c in parts]) if parts else np.zeros((0, 3), np.uint8)
    if voxel:
        points, colors = voxel_downsample(points, colors, voxel)
    return points, colors


def voxel_downsample(points: np.ndarray, colors: np.ndarray, voxel: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean point and colour per occupied voxel of edge ``voxel`` metres."""
    if voxel <= 0:
        raise ValueError(f"voxel size must be positive, got {voxel}")
    if len(points) == 0:
        return points, colors
    keys = np.floor(points / voxel).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    n = len(counts)
    p = np.zeros((n, 3))
    c = np.zeros((n, 3))
    np.add.at(p, inverse, points)
    np.add.at(c, inverse, colors.astype(np.float64))
    return (p / counts[:, None]).astype(np.float32), np.round(c / counts[:, None]).astype(np.uint8)
