"""xwam_recorder: record the evaluation topic set to a bag with rclpy + rosbags (no rosbag2 needed).

    xwam-ros record --out my_bag [--config robot.yaml] [--storage mcap|sqlite3] [--duration 60]
"""
from __future__ import annotations

import argparse
import importlib
import time

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data

from ..robot.config_file import load_setup
from ..eval.topics import evaluation_topics, ros2_bag_command
from .recording import BagRecorder


def msg_class(type_name: str):
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def recorder_topics(setup) -> list:
    out = []
    for topic, typ in evaluation_topics(setup):
        try:
            cls = msg_class(typ)
        except (ImportError, AttributeError):
            continue  # e.g. xwam_interfaces not built: record the rest
        qos = qos_profile_sensor_data if typ == "sensor_msgs/msg/Image" else QoSProfile(depth=100)
        out.append((topic, cls, qos))
    return out


def record_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros record", description="Record the evaluation topic set.")
    ap.add_argument("--out", required=True, help="bag directory to create (must not exist)")
    ap.add_argument("--config", default=None, help="the policy node's parameter YAML (topics)")
    ap.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    ap.add_argument("--duration", type=float, default=0.0, help="seconds (0 = until Ctrl-C)")
    ap.add_argument("--print-ros2-command", action="store_true", help="print the equivalent ros2 bag record")
    a = ap.parse_args(argv)
    from .graph import share_file
    setup = load_setup(a.config or share_file("config", "policy.yaml"))
    if a.print_ros2_command:
        print(ros2_bag_command(setup, a.out))
        return 0
    rclpy.init()
    node = Node("xwam_recorder")
    rec = BagRecorder(node, a.out, recorder_topics(setup), a.storage)
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    t0 = time.monotonic()
    try:
        while not a.duration or time.monotonic() - t0 < a.duration:
            ex.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rec.close()
        ex.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    print(f"recorded {sum(rec.counts.values())} messages to {a.out}: {rec.counts}")
    return 0
