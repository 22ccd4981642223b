"""State assembly: the node and the bag replay build the model's state with one function, and a robot that reports
its gripper as a finger position (ik: urdf) gets the command convention the model was trained with."""
import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from xwam_ros.data import bag_observations
from xwam_ros.paths import share_file
from xwam_ros.robot import state
from xwam_ros.robot.config_file import load_setup
from xwam_ros.robot.observation import ObservationError
from xwam_ros.ros import policy_node


def _msgs(names, positions):
    js = JointState(name=list(names), position=[float(x) for x in positions])
    ee = PoseStamped()
    ee.pose.position.x, ee.pose.position.y, ee.pose.position.z = 0.1, -0.2, 0.9
    ee.pose.orientation.w = 1.0
    return js, ee


@pytest.mark.parametrize("finger, command", [(0.04, -1.0), (0.0, 1.0), (0.02, 0.0)])
def test_finger_position_becomes_the_trained_gripper_command(finger, command):
    cfg = load_setup(share_file("config", "panda_joint.yaml"))
    js, ee = _msgs(cfg.joint_names, [0.0] * (len(cfg.joint_names) - 1) + [finger])
    s, joints = state.assemble_state(cfg, js, ee, state.gripper_map_for(cfg))
    np.testing.assert_allclose(s, [0.1, -0.2, 0.9, 1, 0, 0, 0, command], atol=1e-6)  # float32 state
    assert joints[-1] == pytest.approx(finger)  # the measured joints stay in the robot's own units


def test_cartesian_gripper_is_already_a_command():
    cfg = load_setup(share_file("config", "policy.yaml"))
    assert state.gripper_map_for(cfg) is None
    js, ee = _msgs(cfg.joint_names, [0, 0, 0.9, 3.1, 0, 0, 0.7])
    s, _ = state.assemble_state(cfg, js, ee, None)
    assert s[7] == pytest.approx(0.7)


def test_missing_pose_is_named():
    cfg = load_setup(share_file("config", "policy.yaml"))
    js, _ = _msgs(cfg.joint_names, [0] * 7)
    with pytest.raises(ObservationError, match="ee_pose"):
        state.assemble_state(cfg, js, None)


def test_node_and_bag_replay_share_the_function():
    assert policy_node.assemble_state is state.assemble_state
    assert bag_observations.assemble_state is state.assemble_state
