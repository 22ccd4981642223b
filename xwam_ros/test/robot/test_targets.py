"""Cartesian targets from EE-delta chunks: the Euler angles stay on the measured joints' branch across +-pi."""
import numpy as np
import pytest
from transforms3d.euler import euler2quat

from xwam_ros.robot.targets import decode_targets

ROLL, PITCH = 2.9, 0.1  # gripper pointing down, as the gantry and the simulated Panda hold it


def _yaw_chunk(yaw0: float, step: float, joints_yaw: float, ik: str):
    """Rotate about the base z axis by ``step`` per action from yaw ``yaw0`` (sxyz Euler: a base-frame z rotation
    adds exactly to yaw), with the robot's yaw joint reading ``joints_yaw`` (the same angle, maybe 2 pi away)."""
    state = np.array([0.4, 0.0, 0.3, *euler2quat(ROLL, PITCH, yaw0), 0.02])
    joints = np.array([0.4, 0.0, 0.3, ROLL, PITCH, joints_yaw, 0.02])
    actions = np.zeros((6, 7))
    actions[:, 5] = step
    return decode_targets(actions, "ee", state, joints, ik)


@pytest.mark.parametrize("ik", ["gantry", "cartesian"])
@pytest.mark.parametrize("yaw0, step, joints_yaw", [
    (np.pi - 0.025, 0.01, np.pi - 0.025),   # crosses +pi upward
    (-np.pi + 0.025, -0.01, -np.pi + 0.025),  # crosses -pi downward
    (np.pi - 0.025, 0.01, np.pi - 0.025 + 2 * np.pi),  # a continuous joint one turn further on
])
def test_euler_targets_follow_the_measured_branch_across_pi(ik, yaw0, step, joints_yaw):
    q, ee = _yaw_chunk(yaw0, step, joints_yaw, ik)
    assert ee.shape == (6, 8) and q.shape == (6, 7)
    expected_yaw = joints_yaw + step * np.arange(1, 7)  # no 2 pi jump anywhere in the chunk
    np.testing.assert_allclose(q[:, 5], expected_yaw, atol=1e-9)
    np.testing.assert_allclose(q[:, 3:5], np.tile([ROLL, PITCH], (6, 1)), atol=1e-9)
    np.testing.assert_allclose(q[:, :3], np.tile([0.4, 0.0, 0.3], (6, 1)), atol=1e-12)
    np.testing.assert_allclose(q[:, 6], 0.02, atol=1e-12)


def test_unknown_ik_and_ee_only():
    state = np.array([0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0, 0.0])
    actions = np.zeros((2, 7))
    q, ee = decode_targets(actions, "ee", state, np.zeros(7), "none")
    assert q is None and np.allclose(ee[:, :3], [0.4, 0.0, 0.3])
    with pytest.raises(ValueError, match="unknown IK"):
        decode_targets(actions, "ee", state, np.zeros(7), "magic")
