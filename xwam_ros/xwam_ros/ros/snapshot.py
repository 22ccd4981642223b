"""A PNG picture of imagined point clouds without RViz: a perspective splat with a z-buffer, one panel per view
direction, future steps tinted from the observation's colours to orange so the motion is visible."""
from __future__ import annotations

import cv2
import numpy as np

from ..geometry.camera import look_at


def splat(points: np.ndarray, colors: np.ndarray, T_base_cam: np.ndarray, hw=(360, 480), fovy=50.0,
          radius: int = 1) -> np.ndarray:
    """Render coloured points seen from T_base_cam (optical frame) into a uint8 RGB image."""
    h, w = hw
    f = 0.5 * h / np.tan(np.deg2rad(fovy) / 2)
    img = np.full((h, w, 3), 25, np.uint8)
    if len(points) == 0:
        return img
    T_cam_base = np.linalg.inv(T_base_cam)
    p = points @ T_cam_base[:3, :3].T + T_cam_base[:3, 3]
    ok = p[:, 2] > 0.05
    p, c = p[ok], colors[ok]
    u = np.round(f * p[:, 0] / p[:, 2] + w / 2).astype(int)
    v = np.round(f * p[:, 1] / p[:, 2] + h / 2).astype(int)
    order = np.argsort(-p[:, 2])  # far first, near overwrite
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            uu, vv = u[order] + dx, v[order] + dy
            m = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
            img[vv[m], uu[m]] = c[order][m]
    return img


def snapshot(step_clouds: list, path, center=None, observed=None) -> None:
    """step_clouds: [(points, colors)] per future step; ``observed`` (points, colors) is drawn dimmed for context.
    Writes a two-panel PNG (oblique and top-down) looking at ``center`` (default: the median imagined point, so any
    robot's base frame works)."""
    n = len(step_clouds)
    pts, cols = [], []
    if observed is not None and len(observed[0]):
        pts.append(observed[0])
        cols.append((observed[1].astype(np.float32) * 0.35).astype(np.uint8))
    for k, (p, c) in enumerate(step_clouds):
        tint = k / max(n - 1, 1)
        c = (c.astype(np.float32) * (1 - 0.5 * tint) + np.array([255, 140, 0]) * 0.5 * tint).astype(np.uint8)
        pts.append(p)
        cols.append(c)
    p = np.concatenate(pts) if pts else np.zeros((0, 3))
    c = np.concatenate(cols) if cols else np.zeros((0, 3), np.uint8)
    if center is None:
        imagined = [q for q, _ in step_clouds if len(q)]
        center = np.median(np.concatenate(imagined), axis=0) if imagined else np.zeros(3)
    center = np.asarray(center, np.float64)
    views = [look_at(center + [0.9, -0.5, 0.65], center), look_at(center + [0.0, 0.0, 1.25], center, up=(1, 0, 0))]
    panels = [splat(p, c, T) for T in views]
    img = np.concatenate(panels, axis=1)
    cv2.putText(img, f"imagined 4D future: {n} steps (later = more orange); observed scene dimmed", (8, 20),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
    cv2.imwrite(str(path), img[..., ::-1])
