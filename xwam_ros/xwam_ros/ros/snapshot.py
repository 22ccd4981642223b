"""A PNG picture of imagined point clouds without RViz: a perspective splat with a z-buffer, one panel per view
direction, future steps tinted from the observation's colours to orange so the motion is visible."""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class StepView:
    """What one future step looked like: imagined and (when it was seen) observed clouds and RGB-D of one view."""
    t_s: float
    imagined: tuple  # (points [N,3], colors [N,3] uint8) in the base frame
    observed: tuple | None = None
    imagined_rgb: np.ndarray | None = None  # [H, W, 3] uint8
    observed_rgb: np.ndarray | None = None
    imagined_depth: np.ndarray | None = None  # [H, W] metres
    observed_depth: np.ndarray | None = None


def framing_pose(points: np.ndarray, fovy: float = 50.0, azimuth_deg: float = -35.0, elevation_deg: float = 35.0):
    """An oblique camera that frames ``points`` (robust: the 5-95 % box, so a few far background points do not
    shrink the scene to a dot)."""
    lo, hi = np.percentile(points, [5, 95], axis=0)
    center, radius = (lo + hi) / 2, max(float(np.linalg.norm(hi - lo)) / 2, 0.05)
    dist = 1.15 * radius / np.tan(np.deg2rad(fovy) / 2)
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    eye = center + dist * np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at(eye, center)


def _far(depth) -> float:
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0)
    return float(np.percentile(d[d > 0], 99)) if (d > 0).any() else 1.0


def _depth_image(depth, hw, near: float = 0.0, far: float = 1.0) -> np.ndarray:
    d = np.nan_to_num(np.asarray(depth, np.float32), nan=0.0)
    u8 = (255 * np.clip((d - near) / max(far - near, 1e-6), 0, 1)).astype(np.uint8)
    return cv2.resize(cv2.applyColorMap(u8, cv2.COLORMAP_TURBO)[..., ::-1], hw[::-1], interpolation=cv2.INTER_NEAREST)


def _label(img, text, scale: float = 0.45) -> np.ndarray:
    img = img.copy()
    cv2.putText(img, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def future_grid(steps: list, path, panel_hw=(240, 320)) -> np.ndarray:
    """One column per future step: observed cloud over imagined cloud, both from the same camera that frames the
    observed scene (table, object, gripper), then real | imagined RGB and depth strips of one view. Missing
    observations (the future not yet seen) are grey panels saying so. Writes ``path`` (PNG) and returns the image."""
    h, w = panel_hw
    seen = [s.observed[0] for s in steps if s.observed is not None and len(s.observed[0])]
    anchor = np.concatenate(seen) if seen else np.concatenate([s.imagined[0] for s in steps])
    T = framing_pose(anchor)
    blank = lambda text: _label(np.full((h, w, 3), 60, np.uint8), text)  # noqa: E731
    half = (h // 2, w // 2)
    cols = []
    for s in steps:
        obs = (blank(f"t+{s.t_s:.2f} s: not observed") if s.observed is None
               else _label(splat(*s.observed, T, panel_hw), f"observed  t+{s.t_s:.2f} s"))
        parts = [obs, _label(splat(*s.imagined, T, panel_hw), "imagined")]
        # both depth images on the real one's colour scale, so a colour means the same distance in both
        far = _far(s.observed_depth if s.observed_depth is not None else s.imagined_depth) \
            if s.imagined_depth is not None else 1.0
        for real, pred, name, draw in ((s.observed_rgb, s.imagined_rgb, "RGB", lambda x: cv2.resize(x, half[::-1])),
                                       (s.observed_depth, s.imagined_depth, "depth",
                                        lambda x: _depth_image(x, half, far=far))):
            if pred is None:
                continue
            left = np.full((*half, 3), 60, np.uint8) if real is None else draw(real)
            parts.append(np.concatenate([_label(left, f"real {name}", 0.35),
                                         _label(draw(pred), f"imagined {name}", 0.35)], 1))
        cols.append(np.concatenate(parts, 0))
    rows = max(c.shape[0] for c in cols)
    img = np.concatenate([np.pad(c, ((0, rows - c.shape[0]), (0, 4), (0, 0))) for c in cols], axis=1)
    cv2.imwrite(str(path), img[..., ::-1])
    return img
