"""The Cartesian controller's axes (x y z roll pitch yaw gripper), as the simulated Panda and a Cartesian impedance
controller take them, and conversions from the model's end-effector state."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation
from transforms3d.euler import euler2mat, quat2euler

from ..model.layout import one_arm

AXES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
POSITION_AXES, ROTATION_AXES, GRIPPER_AXIS = slice(0, 3), slice(3, 6), 6  # where AXES' groups sit


def state_to_axes(state: np.ndarray) -> np.ndarray:
    """[xyz, quat wxyz, gripper] -> [x, y, z, roll, pitch, yaw, gripper] (the controller's axes).

    Roll is reported in [0, 2 pi): with the tool pointing down it sits near pi, where (-pi, pi] would wrap between
    consecutive states and a trajectory interpolated across the wrap would turn the hand over."""
    state = np.asarray(state, np.float64)  # transforms3d's mat2euler rejects float32 under numpy 2
    arm = one_arm(state, "the Cartesian axes (x y z roll pitch yaw gripper)")
    roll, pitch, yaw = quat2euler(arm.quaternion(state))
    return np.array([*arm.position(state), roll % (2 * np.pi), pitch, yaw, arm.gripper(state)])


def axes_to_target(q: np.ndarray) -> np.ndarray:
    """Controller axes -> SimEnv target [xyz, rotvec, gripper]."""
    return np.concatenate([q[POSITION_AXES], Rotation.from_matrix(euler2mat(*q[ROTATION_AXES])).as_rotvec(),
                           [q[GRIPPER_AXIS]]])
