"""Record topics to a ROS 2 bag (MCAP or sqlite3) from rclpy, through the pure-Python ``rosbags`` writer.

rosbags cannot serialise rclpy objects, so messages are stored as ``rclpy.serialization.serialize_message`` bytes --
the same CDR bytes ``ros2 bag record`` writes; Foxglove, ``ros2 bag play`` and rosbags read them.
"""
from __future__ import annotations

import threading
from pathlib import Path

from rclpy.serialization import serialize_message

from ..data.bag_reader import make_typestore


def msg_type_name(msg_cls) -> str:
    """'sensor_msgs/msg/Image' for an rclpy message class."""
    mod = msg_cls.__module__.split(".")
    return f"{mod[0]}/msg/{msg_cls.__name__}"


class BagRecorder:
    """Subscribes ``node`` to (topic, msg_cls, qos) and writes every message; close() finalises the bag.

    Callbacks only serialise and enqueue; one writer thread owns the rosbags Writer (sqlite3 connections must stay
    on the thread that opened them, and disk writes must not stall the executor). A full queue drops and counts.
    """

    def __init__(self, node, path, topics, storage: str = "mcap", max_queue: int = 2000):
        import queue

        from rosbags.rosbag2 import StoragePlugin, Writer

        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: bag already exists; refusing to overwrite it")
        self.path = path
        self.counts = {t: 0 for t, _, _ in topics}
        self.dropped = 0
        self._queue = queue.Queue(maxsize=max_queue)
        self._types = {t: msg_type_name(cls) for t, cls, _ in topics}
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._opened = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, args=(Writer, plugin), daemon=True)
        self._thread.start()
        self._opened.wait(10.0)
        if self._error:
            raise self._error
        for topic, cls, qos in topics:
            node.create_subscription(cls, topic, lambda m, t=topic: self._enqueue(t, m, node), qos)
        self._closed = False

    def _run(self, writer_cls, plugin) -> None:
        try:
            writer = writer_cls(self.path, version=9, storage_plugin=plugin)
            writer.open()
            ts = make_typestore()
            conns = {t: writer.add_connection(t, typ, typestore=ts) for t, typ in self._types.items()}
        except Exception as exc:  # reported to the constructor
            self._error = exc
            self._opened.set()
            return
        self._opened.set()
        while True:
            item = self._queue.get()
            if item is None:
                break
            topic, t_ns, data = item
            writer.write(conns[topic], t_ns, data)
            self.counts[topic] += 1
        writer.close()

    def _enqueue(self, topic, msg, node) -> None:
        if self._closed:
            return
        try:
            self._queue.put_nowait((topic, node.get_clock().now().nanoseconds, serialize_message(msg)))
        except Exception:
            self.dropped += 1

    def close(self) -> None:
        if not getattr(self, "_closed", True):
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30.0)
