"""The launch file's graph in one process, for machines without ``launch``/``ros2`` (ours): the same nodes, the same
parameter file and overrides, the same topics -- spun by one MultiThreadedExecutor."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import rclpy
import yaml
from rclpy.executors import MultiThreadedExecutor

from ..paths import share_file  # noqa: F401  (re-exported)


def ros_args(config_file=None, overrides: dict | None = None) -> list:
    args = ["--ros-args"]
    if config_file:
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"parameter file {config_file} not found")
        args += ["--params-file", str(config_file)]
    for k, v in (overrides or {}).items():
        args += ["-p", f"{k}:={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"]
    return args


def sim_node_of(config_file) -> str:
    """Which simulated robot a parameter file is written for: ``sim_node`` under ``/**`` (default sim_robot)."""
    if not config_file:
        return "sim_robot"
    params = (yaml.safe_load(Path(config_file).read_text()) or {}).get("/**", {}).get("ros__parameters", {})
    node = params.get("sim_node", "sim_robot")
    if node not in ("sim_robot", "camera_source"):
        raise ValueError(f"{config_file}: sim_node must be sim_robot or camera_source, got {node!r}")
    return node


class SimRobotProcess:
    """The robosuite robot as its own process (as a real robot's drivers are): MuJoCo stepping and rendering then
    never compete with the model for this process's interpreter lock."""

    def __init__(self, config_file=None, overrides: dict | None = None, namespace: str = ""):
        import os
        import subprocess
        args = ros_args(config_file, overrides)
        if namespace:
            args += ["-r", f"__ns:=/{namespace.strip('/')}"]
        env = {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA", **os.environ,  # camera images between processes
               "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "LP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "xwam_ros.ros.sim_robot", *args], env=env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()


class Graph:
    """Simulated robot (optional) + policy node (+ any extra nodes) in one rclpy context.

    ``sim``: the config's simulated robot (``sim_node``): the procedural gantry's camera source runs in this
    process, the robosuite robot in a child process."""

    def __init__(self, config_file=None, sim: bool = True, overrides: dict | None = None, namespace: str = "",
                 policy=None, sim_overrides: dict | None = None):
        from .camera_source import CameraSource
        from .policy_node import PolicyNode

        sim_node = sim_node_of(config_file) if sim else None
        if sim_node == "sim_robot":
            import os  # before this process's DDS participant exists: camera images cross processes
            os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")
        self.context = rclpy.Context()
        rclpy.init(args=ros_args(config_file, overrides), context=self.context)
        self.nodes = []
        self.camera = self.sim_process = None
        try:
            if sim_node == "camera_source":
                self.camera = CameraSource(context=self.context, namespace=namespace)
                self.nodes.append(self.camera)
            elif sim_node == "sim_robot":
                self.sim_process = SimRobotProcess(config_file, {**(overrides or {}), **(sim_overrides or {})},
                                                   namespace)
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
        if getattr(self, "sim_process", None) is not None:
            self.sim_process.stop()
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
