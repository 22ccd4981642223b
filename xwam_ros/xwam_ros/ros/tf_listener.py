"""A TF reader for rclpy: ``/tf`` and ``/tf_static`` (tf2_msgs/TFMessage) into a ``robot.tf_tree.TransformTree``.

Hand-written because ``tf2_ros.Buffer`` / ``TransformListener`` need the tf2 C++ library (``tf2_py``), which has no
wheel for the pip-only ROS 2 install this project supports; only the message package ``tf2_msgs`` builds here. The
subscriptions use tf2_ros's QoS (``/tf``: reliable, volatile, depth 100; ``/tf_static``: reliable, transient local,
depth 100, so static transforms published before we started still arrive). Message -> matrix conversion and the
tree live in ``robot/tf_tree.py`` (no rclpy, so bag readers use the same code). Bad transforms (unnormalised
quaternion, NaN, loops) are counted and kept in ``last_error``, never raised into the executor.

Also here: ``matrix_to_transform`` / ``make_transform_stamped`` for publishers of TF (the simulated robots).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from geometry_msgs.msg import Transform, TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from ..robot.tf_tree import TransformTree, apply_transforms, matrix_to_translation_quaternion

# tf2_ros's DynamicListenerQoS / StaticListenerQoS (and the broadcasters' matching profiles)
TF_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)


def matrix_to_transform(T) -> Transform:
    """4x4 rigid transform -> geometry_msgs/Transform."""
    t, q = matrix_to_translation_quaternion(T)
    tf = Transform()
    tf.translation.x, tf.translation.y, tf.translation.z = (float(v) for v in t)
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
        errors = apply_transforms(self.tree, msg.transforms, static)
        with self._lock:
            self.stats.received += len(msg.transforms)
            self.stats.rejected += len(errors)
            if errors:
                self.stats.last_error = errors[-1]
        for err in errors:
            self.node.get_logger().warning(err, throttle_duration_sec=5.0)

    def destroy(self) -> None:
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self._subs = []
