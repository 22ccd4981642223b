"""ROS 2 bags <-> dataset episodes.

A bag recorded on the robot (``xwam-ros record``, or ``ros2 bag record``) becomes one episode: every synchronised
camera set is one step, rebuilt exactly as the live node builds observations (``data/bag_observations.py``); the state is
the EE pose + gripper joint at that time; camera extrinsics come from the robot config (static cameras) or from
the EE pose and the hand-eye transform (wrist cameras). If the bag also holds the commands sent to the arm (the
controller topic), their gripper value is the gripper action ("absolute" datasets); otherwise actions are the
measured changes (X-WAM's delta convention).

The other way, an episode becomes a bag with the topics of a real cell (RealSense-style cameras, /joint_states with
the Cartesian axes, /ee_pose, the controller topic), so recorded demonstrations can be replayed through the live
graph or the offline evaluator.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..robot.extrinsics import camera_extrinsics
from .bag_observations import replay_observations
from .bag_reader import BagError, iter_messages, make_typestore
from ..model.actions import encode_ee_deltas
from ..model.layout import DELTA_GRIPPER, ONE_ARM, one_arm
from ..robot.cartesian import GRIPPER_AXIS, state_to_axes as _axes
from .episodes import DatasetMeta, Episode

T0 = 1_000.0  # bag time of an episode's first step (seconds)


def bag_to_episode(bag, setup, gripper_action: str = "delta", instruction: str = "") -> Episode:
    """One episode from a recorded bag; raises BagError naming the bag and what is missing or broken.

    The robot config has one /ee_pose topic and one gripper joint: the episode's states are one arm's (StateLayout)."""
    if setup.state_source != "ee_pose":
        raise BagError(f"{bag}: episodes hold end-effector states; the robot config has state_source "
                       f"{setup.state_source!r}, not 'ee_pose'")
    rep = replay_observations(bag, setup, None, ONE_ARM.state_size, instruction)
    steps = rep.steps
    if len(steps) < 2:
        raise BagError(f"{bag}: only {len(steps)} usable observation(s); an episode needs at least 2")
    states = np.stack([s.state for s in steps]).astype(np.float32)  # assemble_state: one arm's 8 values
    rgb = np.stack([np.stack([s.built.frames[v].rgb for s in steps]) for v in range(len(setup.cameras))])
    depth = np.stack([np.stack([s.built.frames[v].depth for s in steps]) for v in range(len(setup.cameras))])
    K = np.stack([steps[0].built.frames[v].K for v in range(len(setup.cameras))]).astype(np.float32)
    T = np.stack([np.stack(camera_extrinsics(setup.cameras, s.state)) for s in steps], 1).astype(np.float32)
    grips = None
    if gripper_action == "absolute":
        grips = _gripper_commands(bag, setup, np.array([s.t for s in steps]))
    info = {"source": f"bag:{Path(bag).name}", "partial": rep.partial, "errors": rep.errors,
            "stamps": [s.t for s in steps]}
    return Episode(rgb, depth, K, T, states, encode_ee_deltas(states, grips), steps[0].built.obs.instruction,
                   True, info).validate(str(bag))


def _gripper_commands(bag, setup, times: np.ndarray) -> np.ndarray:
    """The gripper value of the last controller command at or before each step time."""
    stamps, values = [], []
    gi = list(setup.joint_names).index(setup.gripper_joint)
    for _, t_ns, msg in iter_messages(bag, [setup.controller_topic], required=[setup.controller_topic]):
        if msg.points:
            stamps.append(t_ns * 1e-9)
            values.append(float(msg.points[0].positions[gi]))
    idx = np.searchsorted(np.asarray(stamps), times + 1e-6, side="right") - 1
    if np.any(idx < 0):
        raise BagError(f"{bag}: no command on {setup.controller_topic} before the first observation")
    return np.asarray(values)[idx]


def episode_to_bag(ep: Episode, meta: DatasetMeta, path, setup, storage: str = "mcap") -> Path:
    """Write an episode as the bag a real cell would record (one message per topic per step)."""
    from builtin_interfaces.msg import Duration, Time
    from geometry_msgs.msg import PoseStamped
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer
    from sensor_msgs.msg import Image, JointState
    from std_msgs.msg import Header, String
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from sensor_msgs.msg import CameraInfo

    from ..robot.convert import camera_info_msg, depth_to_image_msg, rgb_to_image_msg

    if [c.name for c in setup.cameras] != list(meta.view_names):
        raise ValueError(f"config cameras {[c.name for c in setup.cameras]} differ from the episode's views "
                         f"{list(meta.view_names)}")
    arm = one_arm(ep.states, "a bag of one ee_pose topic")
    path = Path(path)
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
    ts = make_typestore()
    w.open()
    conns = {}

    def put(topic, typ, t, msg):
        if topic not in conns:
            conns[topic] = w.add_connection(topic, typ, typestore=ts)
        w.write(conns[topic], int(round(t * 1e9)), serialize_message(msg))

    def stamp(t):
        ns = int(round(t * 1e9))
        return Time(sec=ns // 10**9, nanosec=ns % 10**9)

    dt = 1.0 / meta.fps
    try:
        put("/xwam_policy/instruction", "std_msgs/msg/String", T0 - dt, String(data=ep.instruction))
        for t in range(ep.length):
            tt = T0 + t * dt
            h = Header(stamp=stamp(tt), frame_id=setup.base_frame)
            s = ep.states[t]
            put(setup.joint_state_topic, "sensor_msgs/msg/JointState", tt,
                JointState(header=h, name=list(setup.joint_names), position=[float(x) for x in _axes(s)]))
            ee = PoseStamped(header=h)
            ee.pose.position.x, ee.pose.position.y, ee.pose.position.z = (float(x) for x in arm.position(s))
            o = ee.pose.orientation
            o.w, o.x, o.y, o.z = (float(x) for x in arm.quaternion(s))
            put(setup.ee_pose_topic, "geometry_msgs/msg/PoseStamped", tt, ee)
            for v, cam in enumerate(setup.cameras):
                hc = Header(stamp=stamp(tt), frame_id=cam.frame_id)
                put(cam.info_topic, "sensor_msgs/msg/CameraInfo", tt, camera_info_msg(ep.K[v], *ep.rgb.shape[2:4], hc, CameraInfo))
                put(cam.color_topic, "sensor_msgs/msg/Image", tt, rgb_to_image_msg(ep.rgb[v, t], hc, Image))
                put(cam.depth_topic, "sensor_msgs/msg/Image", tt,
                    depth_to_image_msg(np.nan_to_num(ep.depth[v, t], nan=0.0), hc, Image, "16UC1"))
            # the command sent at this step: the next measured pose, with the gripper action as commanded
            nxt = _axes(ep.states[min(t + 1, ep.length - 1)])
            if meta.gripper_action == "absolute":
                nxt[GRIPPER_AXIS] = arm.arm_action(ep.actions[t])[DELTA_GRIPPER]
            traj = JointTrajectory(header=h, joint_names=list(setup.joint_names),
                                   points=[JointTrajectoryPoint(positions=[float(x) for x in nxt],
                                                                time_from_start=Duration(sec=0, nanosec=int(dt * 1e9)))])
            put(setup.controller_topic, "trajectory_msgs/msg/JointTrajectory", tt, traj)
    finally:
        w.close()
    return path

