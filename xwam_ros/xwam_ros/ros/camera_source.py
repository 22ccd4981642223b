"""xwam_camera_source: a stand-in robot for the built-in default, with the topics a real RealSense setup and a
ros2_control arm use.

Publishes, per camera, ``<cam>/color/image_raw`` (rgb8), ``<cam>/aligned_depth_to_color/image_raw`` (16UC1 mm) and
``<cam>/color/camera_info``, plus ``joint_states`` and ``ee_pose`` (relative names: the node's namespace applies),
and TF (``/tf_static``: base_frame -> static camera optical frames; ``/tf``: base_frame -> ``ee_frame`` -> wrist
camera optical frame), rendered from the procedural scene in
``sim/procedural.py``. It executes ``trajectory_msgs/JointTrajectory`` received on the controller topic the way
joint_trajectory_controller does: header.stamp is the start time (0 = on receipt), each point is due at
stamp + time_from_start, positions are interpolated linearly from the state at receipt.
"""
from __future__ import annotations

import threading

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from transforms3d.quaternions import mat2quat
from trajectory_msgs.msg import JointTrajectory

from ..sim.procedural import HOME, JOINT_NAMES, CameraRig, default_cameras, fk
from ..robot.trajectory import TrajectoryFollower, stamp_to_s as _t
from .robot_io import CameraPublishers, StatePublishers, TfPublishers, optical_frame, run_node


class CameraSource(Node):
    def __init__(self, **kwargs):
        super().__init__("xwam_camera_source", **kwargs)
        d = lambda name, default, desc: self.declare_parameter(  # noqa: E731
            name, default, ParameterDescriptor(description=desc)).value
        self.rate = d("camera_rate", 10.0, "Frames per second of every camera.")
        h, w = d("image_height", 120, "Image height (pixels)."), d("image_width", 160, "Image width (pixels).")
        self.base_frame = d("base_frame", "base_link", "Frame of /ee_pose.")
        self.ee_frame = d("ee_frame", "ee_link", "TF frame of the end effector (the pose of ee_pose).")
        controller = d("controller_topic", "arm_controller/joint_trajectory", "Trajectory input topic.")
        self.depth_encoding = d("depth_encoding", "16UC1", "16UC1 (mm, RealSense) or 32FC1 (m).")
        self.rig = CameraRig(h, w)
        self.cams = list(default_cameras())
        self.follower = TrajectoryFollower(HOME, JOINT_NAMES)
        self._lock = threading.Lock()
        self.cameras = CameraPublishers(self, self.cams, self.depth_encoding)
        self.state = StatePublishers(self, self.base_frame)
        self.create_subscription(JointTrajectory, controller, self._on_trajectory, 10)
        self.frames_published = 0
        self.tf = TfPublishers(self)  # the scene's calibration: static cameras once, the wrist camera per state
        self.tf.publish_static([(ext, self.base_frame, optical_frame(c))
                                for c, (kind, ext) in self.rig.cameras.items() if kind == "static"])
        self.create_timer(1.0 / self.rate, self._tick)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        tfs = np.array([_t(p.time_from_start) for p in msg.points])
        pos = np.array([list(p.positions) for p in msg.points]) if msg.points else np.zeros((0, 7))
        with self._lock:
            err = self.follower.set(msg.joint_names, _t(msg.header.stamp), tfs, pos, now)
        if err:
            self.get_logger().error(f"rejected trajectory: {err}")

    def _tick(self) -> None:
        now = self.get_clock().now()
        with self._lock:
            q = self.follower.step(now.nanoseconds * 1e-9)
        stamp = now.to_msg()
        T = fk(q)
        self.state.publish(JOINT_NAMES, q, T[:3, 3], mat2quat(T[:3, :3]), stamp)
        self.tf.publish([(T, self.base_frame, self.ee_frame)]
                        + [(ext, self.ee_frame, optical_frame(c))
                           for c, (kind, ext) in self.rig.cameras.items() if kind == "wrist"], stamp)
        for cam in self.cams:
            rgb, depth = self.rig.render(cam, q)
            self.cameras.publish(cam, rgb, depth, self.rig.K, stamp)
        self.frames_published += 1


def main(args=None):
    run_node(CameraSource, args)


if __name__ == "__main__":
    main()
