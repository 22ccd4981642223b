"""StateLayout: the end-effector layout of state and action vectors, per arm, derived from the model config."""
import numpy as np
import pytest

from xwam_ros.model.config import get_preset
from xwam_ros.model.layout import ONE_ARM, StateLayout, arm_state_from, one_arm


def _arm(seed):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=4)
    return arm_state_from(rng.normal(size=3), q / np.linalg.norm(q), rng.uniform(-1, 1))


def test_config_decides_the_layout_and_a_wrong_size_names_the_value():
    assert StateLayout.of(get_preset("xwam-5b")) == StateLayout(2)
    assert StateLayout.of(get_preset("tiny")) == ONE_ARM
    with pytest.raises(ValueError, match="state_dim is 12, not a whole number of arms"):
        get_preset("tiny", state_dim=12)
    with pytest.raises(ValueError, match="action_dim is 7 but state_dim 16"):
        get_preset("tiny", state_dim=16)
    with pytest.raises(ValueError, match="no end-effector layout"):
        StateLayout.of(get_preset("tiny", action_space="joint", state_dim=7))
    with pytest.raises(ValueError, match="arms must be a positive int"):
        StateLayout(0)


def test_accessors_are_views_of_each_arm_at_its_own_offset():
    two = StateLayout(2)
    a0, a1 = _arm(0), _arm(1)
    s = two.join([a0, a1])
    assert s.shape == (16,) and two.state_size == 16 and two.action_size == 14
    np.testing.assert_array_equal(s[8:11], a1[:3])  # the wire format: arm 1 starts at value 8
    for arm, ref in ((0, a0), (1, a1)):
        np.testing.assert_array_equal(two.position(s, arm), ref[:3])
        np.testing.assert_array_equal(two.quaternion(s, arm), ref[3:7])
        np.testing.assert_array_equal(two.pose(s, arm), ref[:7])
        assert two.gripper(s, arm) == ref[7]
    for got, ref in zip(two.split(s), (a0, a1)):
        np.testing.assert_array_equal(got, ref)
    two.position(s, 1)[:] = 0.0  # a view: writing through it changes the state
    assert np.all(s[8:11] == 0.0)
    batch = np.stack([s, s + 1])
    assert two.gripper(batch, 1).shape == (2,)
    actions = np.arange(14.0)
    np.testing.assert_array_equal(two.arm_action(actions, 1), np.arange(7.0, 14.0))
    assert two.quaternion_indices() == (3, 4, 5, 6, 11, 12, 13, 14)
    assert ONE_ARM.state_names() == ("x", "y", "z", "qw", "qx", "qy", "qz", "gripper")
    assert two.action_names()[7] == "arm1_dx"


def test_wrong_sizes_and_arms_are_named():
    two = StateLayout(2)
    with pytest.raises(ValueError, match=r"state must end in 16 values for StateLayout\(arms=2\)"):
        two.position(np.zeros(8))
    with pytest.raises(IndexError, match="arm 2 out of range"):
        two.gripper(np.zeros(16), 2)
    with pytest.raises(ValueError, match="joins 2 arm states, got 1"):
        two.join([_arm(0)])
    with pytest.raises(ValueError, match="IK supports one arm .* 2 arms \\(16 values\\)"):
        one_arm(np.zeros(16), "IK")
    with pytest.raises(ValueError, match="robot's state has 2 arms"):
        ONE_ARM.pad(np.zeros(16))


def test_pad_puts_a_one_arm_robot_in_arm_0():
    a = _arm(3).astype(np.float32)
    p = StateLayout(2).pad(a)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, np.concatenate([a, np.zeros(8, np.float32)]))
