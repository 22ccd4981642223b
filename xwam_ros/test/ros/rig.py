"""Test helpers: a publisher of the procedural scene's RGB-D frames with controllable stamps and defects."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from transforms3d.quaternions import mat2quat

from xwam_ros.robot.convert import depth_to_image_msg, rgb_to_image_msg
from xwam_ros.robot.config import realsense_topics
from xwam_ros.sim.procedural import HOME, JOINT_NAMES, CameraRig, fk

CAMS = ("agentview", "sideview", "eye_in_hand")


def stamp_of(t_s: float):
    from builtin_interfaces.msg import Time
    ns = int(t_s * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


class ScenePublisher(Node):
    def __init__(self, context, q=HOME):
        super().__init__("scene_publisher", context=context)
        self.rig = CameraRig(120, 160)
        self.q = np.array(q, float)
        self.frames = {c: self.rig.render(c, self.q) for c in CAMS}
        self.pubs = {}
        for c in CAMS:
            t = realsense_topics(c)
            self.pubs[c] = (self.create_publisher(Image, t["color_topic"], qos_profile_sensor_data),
                            self.create_publisher(Image, t["depth_topic"], qos_profile_sensor_data),
                            self.create_publisher(CameraInfo, t["info_topic"], qos_profile_sensor_data), t["frame_id"])
        self.js = self.create_publisher(JointState, "/joint_states", 10)
        self.ee = self.create_publisher(PoseStamped, "/ee_pose", 10)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish(self, t_s=None, cams=CAMS, encoding="rgb8", depth_fn=None, info=True, jitter=None, state=True):
        t_s = self.now() if t_s is None else t_s
        for i, c in enumerate(cams):
            pc, pd, pi, frame = self.pubs[c]
            ts = t_s + (jitter[i] if jitter is not None else 0.0)
            h = Header(stamp=stamp_of(ts), frame_id=frame)
            rgb, depth = self.frames[c]
            if depth_fn is not None:
                depth = depth_fn(depth)
            msg = rgb_to_image_msg(rgb, h, Image)
            if encoding != "rgb8":
                msg.encoding = encoding
            pc.publish(msg)
            pd.publish(depth_to_image_msg(depth, h, Image, "16UC1"))
            if info:
                K = self.rig.K
                ci = CameraInfo(header=h, height=120, width=160)
                ci.k = [float(x) for x in K.ravel()]
                pi.publish(ci)
        if state:
            h = Header(stamp=stamp_of(t_s), frame_id="base_link")
            self.js.publish(JointState(header=h, name=list(JOINT_NAMES), position=[float(x) for x in self.q]))
            T = fk(self.q)
            m = PoseStamped(header=h)
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in T[:3, 3])
            w, x, y, z = mat2quat(T[:3, :3])
            m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z = w, x, y, z
            self.ee.publish(m)
