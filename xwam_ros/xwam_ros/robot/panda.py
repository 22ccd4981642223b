"""The Franka Panda as the simulated robot has it: URDF joint names, limits and the fixed transforms that make the
URDF's kinematics match robosuite's MuJoCo model (no rclpy).

Measured against robosuite 1.5.2's Panda (test/sim/test_panda_kinematics.py checks it): the URDF chain
(example-robot-data's panda.urdf) equals robosuite's up to the hand. robosuite mounts its hand 0.5 mm lower on
link 7 (0.1065 m instead of 0.107 m) and turned 45.028 deg instead of 45 deg, then the gripper body a further
-90 deg about z and the grip site 0.097 m out along the approach axis. Together: grip site = panda_hand *
GRIP_SITE_OFFSET. In the Lift and Stack tasks the arm's base (panda_link0) stands at LIFT_BASE_POSE in the world.
"""
from __future__ import annotations

from .ik import GripperMap, IKConfig

ARM_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FINGER_JOINTS = ["panda_finger_joint1", "panda_finger_joint2"]
FINGER_OPEN = 0.04  # m per finger (the hand opens to 0.08 m)
# [x, y, z, qw, qx, qy, qz]: URDF panda_hand -> robosuite's grip site (the pose the model's state holds)
GRIP_SITE_OFFSET = [0.0, 0.0, 0.0965, 0.7069325917098417, 0.0, 0.0, -0.7072809277637891]
LIFT_BASE_POSE = [-0.56, 0.0, 0.912, 1.0, 0.0, 0.0, 0.0]  # world -> panda_link0 in robosuite's Lift/Stack
# The Panda's joint limits (URDF / Franka datasheet), rad
POSITION_MIN = [-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973]
POSITION_MAX = [2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973]
VELOCITY_MAX = [2.175, 2.175, 2.175, 2.175, 2.61, 2.61, 2.61]
FINGER = GripperMap(FINGER_JOINTS[0], open_position=FINGER_OPEN, closed_position=0.0)  # -1 open .. +1 closed


def panda_ik_config(base_pose=None, **overrides) -> IKConfig:
    """IK of the Panda's grip site, the gripper command mapped onto panda_finger_joint1 (0.04 m open, 0 closed)."""
    kw = dict(joint_names=list(ARM_JOINTS), tip_frame="panda_hand", tip_offset=list(GRIP_SITE_OFFSET),
              base_pose=list(base_pose if base_pose is not None else LIFT_BASE_POSE), gripper=FINGER)
    kw.update(overrides)
    return IKConfig(**kw).validate()


COMMAND_JOINTS = ARM_JOINTS + [FINGER_JOINTS[0]]  # what a joint_trajectory_controller of the Panda takes here


def joint_state(arm_q, finger_qpos) -> tuple[list[str], list[float]]:
    """(names, positions) of /joint_states from robosuite's joints: its right finger's coordinate is negative where
    the URDF's panda_finger_joint2 is positive (both fingers open outwards by the same amount)."""
    return ARM_JOINTS + FINGER_JOINTS, [*map(float, arm_q), float(finger_qpos[0]), float(-finger_qpos[1])]


def command_to_target(q) -> list[float]:
    """COMMAND_JOINTS positions -> the joint-mode SimEnv target [q1 .. q7, gripper command in [-1, 1]]."""
    return [*map(float, q[:7]), float(FINGER.to_command(q[7]))]
