import numpy as np
import pytest
from transforms3d.quaternions import quat2mat

from xwam_ros.model.actions import decode_ee_deltas, decode_joint_actions


def test_four_quarter_turns_return_to_start_and_positions_accumulate():
    d = np.zeros((4, 7))
    d[:, 5] = np.pi / 2
    d[:, 0] = 0.01
    d[:, 6] = 0.25
    out = decode_ee_deltas(d, np.array([0.5, 0, 0.2]), np.array([1.0, 0, 0, 0]), gripper=0.0)
    assert np.allclose(out[:, 0], [0.51, 0.52, 0.53, 0.54])
    assert np.allclose(out[-1, 3:7], [1, 0, 0, 0], atol=1e-9)
    assert np.allclose(out[1, 3:7], [0, 0, 0, 1], atol=1e-9)  # 180 deg about z, w >= 0 canonical
    assert np.allclose(out[:, 7], [0.25, 0.5, 0.75, 1.0])


def test_rotation_is_left_multiplied():
    q0 = np.array([np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0])  # 90 deg about x
    d = np.zeros((1, 7))
    d[0, 5] = np.pi / 2  # then 90 deg about base z
    out = decode_ee_deltas(d, np.zeros(3), q0)
    rz = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.allclose(quat2mat(out[0, 3:7]), rz @ quat2mat(q0), atol=1e-9)


def test_joint_modes_and_errors():
    cur = np.array([0.1, 0.2])
    acts = np.array([[0.1, 0.0], [0.1, -0.1]])
    assert np.allclose(decode_joint_actions(acts, cur, "delta"), [[0.2, 0.2], [0.3, 0.1]])
    assert np.allclose(decode_joint_actions(acts, cur, "absolute"), acts)
    with pytest.raises(ValueError, match="joints"):
        decode_joint_actions(np.zeros((2, 3)), cur)
    with pytest.raises(ValueError, match="EE deltas"):
        decode_ee_deltas(np.zeros((2, 3)), np.zeros(3), np.array([1.0, 0, 0, 0]))
