"""Bags with known geometry, written by the tests themselves (rclpy-serialised CDR through rosbags' writer)."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from transforms3d.quaternions import mat2quat

from xwam_ros.data.bag_reader import make_typestore
from xwam_ros.robot.convert import depth_to_image_msg, rgb_to_image_msg
from xwam_ros.robot.config import realsense_topics
from xwam_ros.sim.procedural import HOME, JOINT_NAMES, CameraRig, fk

CAMS = ("agentview", "sideview", "eye_in_hand")
T0 = 1000.0


def q_at(t: float) -> np.ndarray:
    """A known smooth arm motion."""
    q = HOME.copy()
    q[0] += 0.05 * np.sin(0.8 * t)
    q[1] += 0.04 * np.sin(0.5 * t)
    q[2] -= 0.03 * (1 - np.cos(0.6 * t))
    return q


def _time(t):
    ns = int(round(t * 1e9))
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


def write_bag(path, storage="mcap", seconds=4.0, fps=10.0, size=(60, 80), joint_names=JOINT_NAMES,
              stop_camera_at=None, shuffle_stamps=False, cams=CAMS, image_type="sensor_msgs/msg/Image",
              render_once=False, still=False):
    """``render_once`` reuses the first frame's images (benchmarks at 640x480: ray casting is not what they measure);
    ``still`` holds the arm at its start pose (the robot state is then the same whichever joint message is newest)."""
    arm_at = (lambda _t: q_at(0.0)) if still else q_at
    rig = CameraRig(*size)
    ts = make_typestore()
    w = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3)
    w.open()
    conns = {}

    def conn(topic, typ):
        if topic not in conns:
            conns[topic] = w.add_connection(topic, typ, typestore=ts)
        return conns[topic]

    def put(topic, typ, t, msg):
        w.write(conn(topic, typ), int(t * 1e9), serialize_message(msg))

    n = int(seconds * fps)
    order = np.arange(n)
    if shuffle_stamps:
        order[[n // 2, n // 2 + 1]] = order[[n // 2 + 1, n // 2]]
    for j in range(int(seconds * 20)):  # joint states and EE pose at 20 Hz
        t = T0 + j / 20
        q = arm_at(t - T0)
        h = Header(stamp=_time(t), frame_id="base_link")
        put("/joint_states", "sensor_msgs/msg/JointState", t,
            JointState(header=h, name=list(joint_names), position=[float(x) for x in q]))
        T = fk(q)
        m = PoseStamped(header=h)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in T[:3, 3])
        qw, qx, qy, qz = mat2quat(T[:3, :3])
        m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z = qw, qx, qy, qz
        put("/ee_pose", "geometry_msgs/msg/PoseStamped", t, m)
    frames, cache = {}, {}
    for i in order:
        t_log = T0 + len(frames) / fps + 0.01
        t = T0 + i / fps + 0.01
        q = arm_at(t - T0)
        frames[t] = q
        for c in cams:
            if stop_camera_at is not None and c == "sideview" and t - T0 > stop_camera_at:
                continue
            tp = {k: ("/" + v if k.endswith("topic") else v) for k, v in realsense_topics(c).items()}  # bags: absolute
            key = (c, None if render_once else float(t))
            if key not in cache:
                cache[key] = rig.render(c, q)
            rgb, depth = cache[key]
            h = Header(stamp=_time(t), frame_id=tp["frame_id"])
            info = CameraInfo(header=h, height=size[0], width=size[1])
            info.k = [float(x) for x in rig.K.ravel()]
            put(tp["info_topic"], "sensor_msgs/msg/CameraInfo", t_log, info)
            img = rgb_to_image_msg(rgb, h, Image)
            if image_type != "sensor_msgs/msg/Image":  # a different message on the colour topic
                from std_msgs.msg import String
                put(tp["color_topic"], "std_msgs/msg/String", t_log, String(data="not an image"))
            else:
                put(tp["color_topic"], image_type, t_log, img)
            put(tp["depth_topic"], "sensor_msgs/msg/Image", t_log, depth_to_image_msg(depth, h, Image, "16UC1"))
    w.close()
    return rig
