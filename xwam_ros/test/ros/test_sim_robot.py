"""xwam_sim_robot over real DDS: the simulated Panda publishes a RealSense-style cell and executes trajectories."""
import json

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.robot.convert import camera_info_to_K, depth_to_metres, image_to_rgb
from xwam_ros.robot.cartesian import AXES, axes_to_target, state_to_axes
from xwam_ros.ros.sim_robot import RESULT_QOS, SimRobotNode

from conftest import spin_until


def test_axes_round_trip():
    s = np.array([0.1, -0.2, 0.9, 0.0, 0.7071068, 0.7071068, 0.0, 0.3])
    t = axes_to_target(state_to_axes(s))
    from scipy.spatial.transform import Rotation
    assert np.allclose(t[:3], s[:3]) and t[6] == pytest.approx(0.3)
    assert np.allclose(Rotation.from_rotvec(t[3:6]).as_quat(), s[[4, 5, 6, 3]], atol=1e-6)


@pytest.mark.slow  # the robosuite robot over DDS
def test_sim_robot_publishes_the_cell_and_executes_trajectories(ros_context):
    params = [Parameter("episodes", value=1), Parameter("max_episode_steps", value=70),
              Parameter("camera_every", value=2), Parameter("wait_for_policy", value=False)]
    sim = SimRobotNode(context=ros_context, parameter_overrides=params)
    probe = Node("probe", context=ros_context)
    got, results = {}, []
    for key, topic, typ in (("rgb", "/agentview/color/image_raw", Image),
                            ("depth", "/eye_in_hand/aligned_depth_to_color/image_raw", Image),
                            ("info", "/agentview/color/camera_info", CameraInfo)):
        probe.create_subscription(typ, topic, lambda m, k=key: got.__setitem__(k, m), qos_profile_sensor_data)
    probe.create_subscription(JointState, "/joint_states", lambda m: got.__setitem__("js", m), 10)
    probe.create_subscription(PoseStamped, "/ee_pose", lambda m: got.__setitem__("ee", m), 10)
    probe.create_subscription(String, "/sim/episode_result", lambda m: results.append(json.loads(m.data)), RESULT_QOS)
    pub = probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(sim)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: {"rgb", "depth", "info", "js", "ee"} <= set(got), timeout=20)
        assert image_to_rgb(got["rgb"]).shape == (128, 128, 3) and got["depth"].encoding == "16UC1"
        d = depth_to_metres(got["depth"])
        assert 0.03 < np.nanmedian(d) < 0.5  # the wrist camera looks at the table from above
        K = camera_info_to_K(got["info"])
        assert K[0, 0] == pytest.approx(0.5 * 128 / np.tan(np.deg2rad(22.5)), rel=1e-6)  # fovy 45 deg
        assert list(got["js"].name) == list(AXES)
        z0 = got["ee"].pose.position.z
        # a wrong axis set is refused; the arm does not move
        bad = JointTrajectory(joint_names=["j1"], points=[JointTrajectoryPoint(positions=[0.0])])
        pub.publish(bad)
        assert spin_until(ex, lambda: sim.rejected >= 1, timeout=5)
        # raise the gripper 5 cm over 1 s
        q = np.array(got["js"].position)
        goal = q.copy()
        goal[2] += 0.05
        pub.publish(JointTrajectory(joint_names=list(AXES), points=[
            JointTrajectoryPoint(positions=[float(x) for x in goal], time_from_start=Duration(sec=1))]))
        # the simulator steps in its own time: wait for the arm to arrive (however loaded the machine is)
        assert spin_until(ex, lambda: abs(got["ee"].pose.position.z - z0 - 0.05) < 0.01, timeout=20)
        # the episode ends at max_episode_steps (no success: nothing lifted the cube) and is reported
        assert spin_until(ex, lambda: results, timeout=20)
        assert results[0]["success"] is False and results[0]["steps"] == 70 and sim.finished
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()
