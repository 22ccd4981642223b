"""The model's state vector from the robot's latest messages: one home for the live node and the bag replay.

``state_source: ee_pose``: [end-effector xyz, quat wxyz, gripper] with the pose from ``ee_pose_topic`` and the
gripper from ``gripper_joint``; ``joints``: the positions of ``joint_names``. The model was trained with the gripper
as a command in [-1 open, +1 closed] (robosuite's convention); a robot that reports a finger position in metres
(``ik: urdf``, e.g. ``panda_finger_joint1``) is mapped through the IK's gripper map, so the state means the same.
"""
from __future__ import annotations

import numpy as np

from .observation import ObservationError, ee_state, joint_vector


def gripper_map_for(cfg):
    """The finger-position -> command map of an ``ik: urdf`` configuration (None when the gripper is a command)."""
    if cfg.ik != "urdf":
        return None
    from .ik import ik_config_from_params
    return ik_config_from_params(cfg.values).gripper


def assemble_state(cfg, joint_state_msg, ee_pose_msg, gripper_map=None) -> tuple[np.ndarray, np.ndarray]:
    """(model state vector, measured positions of ``cfg.joint_names``); raises ObservationError naming what is
    missing."""
    joints = joint_vector(joint_state_msg, cfg.joint_names)
    if cfg.state_source == "joints":
        return joints, joints
    if ee_pose_msg is None:
        raise ObservationError(f"no end-effector pose received on {cfg.ee_pose_topic}")
    g = joint_vector(joint_state_msg, [cfg.gripper_joint])[0]
    if gripper_map is not None:
        g = float(gripper_map.to_command(g))
    return ee_state(ee_pose_msg.pose, g), joints
