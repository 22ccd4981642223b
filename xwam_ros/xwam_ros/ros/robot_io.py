"""What the simulated robots publish the way a real cell does, shared by both: RealSense-style cameras (colour rgb8,
depth aligned to colour, camera_info; sensor-data QoS; one stamp per frameset, as hardware-synchronised cameras),
the arm state (joint_states, ee_pose), TF (/tf_static: base -> static camera optical frames, as a calibration
publisher; /tf: base -> end effector -> wrist camera, as robot_state_publisher), and the process entry point.

Topic names are relative, so a node started in a namespace (``namespace:=robot1``) publishes ``/robot1/joint_states``
etc., as drivers do; /tf and /tf_static stay absolute (one TF tree per DDS domain, as tf2_ros expects)."""
from __future__ import annotations

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header

from ..robot.convert import camera_info_msg, depth_to_image_msg, rgb_to_image_msg
from ..robot.config import realsense_topics


class CameraPublishers:
    def __init__(self, node, cameras, depth_encoding: str = "16UC1"):
        self.depth_encoding = depth_encoding
        self.pubs = {}
        for cam in cameras:
            # relative: the camera topics live in the robot's namespace, as a realsense2_camera node's do
            t = realsense_topics(cam)  # relative names: resolved in the node's namespace
            self.pubs[cam] = (node.create_publisher(Image, t["color_topic"], qos_profile_sensor_data),
                              node.create_publisher(Image, t["depth_topic"], qos_profile_sensor_data),
                              node.create_publisher(CameraInfo, t["info_topic"], qos_profile_sensor_data),
                              t["frame_id"])

    def publish(self, cam: str, rgb: np.ndarray, depth_m: np.ndarray, K: np.ndarray, stamp) -> None:
        pc, pd, pi, frame_id = self.pubs[cam]
        header = Header(stamp=stamp, frame_id=frame_id)
        pc.publish(rgb_to_image_msg(rgb, header, Image))
        pd.publish(depth_to_image_msg(depth_m, header, Image, self.depth_encoding))
        pi.publish(camera_info_msg(K, rgb.shape[0], rgb.shape[1], header, CameraInfo))


class StatePublishers:
    def __init__(self, node, base_frame: str):
        self.base_frame = base_frame
        self.joints = node.create_publisher(JointState, "joint_states", 10)
        self.ee = node.create_publisher(PoseStamped, "ee_pose", 10)

    def publish(self, names, positions, ee_pos, ee_quat_wxyz, stamp) -> None:
        self.joints.publish(JointState(header=Header(stamp=stamp), name=list(names),
                                       position=[float(x) for x in positions]))
        ee = PoseStamped(header=Header(stamp=stamp, frame_id=self.base_frame))
        ee.pose.position.x, ee.pose.position.y, ee.pose.position.z = (float(x) for x in ee_pos)
        o = ee.pose.orientation
        o.w, o.x, o.y, o.z = (float(x) for x in ee_quat_wxyz)
        self.ee.publish(ee)


# tf2_ros's QoS: /tf_static reliable + transient local depth 1 (StaticTransformBroadcaster, one message holding every
# static transform), /tf reliable volatile depth 100 (TransformBroadcaster)
TF_STATIC_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)


def optical_frame(camera: str) -> str:
    """The camera's optical frame (RealSense naming; the frame_id of its images)."""
    return realsense_topics(camera)["frame_id"]


def transform_msg(T: np.ndarray, parent: str, child: str, stamp):
    """geometry_msgs/TransformStamped of the 4x4 pose of ``child`` in ``parent`` (T_parent_child)."""
    from geometry_msgs.msg import TransformStamped
    from transforms3d.quaternions import mat2quat
    T = np.asarray(T, dtype=float)
    msg = TransformStamped(header=Header(stamp=stamp, frame_id=parent), child_frame_id=child)
    t, q = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(x) for x in T[:3, 3])
    q.w, q.x, q.y, q.z = (float(x) for x in mat2quat(T[:3, :3]))
    return msg


class TfPublishers:
    """/tf_static and /tf with tf2_msgs/TFMessage directly (what tf2_ros's broadcasters send): tf2_ros is C++-backed
    and has no wheel here, and these two publishers are all of a broadcaster that a robot needs.

    Without tf2_msgs (a venv without ros-tools) the node runs as before and says once that it publishes no TF."""

    def __init__(self, node):
        self.node = node
        self.static = self.dynamic = None
        self.static_transforms = {}
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            node.get_logger().warning("tf2_msgs is not installed (scripts/setup.sh installs it with ros-tools): "
                                      "no /tf or /tf_static is published")
            return
        self.TFMessage = TFMessage
        self.static = node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        self.dynamic = node.create_publisher(TFMessage, "/tf", TF_QOS)

    def publish_static(self, transforms: list) -> None:
        """``transforms``: (T_parent_child, parent, child). Added to the latched set; all of it goes out in one
        message, as StaticTransformBroadcaster does (depth 1: a late subscriber gets every static transform)."""
        if self.static is None:
            return
        stamp = self.node.get_clock().now().to_msg()
        for T, parent, child in transforms:
            self.static_transforms[child] = transform_msg(T, parent, child, stamp)
        self.static.publish(self.TFMessage(transforms=list(self.static_transforms.values())))

    def publish(self, transforms: list, stamp) -> None:
        """``transforms``: (T_parent_child, parent, child), all stamped ``stamp`` (the state's stamp)."""
        if self.dynamic is None:
            return
        self.dynamic.publish(self.TFMessage(transforms=[transform_msg(T, p, c, stamp) for T, p, c in transforms]))


def pose_matrix(pos, quat_wxyz) -> np.ndarray:
    from transforms3d.quaternions import quat2mat
    T = np.eye(4)
    T[:3, :3] = quat2mat(np.asarray(quat_wxyz, dtype=float))
    T[:3, 3] = np.asarray(pos, dtype=float)
    return T


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
