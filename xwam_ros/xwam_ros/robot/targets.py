"""Model actions -> robot targets, shared by the live node and the offline evaluator (no rclpy)."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from ..model.actions import decode_ee_chunk, decode_joint_actions
from ..model.layout import ONE_ARM, one_arm
from .cartesian import ROTATION_AXES
from .ik import UrdfIK


def decode_targets(actions: np.ndarray, action_space: str, state: np.ndarray, joints: np.ndarray, ik: str,
                   gripper_action: str = "delta", solver: "UrdfIK | None" = None):
    """-> (absolute joint targets [K, J] or None when no IK, absolute EE states [K, 8 x arms] or None).

    ``state`` is the robot's measured state: for EE actions, 8 values per arm (StateLayout); a one-arm robot on a
    two-arm model drives arm 0. Every IK mode drives one arm and rejects a two-arm state before decoding; ``ik:
    none`` returns every arm's poses and grippers.

    ``ik``: "none" (EE poses only); "cartesian" / "gantry": the robot takes Cartesian targets directly as
    [x, y, z, roll, pitch, yaw, gripper] (a Cartesian controller, the simulated Panda, or the gantry whose IK is
    exact), so the safety limits apply per Cartesian axis; "urdf": ``solver`` (a UrdfIK) turns the poses into the
    arm's joints, ``solver.joint_names`` in order, seeded from the measured ``joints`` (same order), raising
    IKError (a ChunkRejected) when any step has no solution."""
    if action_space == "joint":
        return decode_joint_actions(actions[:, : len(joints)], joints, "delta"), None
    if ik != "none":
        one_arm(state, f"ik={ik!r}")  # before decoding: never IK to the first arm of a two-arm state
    ee = decode_ee_chunk(actions, state, gripper_action)
    if ik == "none":
        return None, ee
    if ik == "urdf":
        if solver is None:
            raise ValueError("ik='urdf' needs a UrdfIK solver")
        return solver.solve_chunk(ee, joints), ee
    if ik not in ("gantry", "cartesian"):
        raise ValueError(f"unknown IK {ik!r}")
    rpy_abs = Rotation.from_quat(ONE_ARM.quaternion(ee), scalar_first=True).as_euler("xyz")  # = transforms3d sxyz
    q = np.concatenate([ONE_ARM.position(ee), rpy_abs, ONE_ARM.gripper(ee)[:, None]], 1)  # the gantry's IK is exact
    # keep each angle on the branch nearest the measured joint (Euler angles wrap at +-pi)
    rpy = ROTATION_AXES
    q[:, rpy] = joints[rpy] + (q[:, rpy] - joints[rpy] + np.pi) % (2 * np.pi) - np.pi
    return q, ee
