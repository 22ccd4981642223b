"""What the simulated robots publish the way a real cell does, shared by both: RealSense-style cameras (colour rgb8,
depth aligned to colour, camera_info; sensor-data QoS; one stamp per frameset, as hardware-synchronised cameras),
the arm state (/joint_states, /ee_pose), and the process entry point."""
from __future__ import annotations

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header

from ..robot.convert import depth_to_image_msg, rgb_to_image_msg
from ..robot.config import realsense_topics


def camera_info(K: np.ndarray, h: int, w: int, header) -> CameraInfo:
    info = CameraInfo(header=header, height=h, width=w, distortion_model="plumb_bob")
    info.k = [float(x) for x in np.asarray(K).ravel()]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class CameraPublishers:
    def __init__(self, node, cameras, depth_encoding: str = "16UC1"):
        self.depth_encoding = depth_encoding
        self.pubs = {}
        for cam in cameras:
            t = realsense_topics(cam)
            self.pubs[cam] = (node.create_publisher(Image, t["color_topic"], qos_profile_sensor_data),
                              node.create_publisher(Image, t["depth_topic"], qos_profile_sensor_data),
                              node.create_publisher(CameraInfo, t["info_topic"], qos_profile_sensor_data),
                              t["frame_id"])

    def publish(self, cam: str, rgb: np.ndarray, depth_m: np.ndarray, K: np.ndarray, stamp) -> None:
        pc, pd, pi, frame_id = self.pubs[cam]
        header = Header(stamp=stamp, frame_id=frame_id)
        pc.publish(rgb_to_image_msg(rgb, header, Image))
        pd.publish(depth_to_image_msg(depth_m, header, Image, self.depth_encoding))
        pi.publish(camera_info(K, rgb.shape[0], rgb.shape[1], header))


class StatePublishers:
    def __init__(self, node, base_frame: str):
        self.base_frame = base_frame
        self.joints = node.create_publisher(JointState, "/joint_states", 10)
        self.ee = node.create_publisher(PoseStamped, "/ee_pose", 10)

    def publish(self, names, positions, ee_pos, ee_quat_wxyz, stamp) -> None:
        self.joints.publish(JointState(header=Header(stamp=stamp), name=list(names),
                                       position=[float(x) for x in positions]))
        ee = PoseStamped(header=Header(stamp=stamp, frame_id=self.base_frame))
        ee.pose.position.x, ee.pose.position.y, ee.pose.position.z = (float(x) for x in ee_pos)
        o = ee.pose.orientation
        o.w, o.x, o.y, o.z = (float(x) for x in ee_quat_wxyz)
        self.ee.publish(ee)


def run_node(factory, args=None) -> None:
    """Spin a node until Ctrl-C or until it sets ``finished``; always clean up."""
    rclpy.init(args=args)
    node = factory()
    try:
        while rclpy.ok() and not getattr(node, "finished", False):
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
