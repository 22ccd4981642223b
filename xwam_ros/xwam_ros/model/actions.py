"""Turning predicted action chunks into robot targets.

End-effector deltas (X-WAM's action space): each action is (dx, dy, dz, rx, ry, rz, gripper) with the rotation as an
axis-angle vector. Deltas are applied step by step from the current pose: positions add, rotations left-multiply
(R <- dR @ R, i.e. deltas expressed in the base frame), and the gripper either adds or is taken as absolute.
Joint-space models predict joint targets directly (absolute) or joint deltas (accumulated).
"""
from __future__ import annotations

import numpy as np
from transforms3d.axangles import axangle2mat
from transforms3d.quaternions import mat2quat, quat2mat


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.eye(3)
    return axangle2mat(rotvec / angle, angle)


def canonical_quat(q: np.ndarray) -> np.ndarray:
    """wxyz with w >= 0 (the sign convention of X-WAM's state vector)."""
    q = np.asarray(q, np.float64)
    return -q if q[0] < 0 else q


def decode_ee_deltas(deltas: np.ndarray, pos: np.ndarray, quat_wxyz: np.ndarray, gripper: float = 0.0,
                     gripper_mode: str = "delta") -> np.ndarray:
    """Accumulate [K, 7] deltas from the current pose; returns [K, 8] absolute (xyz, quat wxyz, gripper)."""
    deltas = np.asarray(deltas, np.float64)
    if deltas.ndim != 2 or deltas.shape[1] < 7:
        raise ValueError(f"EE deltas must be [K, >=7] (dxyz, axis-angle, gripper), got {deltas.shape}")
    if gripper_mode not in ("delta", "absolute"):
        raise ValueError(f"gripper_mode must be 'delta' or 'absolute', got {gripper_mode!r}")
    p = np.asarray(pos, np.float64).copy()
    rot = quat2mat(np.asarray(quat_wxyz, np.float64))
    g = float(gripper)
    out = np.empty((deltas.shape[0], 8))
    for k, d in enumerate(deltas):
        p = p + d[:3]
        rot = axis_angle_to_matrix(d[3:6]) @ rot
        g = g + d[6] if gripper_mode == "delta" else d[6]
        out[k, :3], out[k, 3:7], out[k, 7] = p, canonical_quat(mat2quat(rot)), g
    return out


def decode_joint_actions(actions: np.ndarray, current: np.ndarray, mode: str = "absolute") -> np.ndarray:
    """Joint-space chunk [K, J] -> absolute joint targets [K, J]."""
    actions = np.asarray(actions, np.float64)
    current = np.asarray(current, np.float64)
    if actions.ndim != 2 or actions.shape[1] != current.shape[0]:
        raise ValueError(f"joint actions {actions.shape} do not match {current.shape[0]} joints")
    if mode == "absolute":
        return actions.copy()
    if mode == "delta":
        return current[None] + np.cumsum(actions, axis=0)
    raise ValueError(f"joint action mode must be 'absolute' or 'delta', got {mode!r}")


def encode_ee_deltas(states: np.ndarray, gripper: np.ndarray | None = None) -> np.ndarray:
    """The inverse of ``decode_ee_deltas``: [T, >=8] measured states -> [T, 7] deltas taking state t to t + 1.

    The last row holds still. ``gripper`` [T] gives absolute gripper commands; without it the gripper dim is the
    change of the measured gripper state (the delta convention)."""
    from transforms3d.axangles import mat2axangle
    s = np.asarray(states, np.float64)
    out = np.zeros((len(s), 7))
    out[:-1, :3] = s[1:, :3] - s[:-1, :3]
    for t in range(len(s) - 1):
        axis, angle = mat2axangle(quat2mat(s[t + 1, 3:7]) @ quat2mat(s[t, 3:7]).T)
        out[t, 3:6] = axis * angle
    if gripper is None:
        out[:-1, 6] = s[1:, 7] - s[:-1, 7]
    else:
        out[:, 6] = np.asarray(gripper, np.float64)
    return out.astype(np.float32)
