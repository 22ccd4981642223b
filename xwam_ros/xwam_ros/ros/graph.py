"""Running the graph: launch/policy.launch.py through the launch API (``LaunchedGraph``: the same description that
``ros2 launch`` runs), or, where ``launch`` is not installed, the same nodes in one process (``Graph``: one
MultiThreadedExecutor; the robosuite robot in a child process). ``run_graph`` picks one; `xwam-ros run` and
`xwam-ros demo` go through it, so they run what the launch file says."""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
from pathlib import Path

import yaml

from ..paths import share_file  # noqa: F401  (re-exported)


def graph_env() -> dict:
    """DDS settings of every process of the graph (the launch file's and the fallbacks'): Fast DDS's large-data
    transports, and the package's profile with a 32 MiB shared-memory segment (config/fastdds_large_images.xml):
    with the default 512 KiB segment a 640x480 image does not fit and half of 3 x 640x480 RGB-D at 30 Hz was lost
    between processes (README, "Camera images between processes"). The profile takes precedence over the builtin
    transports where both are set; the caller's own values of either variable win over these."""
    return {"FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA",
            "FASTDDS_DEFAULT_PROFILES_FILE": str(share_file("config", "fastdds_large_images.xml"))}


def launch_available() -> bool:
    """launch + launch_ros are installed and the ament index knows xwam_ros (its executables in lib/xwam_ros)."""
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        return False
    from ..paths import ament_share, ensure_ament_prefix
    ensure_ament_prefix()
    share = ament_share()
    return share is not None and (share.parents[1] / "lib" / "xwam_ros" / "policy_node").exists()


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
        import subprocess
        args = ros_args(config_file, overrides)
        if namespace:
            args += ["-r", f"__ns:=/{namespace.strip('/')}"]
        env = {**graph_env(), **os.environ,  # camera images between processes
               "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "LP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "xwam_ros.ros.sim_robot", *args], env=env)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()


class LaunchedGraph:
    """launch/policy.launch.py in a launch.LaunchService (nodes as child processes, as `ros2 launch` runs them).

    ``overrides`` (parameter name -> value, every node) go to a temporary YAML passed as ``overrides_file``.
    ``run()`` must be called from the main thread (launch's rule: it owns the signal handlers) and returns when the
    graph has shut down (``shutdown()`` from any thread, Ctrl-C, or every process exited)."""

    def __init__(self, config_file=None, sim: bool = True, overrides: dict | None = None, namespace: str = "",
                 checkpoint: str = "", use_sim_time: bool = False, rviz: bool = False, sim_node: str = ""):
        from launch import LaunchDescription, LaunchService
        from launch.actions import IncludeLaunchDescription, RegisterEventHandler
        from launch.event_handlers import OnProcessExit
        from launch.launch_description_sources import PythonLaunchDescriptionSource
        self._tmp = None
        args = {"config_file": str(config_file or ""), "checkpoint": str(checkpoint or ""),
                "sim": str(bool(sim)).lower(), "sim_node": sim_node, "namespace": namespace.strip("/"),
                "use_sim_time": str(bool(use_sim_time)).lower(), "rviz": str(bool(rviz)).lower()}
        if overrides:
            self._tmp = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="xwam_overrides_", delete=False)
            yaml.safe_dump({"/**": {"ros__parameters": dict(overrides)}}, self._tmp)
            self._tmp.close()
            args["overrides_file"] = self._tmp.name
        self.exits: list = []  # (process name, return code) of every node process that ended
        on_exit = OnProcessExit(on_exit=lambda event, _ctx: self.exits.append((event.action.name, event.returncode)))
        self.service = LaunchService()
        self.service.include_launch_description(LaunchDescription([
            RegisterEventHandler(on_exit),
            IncludeLaunchDescription(PythonLaunchDescriptionSource(str(share_file("launch", "policy.launch.py"))),
                                     launch_arguments=list(args.items()))]))

    def run(self) -> int:
        try:
            return self.service.run()
        finally:
            if self._tmp is not None:
                os.unlink(self._tmp.name)

    def shutdown(self) -> None:
        self.service.shutdown()


def run_graph(monitor=None, duration: float = 0.0, log=print, **graph_args) -> int:
    """Runs the graph (the launch file where launch is installed, else the in-process Graph) until ``monitor(graph)``
    returns (it runs in a thread and gets ``graph.exits``), ``duration`` seconds pass (0 = no limit), or Ctrl-C."""
    if launch_available():
        log("[xwam-ros] starting launch/policy.launch.py through the launch API")
        graph = LaunchedGraph(**graph_args)
    else:
        log("[xwam-ros] launch/launch_ros or the ament index registration is missing (scripts/setup.sh installs "
            "both): running the same nodes in one process")
        graph = InProcessRunner(**graph_args)
    stop = threading.Event()

    def watch():
        try:
            if monitor is not None:
                monitor(graph)
            else:
                stop.wait(duration or None)
        finally:
            graph.shutdown()
    if monitor is not None or duration:
        threading.Thread(target=watch, daemon=True, name="xwam-graph-monitor").start()
    try:
        return graph.run()
    finally:
        stop.set()


class InProcessRunner:
    """``Graph`` behind LaunchedGraph's interface (run in the calling thread, shutdown from any thread)."""

    def __init__(self, config_file=None, sim: bool = True, overrides: dict | None = None, namespace: str = "",
                 checkpoint: str = "", use_sim_time: bool = False, rviz: bool = False, sim_node: str = ""):
        if rviz:
            print("[xwam-ros] rviz needs ros2 launch (rviz2 is not installable here); ignored")
        overrides = dict(overrides or {})
        if checkpoint:
            overrides["checkpoint"] = checkpoint
        if use_sim_time:
            overrides["use_sim_time"] = True
        from ..paths import config_path
        self.graph = Graph(config_path(config_file or "policy.yaml"), sim=sim, overrides=overrides,
                           namespace=namespace, sim_node=sim_node or None)
        self._stop = threading.Event()
        self.exits: list = []

    def run(self) -> int:
        self.graph.start()
        try:
            while not self._stop.wait(0.2):
                p = self.graph.sim_process
                if p is not None and p.proc.poll() is not None and not self.exits:
                    self.exits.append(("sim_robot", p.proc.returncode))
        except KeyboardInterrupt:
            pass
        finally:
            self.graph.shutdown()
        return 0

    def shutdown(self) -> None:
        self._stop.set()


class Graph:
    """Simulated robot (optional) + policy node (+ any extra nodes) in one rclpy context.

    ``sim``: the config's simulated robot (``sim_node``): the procedural gantry's camera source runs in this
    process, the robosuite robot in a child process."""

    def __init__(self, config_file=None, sim: bool = True, overrides: dict | None = None, namespace: str = "",
                 policy=None, sim_overrides: dict | None = None, sim_node: str | None = None):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        from .camera_source import CameraSource
        from .policy_node import PolicyNode

        sim_node = (sim_node or sim_node_of(config_file)) if sim else None
        if sim_node == "sim_robot":
            # before this process's DDS participant exists: camera images cross processes
            for key, value in graph_env().items():
                os.environ.setdefault(key, value)
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
            import rclpy
            rclpy.shutdown(context=self.context)
