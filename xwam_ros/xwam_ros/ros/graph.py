"""The launch file's graph in one process, for machines without ``launch``/``ros2`` (ours): the same nodes, the same
parameter file and overrides, the same topics -- spun by one MultiThreadedExecutor."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import MultiThreadedExecutor


def share_file(*parts) -> Path:
    """A file of the package's share directory (installed by colcon/pip) or of the source tree."""
    candidates = [Path(sys.prefix) / "share" / "xwam_ros" / Path(*parts),
                  Path(__file__).resolve().parents[2] / Path(*parts)]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{Path(*parts)} not found in {[str(c) for c in candidates]}")


def ros_args(config_file=None, overrides: dict | None = None) -> list:
    args = ["--ros-args"]
    if config_file:
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"parameter file {config_file} not found")
        args += ["--params-file", str(config_file)]
    for k, v in (overrides or {}).items():
        args += ["-p", f"{k}:={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"]
    return args


class Graph:
    """Camera source (optional) + policy node (+ any extra nodes) in one rclpy context."""

    def __init__(self, config_file=None, sim: bool = True, overrides: dict | None = None, namespace: str = "",
                 policy=None):
        from .camera_source import CameraSource
        from .policy_node import PolicyNode

        self.context = rclpy.Context()
        rclpy.init(args=ros_args(config_file, overrides), context=self.context)
        self.nodes = []
        try:
            if sim:
                self.camera = CameraSource(context=self.context, namespace=namespace)
                self.nodes.append(self.camera)
            self.policy_node = PolicyNode(policy=policy, context=self.context, namespace=namespace)
            self.nodes.append(self.policy_node)
        except Exception:
            self.shutdown()
            raise
        self.executor = MultiThreadedExecutor(num_threads=3, context=self.context)
        for n in self.nodes:
            self.executor.add_node(n)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)

    def add_node(self, node) -> None:
        self.nodes.append(node)
        self.executor.add_node(node)

    def start(self) -> "Graph":
        self._thread.start()
        return self

    def shutdown(self) -> None:
        ex = getattr(self, "executor", None)
        if ex is not None:
            ex.shutdown()  # waits for running callbacks, so none touches a destroyed entity
        if getattr(self, "_thread", None) is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)
        for n in reversed(self.nodes):
            n.destroy_node()
        self.nodes = []
        if self.context.ok():
            rclpy.shutdown(context=self.context)
