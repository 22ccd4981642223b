"""Pinhole camera maths in numpy (no ROS): intrinsics, unprojection, rigid transforms.

Camera frames follow REP 103 optical conventions: z forward, x right, y down. ``T_a_b`` maps points from frame b into
frame a (p_a = T_a_b @ p_b).
"""
from __future__ import annotations

import numpy as np
from transforms3d.quaternions import quat2mat


def intrinsics_from_fovy(fovy_deg: float, height: int, width: int) -> np.ndarray:
    """K for a camera with vertical field of view ``fovy_deg`` and square pixels (MuJoCo's convention)."""
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def scale_intrinsics(K: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """K after resizing an image from src_hw to dst_hw (pixel-centre convention)."""
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    K2 = np.array(K, np.float64).copy()
    K2[0, 0] *= sx
    K2[1, 1] *= sy
    K2[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K2[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K2


def pixel_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """[H, W, 3] rays with z = 1 through every pixel centre."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], axis=-1)


def unproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Metric depth [H, W] -> points [H*W, 3] in the optical frame (NaN where depth is invalid)."""
    depth = np.asarray(depth, np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H, W], got shape {depth.shape}")
    pts = pixel_rays(K, *depth.shape) * depth[..., None]
    return pts.reshape(-1, 3)


def project(points: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optical-frame points [N, 3] -> (pixels [N, 2] as (u, v), depth [N])."""
    z = points[:, 2]
    u = K[0, 0] * points[:, 0] / z + K[0, 2]
    v = K[1, 1] * points[:, 1] / z + K[1, 2]
    return np.stack([u, v], axis=1), z


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    return np.asarray(points) @ np.asarray(T)[:3, :3].T + np.asarray(T)[:3, 3]


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


def ee_pose_to_matrix(pos: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
    q = np.asarray(quat_wxyz, np.float64)
    n = np.linalg.norm(q)
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"end-effector quaternion {q} is not a valid rotation")
    return make_transform(quat2mat(q / n), np.asarray(pos, np.float64))


def wrist_camera_pose(T_base_ee: np.ndarray, T_ee_cam: np.ndarray) -> np.ndarray:
    """X-WAM's wrist extrinsics: predicted end-effector pose times the fixed hand-eye calibration."""
    return np.asarray(T_base_ee) @ np.asarray(T_ee_cam)


def look_at(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """T_base_cam of an optical-frame camera at ``eye`` looking at ``target`` (z forward, y down)."""
    eye, target = np.asarray(eye, float), np.asarray(target, float)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_transform(np.stack([x, y, z], axis=1), eye)
