"""A TF reader for rclpy: ``/tf`` and ``/tf_static`` (tf2_msgs/TFMessage) into a ``robot.tf_tree.TransformTree``.

Hand-written because ``tf2_ros.Buffer`` / ``TransformListener`` need the tf2 C++ library (``tf2_py``), which has no
wheel for the pip-only ROS 2 install this project supports; only the message package ``tf2_msgs`` builds here. The
subscriptions use tf2_ros's QoS (``/tf``: reliable, volatile, depth 100; ``/tf_static``: reliable, transient local,
depth 100, so static transforms published before we started still arrive), and quaternions become matrices through
``tf_transformations``. Bad transforms (unnormalised quaternion, NaN, loops) are counted and kept in ``last_error``,
never raised into the executor.

Also here: ``transform_to_matrix`` / ``matrix_to_transform`` / ``make_transform_stamped``, the message <-> 4x4
conversions publishers of TF (the simulated robots) use.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import tf_transformations
from geometry_msgs.msg import Transform, TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from ..robot.tf_tree import TransformTree

# tf2_ros's DynamicListenerQoS / StaticListenerQoS (and the broadcasters' matching profiles)
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
_QUAT_TOL = 1e-2  # tf2's QUATERNION_NORMALIZATION_TOLERANCE on |q|^2 - 1


def transform_to_matrix(tf: Transform) -> np.ndarray:
    """geometry_msgs/Transform -> 4x4 float64; ValueError for a non-finite or unnormalised quaternion (as tf2)."""
    q = np.array([tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w], np.float64)
    t = np.array([tf.translation.x, tf.translation.y, tf.translation.z], np.float64)
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(t))):
        raise ValueError("transform has non-finite translation or rotation")
    if abs(float(q @ q) - 1.0) > _QUAT_TOL:
        raise ValueError(f"quaternion {q.tolist()} is not normalised (|q| = {np.linalg.norm(q):.4f})")
    T = tf_transformations.quaternion_matrix(q)
    T[:3, 3] = t
    return T


def matrix_to_transform(T) -> Transform:
    """4x4 rigid transform -> geometry_msgs/Transform."""
    T = np.asarray(T, np.float64)
    q = tf_transformations.quaternion_from_matrix(T)
    tf = Transform()
    tf.translation.x, tf.translation.y, tf.translation.z = (float(v) for v in T[:3, 3])
    tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w = (float(v) for v in q)
    return tf


def make_transform_stamped(parent: str, child: str, T, stamp) -> TransformStamped:
    """``T_parent_child`` as a TransformStamped (``stamp``: builtin_interfaces/Time)."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    msg.transform = matrix_to_transform(T)
    return msg


@dataclass
class TfListenerStats:
    received: int = 0  # TransformStamped entries seen (both topics)
    rejected: int = 0  # entries refused (bad quaternion, NaN, loop, bad frame id)
    last_error: str = ""


class TfListener:
    """Subscribes ``tf_topic`` and ``tf_static_topic`` on ``node`` and stores every transform in ``tree``.

    Topic names are resolved like any other (absolute by default, as tf2_ros; pass "tf" / "tf_static" to follow the
    node's namespace). ``callback_group`` lets a node keep TF off its image callbacks.
    """

    def __init__(self, node, tree: TransformTree, tf_topic: str = "/tf", tf_static_topic: str = "/tf_static",
                 callback_group=None):
        self.node = node
        self.tree = tree
        self.stats = TfListenerStats()
        self._lock = threading.Lock()
        self._subs = [
            node.create_subscription(TFMessage, tf_topic, lambda m: self._on_msg(m, static=False), TF_QOS,
                                     callback_group=callback_group),
            node.create_subscription(TFMessage, tf_static_topic, lambda m: self._on_msg(m, static=True),
                                     TF_STATIC_QOS, callback_group=callback_group),
        ]

    def _on_msg(self, msg: TFMessage, static: bool) -> None:
        for ts in msg.transforms:
            parent, child = ts.header.frame_id, ts.child_frame_id
            try:
                T = transform_to_matrix(ts.transform)
                self.tree.set_transform(parent, child, T, ts.header.stamp.sec + ts.header.stamp.nanosec * 1e-9,
                                        static=static)
                with self._lock:
                    self.stats.received += 1
            except ValueError as e:
                err = f"rejected {'static ' if static else ''}transform {parent!r} -> {child!r}: {e}"
                with self._lock:
                    self.stats.received += 1
                    self.stats.rejected += 1
                    self.stats.last_error = err
                self.node.get_logger().warning(err, throttle_duration_sec=5.0)

    def destroy(self) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
