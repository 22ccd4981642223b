"""Play a bag into the ROS graph with rclpy (and /clock), for machines without ``ros2 bag play``."""
from __future__ import annotations

import time

from ..data.bag_reader import open_reader

def _msg_class(type_name: str):
    import importlib
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def play_bag(path, node, rate: float = 1.0, clock: bool = True, topics=None, qos=10, stop=None) -> int:
    """Publish a bag's messages with rclpy at ``rate`` x real time (and /clock); returns messages published."""
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    r = open_reader(path)
    pubs, n = {}, 0
    clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
    try:
        conns = [c for c in r.connections if topics is None or c.topic in topics]
        for c in conns:
            pubs[c.topic] = (node.create_publisher(_msg_class(c.msgtype), c.topic, qos), _msg_class(c.msgtype))
        time.sleep(0.5)  # discovery
        t_wall0, t_bag0 = time.monotonic(), None
        for conn, t_ns, raw in r.messages(connections=conns):
            if stop is not None and stop():
                break
            t_bag0 = t_ns if t_bag0 is None else t_bag0
            wait = (t_ns - t_bag0) * 1e-9 / rate - (time.monotonic() - t_wall0)
            if wait > 0:
                time.sleep(wait)
            pub, cls = pubs[conn.topic]
            if clock_pub is not None:
                from builtin_interfaces.msg import Time
                clock_pub.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))
            pub.publish(deserialize_message(bytes(raw), cls))
            n += 1
    finally:
        r.close()
    return n
