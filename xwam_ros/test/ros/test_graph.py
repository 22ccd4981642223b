"""The in-process graph end to end (camera source -> policy -> trajectory -> the arm moves) and the camera source."""
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.robot.trajectory import TrajectoryFollower
from xwam_ros.robot.convert import camera_info_to_K, depth_to_metres, image_to_rgb
from xwam_ros.ros.graph import Graph, share_file
from xwam_ros.sim.procedural import HOME, JOINT_NAMES


def test_graph_end_to_end_moves_the_arm_and_publishes_realsense_topics():
    cfg = get_preset("tiny", view_names=("agentview", "sideview", "eye_in_hand"), action_steps=4, video_steps=8)
    policy = XWAMPolicy.from_config(cfg, seed=1)
    g = Graph(share_file("config", "gantry.yaml"), sim=True, policy=policy,
              overrides={"enabled": True, "imagine": False, "max_observation_age": 2.0})
    got = {}
    probe = Node("probe", context=g.context)
    probe.create_subscription(Image, "/eye_in_hand/aligned_depth_to_color/image_raw",
                              lambda m: got.__setitem__("depth", m), qos_profile_sensor_data)
    probe.create_subscription(Image, "/agentview/color/image_raw", lambda m: got.__setitem__("rgb", m),
                              qos_profile_sensor_data)
    probe.create_subscription(CameraInfo, "/agentview/color/camera_info", lambda m: got.__setitem__("info", m),
                              qos_profile_sensor_data)
    g.add_node(probe)
    g.start()
    try:
        q0 = g.camera.follower.q.copy()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and g.camera.follower.received < 1:
            time.sleep(0.2)
        time.sleep(1.0)
        assert g.policy_node.counters.get("trajectories_sent", 0) >= 1
        assert g.camera.follower.received >= 1
        assert np.linalg.norm(g.camera.follower.q - q0) > 1e-4  # the arm executed the trajectory
        assert got["depth"].encoding == "16UC1" and got["rgb"].encoding == "rgb8"
        assert got["depth"].header.frame_id == "eye_in_hand_color_optical_frame"
        d = depth_to_metres(got["depth"])
        assert np.nanmin(d) > 0.0 and image_to_rgb(got["rgb"]).shape == (120, 160, 3)
        assert camera_info_to_K(got["info"])[0, 0] > 0
    finally:
        g.shutdown()


def test_trajectory_follower_semantics():
    f = TrajectoryFollower(HOME, JOINT_NAMES)
    names = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    target = HOME + np.array([0.1, 0, 0, 0, 0, 0, 0])
    assert f.set(names, 10.0, np.array([1.0]), target[None], now_s=10.0) is None
    assert np.isclose(f.step(10.5)[0], 0.05) and np.isclose(f.step(11.5)[0], 0.1)
    assert "do not match" in f.set(["a"], 0.0, np.array([1.0]), target[None], 0.0)
    assert "past" in f.set(names, 1.0, np.array([1.0]), target[None], now_s=5.0)
    assert "strictly" in f.set(names, 0.0, np.array([1.0, 1.0]), np.stack([target, target]), 0.0)
