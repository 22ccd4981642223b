"""Record topics to a ROS 2 bag (MCAP or sqlite3) from rclpy, through the pure-Python ``rosbags`` writer.

rosbags cannot serialise rclpy objects, so messages are stored as ``rclpy.serialization.serialize_message`` bytes --
the same CDR bytes ``ros2 bag record`` writes; Foxglove, ``ros2 bag play`` and rosbags read them.
"""
from __future__ import annotations

import threading
from pathlib import Path

from rclpy.serialization import serialize_message

from ..eval.bag_reader import make_typestore


def msg_type_name(msg_cls) -> str:
    """'sensor_msgs/msg/Image' for an rclpy message class."""
    mod = msg_cls.__module__.split(".")
    return f"{mod[0]}/msg/{msg_cls.__name__}"


class BagRecorder:
    """Subscribes ``node`` to (topic, msg_cls, qos) and writes every message; thread-safe; close() finalises."""

    def __init__(self, node, path, topics, storage: str = "mcap"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: bag already exists; refusing to overwrite it")
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.typestore = make_typestore()
        self.writer = Writer(path, version=9, storage_plugin=plugin)
        self.writer.open()
        self.path = path
        self.counts = {}
        self._lock = threading.Lock()
        self._conns = {}
        for topic, cls, qos in topics:
            self._conns[topic] = self.writer.add_connection(topic, msg_type_name(cls), typestore=self.typestore)
            self.counts[topic] = 0
            node.create_subscription(cls, topic, lambda m, t=topic: self._write(t, m, node), qos)
        self._closed = False

    def _write(self, topic, msg, node) -> None:
        t_ns = node.get_clock().now().nanoseconds
        data = serialize_message(msg)
        with self._lock:
            if not self._closed:
                self.writer.write(self._conns[topic], t_ns, data)
                self.counts[topic] += 1

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.writer.close()
