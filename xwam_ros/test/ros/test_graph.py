"""The in-process graph end to end (camera source -> policy -> trajectory -> the arm moves) and the camera source."""
import time

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from geometry_msgs.msg import PoseArray
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory
from xwam_interfaces.msg import ActionChunk

from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.robot.trajectory import TrajectoryFollower
from xwam_ros.robot.convert import camera_info_to_K, depth_to_metres, image_to_rgb
from xwam_ros.ros.graph import Graph, share_file
from xwam_ros.sim.procedural import HOME, JOINT_NAMES


# the safety limits only clip here (nothing else in the graph changes a chunk), so with them wide open the trajectory
# must be exactly the decoded chunk; the gripper keeps its real range (the clamp is checked in test/robot)
WIDE_LIMITS = {"position_min": [-1e3] * 6 + [0.0], "position_max": [1e3] * 6 + [0.04],
               "max_velocity": [1e3] * 7, "max_step": [1e3] * 7}


def _t(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


@pytest.mark.slow  # a policy graph over DDS
def test_graph_end_to_end_the_arm_follows_the_policys_chunk_and_realsense_topics_go_out():
    """camera source -> policy -> ~/action_chunk -> ~/ee_targets -> controller trajectory -> the arm's joint_states:
    each link carries exactly what the one before it said."""
    cfg = get_preset("tiny", view_names=("agentview", "sideview", "eye_in_hand"), action_steps=4, video_steps=8)
    policy = XWAMPolicy.from_config(cfg, seed=1)
    g = Graph(share_file("config", "gantry.yaml"), sim=True, policy=policy,
              overrides={"enabled": True, "imagine": False, "max_observation_age": 2.0, **WIDE_LIMITS})
    got, chunks, targets, trajs, joints = {}, [], [], [], []  # got: each camera topic's first frame (at HOME; the
    # random policy may then drive the gantry, unlimited, where the wrist camera sees nothing)
    probe = Node("probe", context=g.context)
    probe.create_subscription(Image, "/eye_in_hand/aligned_depth_to_color/image_raw",
                              lambda m: got.setdefault("depth", m), qos_profile_sensor_data)
    probe.create_subscription(Image, "/agentview/color/image_raw", lambda m: got.setdefault("rgb", m),
                              qos_profile_sensor_data)
    probe.create_subscription(CameraInfo, "/agentview/color/camera_info", lambda m: got.setdefault("info", m),
                              qos_profile_sensor_data)
    probe.create_subscription(ActionChunk, "/xwam_policy/action_chunk", chunks.append, 10)
    probe.create_subscription(PoseArray, "/xwam_policy/ee_targets", targets.append, 10)
    probe.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory", trajs.append, 10)
    probe.create_subscription(JointState, "/joint_states", joints.append, 50)
    g.add_node(probe)
    accepted = []  # (trajectory stamp, receipt time) of every trajectory the simulated arm took (its own verdict)
    follower, real_set = g.camera.follower, g.camera.follower.set

    def observed_set(names, stamp_s, tfs, positions, now_s):
        err = real_set(names, stamp_s, tfs, positions, now_s)
        if err is None:
            accepted.append((stamp_s, now_s))
        return err
    follower.set = observed_set
    g.start()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 90 and not accepted:
            time.sleep(0.2)
        assert accepted, g.policy_node.counters
        stamp, received = accepted[0]
        same = lambda m: abs(_t(m.header.stamp) - stamp) < 1e-6  # noqa: E731  (stamped with the observation)
        traj = next(m for m in trajs if same(m))
        chunk = next(c for c in chunks if same(c))  # the trajectory is this chunk's
        target = next(t for t in targets if same(t))
        actions = np.array(chunk.values).reshape(chunk.num_steps, chunk.num_dims)
        ee = np.array([[p.position.x, p.position.y, p.position.z] for p in target.poses])
        # EE targets accumulate the chunk's position deltas (float32 on the wire)
        np.testing.assert_allclose(np.diff(ee, axis=0), actions[1:, :3], atol=1e-6)
        # the trajectory is those targets (gantry IK: exact), minus the points already past when it was sent
        tfs = np.array([_t(p.time_from_start) for p in traj.points])
        k = np.rint(tfs / g.policy_node.dt).astype(int) - 1
        pos = np.array([p.positions for p in traj.points])
        assert len(k) >= 2 and k[-1] == len(ee) - 1
        np.testing.assert_allclose(pos[:, :3], ee[k], atol=1e-12)
        assert np.ptp(pos[:, :3], axis=0).max() > 1e-3  # a chunk that really moves the arm
        # the arm executed it: from its first point (or its receipt) to its last, the measured joints are the
        # trajectory, interpolated (chunk mode: the next query waits for the last point, so nothing replaces it)
        times = stamp + tfs
        while time.monotonic() - t0 < 90 and not (joints and _t(joints[-1].header.stamp) > times[-1]):
            time.sleep(0.2)
        inside = [m for m in joints if max(times[0], received) <= _t(m.header.stamp) <= times[-1]]
        assert inside, [_t(m.header.stamp) for m in joints][-10:]  # 5 Hz joint states; a late receipt shortens it
        for m in inside:
            want = [np.interp(_t(m.header.stamp), times, pos[:, j]) for j in range(pos.shape[1])]
            # 1e-4: float64 seconds since the epoch keep ~0.2 us, and this unlimited random chunk moves up to ~20 m/s
            # (5e-6 measured); executing from the receipt instead of the stamp is off by milliseconds, i.e. mm or more
            np.testing.assert_allclose(m.position, want, atol=1e-4)
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
    # received late (its first point already due): from where the arm is now straight to the next point
    f = TrajectoryFollower(HOME, JOINT_NAMES)
    assert f.set(names, 10.0, np.array([1.0, 2.0]), np.stack([HOME + 0.05, target]), now_s=11.5) is None
    assert np.allclose(f.step(11.5), HOME) and np.isclose(f.step(11.75)[0], 0.05)
    assert np.allclose(f.step(12.0), target)
