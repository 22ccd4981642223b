"""Turning predicted action chunks into robot targets.

End-effector deltas (X-WAM's action space): per arm, each action is (dx, dy, dz, rx, ry, rz, gripper) with the
rotation as an axis-angle vector; arms follow each other (``model/layout.py``, StateLayout). Deltas are applied step
by step from the current pose: positions add, rotations left-multiply (R <- dR @ R, i.e. deltas expressed in the base
frame), and the gripper either adds or is taken as absolute.
Joint-space models predict joint targets directly (absolute) or joint deltas (accumulated).
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from transforms3d.quaternions import quat2mat

from .layout import (ACTION_PER_ARM, DELTA_GRIPPER, DELTA_POSITION, DELTA_ROTATION, ONE_ARM, StateLayout,
                     arm_state_from)


def decode_ee_deltas(deltas: np.ndarray, pos: np.ndarray, quat_wxyz: np.ndarray, gripper: float = 0.0,
                     gripper_mode: str = "delta") -> np.ndarray:
    """One arm: accumulate [K, 7] deltas from its current pose; returns [K, 8] absolute (xyz, quat wxyz, gripper)."""
    deltas = np.asarray(deltas, np.float64)
    if deltas.ndim != 2 or deltas.shape[1] != ACTION_PER_ARM:
        raise ValueError(f"EE deltas must be one arm's [K, {ACTION_PER_ARM}] (dxyz, axis-angle, gripper), got "
                         f"{deltas.shape}; decode_ee_chunk takes whole action vectors")
    if gripper_mode not in ("delta", "absolute"):
        raise ValueError(f"gripper_mode must be 'delta' or 'absolute', got {gripper_mode!r}")
    steps = Rotation.from_rotvec(deltas[:, DELTA_ROTATION])  # vectorised: per-step transforms3d calls cost ~2 ms
    rot, rots = quat2mat(np.asarray(quat_wxyz, np.float64)), []
    for d in steps.as_matrix():
        rot = d @ rot
        rots.append(rot)
    quats = Rotation.from_matrix(np.stack(rots)).as_quat(scalar_first=True)
    quats[quats[:, 0] < 0] *= -1  # canonical: w >= 0
    grip = float(gripper) + np.cumsum(deltas[:, DELTA_GRIPPER]) if gripper_mode == "delta" else deltas[:, DELTA_GRIPPER]
    positions = np.asarray(pos, np.float64) + np.cumsum(deltas[:, DELTA_POSITION], axis=0)
    return arm_state_from(positions, quats, grip)


def decode_ee_chunk(actions: np.ndarray, state: np.ndarray, gripper_mode: str = "delta") -> np.ndarray:
    """A chunk of EE-delta actions [K, A] from the robot's state [8 x arms] -> absolute states [K, 8 x arms].

    Each arm accumulates its own 7 actions from its own pose (StateLayout). The robot may have fewer arms than the
    model: a one-arm robot on a two-arm model (A = 14) takes arm 0's actions; the model's second arm is padding."""
    layout = StateLayout.from_state_dim(np.shape(state)[-1], "the robot's end-effector state size")
    actions = np.asarray(actions)
    if actions.ndim != 2 or actions.shape[1] < layout.action_size:
        raise ValueError(f"EE actions must be [K, >= {layout.action_size}] for {layout}, got {actions.shape}")
    robot_actions = actions[:, :layout.action_size]  # the robot's arms come first in the model's layout
    return layout.join([decode_ee_deltas(layout.arm_action(robot_actions, a), layout.position(state, a),
                                         layout.quaternion(state, a), layout.gripper(state, a), gripper_mode)
                        for a in range(layout.arms)])


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
    """The inverse of ``decode_ee_chunk``: [T, 8 x arms] measured states -> [T, 7 x arms] deltas taking state t to
    t + 1 (StateLayout).

    The last row holds still. ``gripper`` ([T] for one arm, [T, arms]) gives absolute gripper commands; without it
    the gripper dim is the change of the measured gripper state (the delta convention)."""
    s = np.asarray(states, np.float64)
    layout = StateLayout.from_state_dim(s.shape[-1], "the states' width")
    grips = None if gripper is None else np.asarray(gripper, np.float64).reshape(len(s), layout.arms)
    out = np.concatenate([_encode_arm(layout.arm_state(s, a), None if grips is None else grips[:, a])
                          for a in range(layout.arms)], -1)
    return out.astype(np.float32)


def _encode_arm(s: np.ndarray, gripper: np.ndarray | None) -> np.ndarray:
    from transforms3d.axangles import mat2axangle
    out = np.zeros((len(s), ACTION_PER_ARM))
    pos, quat, grip = ONE_ARM.position(s), ONE_ARM.quaternion(s), ONE_ARM.gripper(s)
    out[:-1, DELTA_POSITION] = pos[1:] - pos[:-1]
    for t in range(len(s) - 1):
        axis, angle = mat2axangle(quat2mat(quat[t + 1]) @ quat2mat(quat[t]).T)
        out[t, DELTA_ROTATION] = axis * angle
    if gripper is None:
        out[:-1, DELTA_GRIPPER] = grip[1:] - grip[:-1]
    else:
        out[:, DELTA_GRIPPER] = gripper
    return out
