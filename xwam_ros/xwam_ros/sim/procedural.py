"""A small procedural tabletop scene rendered by ray casting in numpy: the built-in camera source's world.

A table plane (z = 0, checkered), three coloured boxes, and a Cartesian gantry arm whose joints are
(x, y, z, roll, pitch, yaw, gripper) -- so its inverse kinematics is exact and trivial, which keeps the built-in demo
honest about what it tests (the ROS plumbing, timing and geometry, not arm control). Cameras: two static ones and a
wrist camera carried by the end effector through a fixed hand-eye transform, all with metric depth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from transforms3d.euler import euler2mat, mat2euler

from ..geometry.camera import intrinsics_from_fovy, look_at, make_transform, pixel_rays

JOINT_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
HOME = np.array([0.0, 0.0, 0.35, np.pi, 0.0, 0.0, 0.04])
# hand-eye: the wrist camera sits 5 cm off the flange axis and looks along the tool z axis (down at home)
T_EE_CAM = make_transform(np.eye(3), np.array([0.0, 0.05, 0.0]))


@dataclass
class Box:
    lo: np.ndarray
    hi: np.ndarray
    color: tuple


def default_boxes() -> list:
    def box(c, s, col):
        c, s = np.asarray(c, float), np.asarray(s, float)
        return Box(c - s / 2, c + s / 2, col)
    return [box([0.10, 0.05, 0.025], [0.05, 0.05, 0.05], (220, 40, 40)),
            box([-0.15, 0.12, 0.04], [0.08, 0.06, 0.08], (40, 180, 60)),
            box([0.05, -0.16, 0.02], [0.12, 0.05, 0.04], (50, 80, 220))]


def default_cameras() -> dict:
    """name -> (kind, extrinsic): T_base_cam for static cameras, T_ee_cam for the wrist camera."""
    return {"agentview": ("static", look_at([0.55, 0.0, 0.45], [0.0, 0.0, 0.05])),
            "sideview": ("static", look_at([0.05, -0.55, 0.4], [0.0, 0.0, 0.05])),
            "eye_in_hand": ("wrist", T_EE_CAM)}


def fk(q: np.ndarray) -> np.ndarray:
    """Gantry forward kinematics: T_base_ee."""
    return make_transform(euler2mat(q[3], q[4], q[5]), q[:3])


def ik(T_base_ee: np.ndarray, gripper: float) -> np.ndarray:
    """Exact inverse kinematics of the gantry."""
    return np.array([*T_base_ee[:3, 3], *mat2euler(T_base_ee[:3, :3]), gripper])


def _ray_box(o, d, box: Box) -> np.ndarray:
    """Entry distance of rays (o, d [N,3]) into an axis-aligned box; inf when missed."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (box.lo - o) / d
        t2 = (box.hi - o) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    hit = (tmax >= np.maximum(tmin, 1e-6))
    return np.where(hit, np.maximum(tmin, 1e-6), np.inf)


@dataclass
class Scene:
    boxes: list = field(default_factory=default_boxes)
    table_colors: tuple = ((200, 190, 170), (150, 140, 125))
    background: tuple = (30, 30, 40)
    gripper_size: float = 0.04
    table_half: float = 0.5  # the table is 1 m x 1 m; beyond it nothing is hit (invalid depth)

    def render(self, K: np.ndarray, T_base_cam: np.ndarray, hw, gripper_T: np.ndarray | None = None):
        """-> (rgb [H,W,3] uint8, depth [H,W] float32 metres, NaN where nothing is hit)."""
        h, w = hw
        rays = pixel_rays(K, h, w).reshape(-1, 3)  # optical frame, z = 1 so distance along ray == depth
        d = rays @ T_base_cam[:3, :3].T
        o = np.broadcast_to(T_base_cam[:3, 3], d.shape)
        best = np.full(len(d), np.inf)
        color = np.tile(np.array(self.background, np.uint8), (len(d), 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_table = np.where(d[:, 2] < 0, -o[:, 2] / d[:, 2], np.inf)
        p = o + d * np.where(np.isfinite(t_table), t_table, 0)[:, None]
        hit = np.isfinite(t_table) & (np.abs(p[:, 0]) < self.table_half) & (np.abs(p[:, 1]) < self.table_half)
        best[hit] = t_table[hit]
        checker = ((np.floor(p[:, 0] / 0.05) + np.floor(p[:, 1] / 0.05)) % 2).astype(int)
        color[hit] = np.array(self.table_colors, np.uint8)[checker[hit]]
        boxes = list(self.boxes)
        if gripper_T is not None:
            c = gripper_T[:3, 3] + gripper_T[:3, :3] @ np.array([0, 0, -self.gripper_size / 2])
            boxes.append(Box(c - self.gripper_size / 2, c + self.gripper_size / 2, (240, 200, 30)))
        for box in boxes:
            t = _ray_box(o, d, box)
            closer = t < best
            best[closer] = t[closer]
            color[closer] = box.color
        depth = np.where(np.isfinite(best), best, np.nan).astype(np.float32).reshape(h, w)
        return color.reshape(h, w, 3), depth


@dataclass
class CameraRig:
    """The scene's cameras at a given image size; ``render_all(q)`` gives every view for joint state q."""

    height: int = 120
    width: int = 160
    fovy: float = 55.0
    scene: Scene = field(default_factory=Scene)
    cameras: dict = field(default_factory=default_cameras)

    def __post_init__(self):
        self.K = intrinsics_from_fovy(self.fovy, self.height, self.width)
        self._static_cache: dict = {}

    def T_base_cam(self, name: str, q: np.ndarray) -> np.ndarray:
        kind, ext = self.cameras[name]
        return ext if kind == "static" else fk(q) @ ext

    def render(self, name: str, q: np.ndarray):
        kind, _ = self.cameras[name]
        T = self.T_base_cam(name, q)
        if kind == "wrist":  # the wrist camera does not see its own gripper
            return self.scene.render(self.K, T, (self.height, self.width))
        return self.scene.render(self.K, T, (self.height, self.width), gripper_T=fk(q))

    def render_all(self, q: np.ndarray) -> dict:
        return {name: self.render(name, q) for name in self.cameras}
