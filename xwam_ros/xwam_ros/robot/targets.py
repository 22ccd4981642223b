"""Model actions -> robot targets, shared by the live node and the offline evaluator (no rclpy)."""
from __future__ import annotations

import numpy as np
from transforms3d.euler import quat2euler

from ..model.actions import decode_ee_deltas, decode_joint_actions
from .ik import UrdfIK


def decode_targets(actions: np.ndarray, action_space: str, state: np.ndarray, joints: np.ndarray, ik: str,
                   gripper_action: str = "delta", solver: "UrdfIK | None" = None):
    """-> (absolute joint targets [K, J] or None when no IK, absolute EE poses [K, 8] or None).

    ``ik``: "none" (EE poses only); "cartesian" / "gantry": the robot takes Cartesian targets directly as
    [x, y, z, roll, pitch, yaw, gripper] (a Cartesian controller, the simulated Panda, or the gantry whose IK is
    exact), so the safety limits apply per Cartesian axis; "urdf": ``solver`` (a UrdfIK) turns the poses into the
    arm's joints, ``solver.joint_names`` in order, seeded from the measured ``joints`` (same order), raising
    IKError (a ChunkRejected) when any step has no solution."""
    if action_space == "joint":
        return decode_joint_actions(actions[:, : len(joints)], joints, "delta"), None
    ee = decode_ee_deltas(actions[:, :7], state[:3], state[3:7], gripper=state[7], gripper_mode=gripper_action)
    if ik == "none":
        return None, ee
    if ik == "urdf":
        if solver is None:
            raise ValueError("ik='urdf' needs a UrdfIK solver")
        return solver.solve_chunk(ee, joints), ee
    if ik not in ("gantry", "cartesian"):
        raise ValueError(f"unknown IK {ik!r}")
    q = np.array([[*p[:3], *quat2euler(p[3:7]), p[7]] for p in ee])  # the gantry's IK is exact
    # keep each angle on the branch nearest the measured joint (Euler angles wrap at +-pi)
    q[:, 3:6] = joints[3:6] + (q[:, 3:6] - joints[3:6] + np.pi) % (2 * np.pi) - np.pi
    return q, ee
