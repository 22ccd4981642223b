"""Helpers of the launch tests: a DDS client of the launched graph (its own rclpy context, spun in a thread), the
real launch file as a LaunchDescription, and a small TF chain resolver over what /tf_static and /tf carried (the
tests' own: tf2_ros's Buffer is C++-backed and not installable here)."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import tempfile
import threading
import time

import numpy as np
import pytest
import yaml


# Upper bound of a launched graph's start-up on a slow 2-core CPU (each node process imports torch/diffusers or
# robosuite, the policy loads and warms up its model): waits for the graph's first output use it.
STARTUP_TIMEOUT = 240.0


def skip_without_launch():
    """Module-level skip, with the reason, where the launch tools or the ament registration are missing."""
    missing = [m for m in ("launch", "launch_ros", "launch_pytest", "ros2cli", "tf2_msgs")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: scripts/setup.sh installs them from ros-tools "
                    "(ROS_TOOLS_DIR or ../shared/ros-tools)", allow_module_level=True)
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    from xwam_ros.paths import ensure_ament_prefix
    ensure_ament_prefix()  # as the CLI does: the venv that registers xwam_ros is a prefix even when not activated
    try:  # asked of the ament index itself, not of the code under test (xwam_ros.paths)
        registered = bool(get_package_prefix("xwam_ros"))
    except (PackageNotFoundError, LookupError, OSError, ValueError):
        registered = False
    if not registered:
        pytest.skip("xwam_ros is not registered in the ament index (AMENT_PREFIX_PATH): run scripts/setup.sh and "
                    "source .venv/bin/activate, or source a colcon install", allow_module_level=True)


def policy_launch(**args):
    """The installed launch/policy.launch.py with ``args``; ``overrides`` (dict) goes through overrides_file."""
    from launch import LaunchDescription
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch_pytest.actions import ReadyToTest

    from xwam_ros.paths import share_file
    # one torch thread per launched process, as test/conftest.py sets in-process: the shared 2-core machine runs
    # the model, the simulator and the test at once (the launched nodes inherit this environment)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    overrides = args.pop("overrides", None)
    if overrides:
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="xwam_test_", delete=False)
        yaml.safe_dump({"/**": {"ros__parameters": overrides}}, f)
        f.close()
        args["overrides_file"] = f.name
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(share_file("launch", "policy.launch.py"))),
                                 launch_arguments=[(k, str(v)) for k, v in args.items()]),
        ReadyToTest()])


def rviz_displays(path) -> list:
    """(display name, class, topic) of every display of an .rviz file that subscribes to a topic."""
    doc = yaml.safe_load(open(path))
    out = []
    for d in doc["Visualization Manager"]["Displays"]:
        topic = (d.get("Topic") or {}).get("Value")
        if topic:
            out.append((d["Name"], d["Class"], topic))
    return out


RVIZ_TYPES = {"rviz_default_plugins/PointCloud2": "sensor_msgs/msg/PointCloud2",
              "rviz_default_plugins/MarkerArray": "visualization_msgs/msg/MarkerArray",
              "rviz_default_plugins/PoseArray": "geometry_msgs/msg/PoseArray",
              "rviz_default_plugins/Image": "sensor_msgs/msg/Image"}


def qualify(ns: str, topic: str) -> str:
    return topic if topic.startswith("/") else "/" + "/".join(p for p in (ns.strip("/"), topic) if p)


class GraphClient:
    """Subscribes to what the tests check, keeps messages per topic; spins in its own thread."""

    def __init__(self, ns: str = ""):
        import rclpy
        from rclpy.executors import MultiThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        self.ns = ns
        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node("xwam_launch_test_client", context=self.ctx)
        self.msgs: dict = {}
        self.lock = threading.Lock()
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.ctx)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def name(self, topic: str) -> str:
        return qualify(self.ns, topic)

    def subscribe(self, topic: str, msg_type, qos=10, keep: int = 200) -> str:
        full = self.name(topic)

        def on_msg(m):
            with self.lock:
                lst = self.msgs.setdefault(full, [])
                lst.append(m)
                del lst[:-keep]
        with self.lock:
            self.msgs.setdefault(full, [])
        self.node.create_subscription(msg_type, full, on_msg, qos)
        return full

    def got(self, topic: str) -> list:
        with self.lock:
            return list(self.msgs.get(self.name(topic), []))

    def call(self, srv_type, service: str, request, timeout: float = 30.0):
        client = self.node.create_client(srv_type, self.name(service))
        deadline = time.monotonic() + timeout
        while not client.wait_for_service(timeout_sec=0.5):
            assert time.monotonic() < deadline, f"service {self.name(service)} not available"
        fut = client.call_async(request)
        while not fut.done():
            assert time.monotonic() < deadline, f"no reply from {self.name(service)}"
            time.sleep(0.05)
        return fut.result()

    def publishers(self, topic: str) -> list:
        return self.node.get_publishers_info_by_topic(self.name(topic))

    def close(self):
        import rclpy
        self.executor.shutdown()
        self._thread.join(timeout=10.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.ctx)


async def wait_for(predicate, timeout: float, what: str, step: float = 0.2):
    """Await until ``predicate()`` is true (the launch service's event loop keeps running meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(step)
    value = predicate()
    assert value, f"timed out after {timeout:.0f} s waiting for {what}"
    return value


async def ros2(*args, timeout: float = 60.0) -> str:
    """Run the ros2 CLI (the venv's) without blocking the event loop; returns stdout, fails on a non-zero exit."""
    import sys
    exe = os.path.join(os.path.dirname(sys.executable), "ros2")
    proc = await asyncio.create_subprocess_exec(exe, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, f"ros2 {' '.join(args)} failed ({proc.returncode}): {err.decode()}{out.decode()}"
    return out.decode()


# --- TF -----------------------------------------------------------------------------------------------------------
def tf_matrix(t) -> np.ndarray:
    from transforms3d.quaternions import quat2mat
    r, p = t.transform.rotation, t.transform.translation
    T = np.eye(4)
    T[:3, :3] = quat2mat([r.w, r.x, r.y, r.z])
    T[:3, 3] = [p.x, p.y, p.z]
    return T


def tf_tree(static_msgs: list, dynamic_msgs: list) -> dict:
    """child -> (parent, T_parent_child), the latest of each edge."""
    tree = {}
    for m in list(static_msgs) + list(dynamic_msgs):
        for t in m.transforms:
            tree[t.child_frame_id] = (t.header.frame_id, tf_matrix(t))
    return tree


def resolve(tree: dict, frame: str, target: str) -> np.ndarray:
    """T_target_frame by walking parents from ``frame`` up to ``target``; fails naming the broken link."""
    T, f, seen = np.eye(4), frame, []
    while f != target:
        assert f in tree, f"TF cannot resolve {frame} to {target}: no parent of {f} (chain {seen + [f]})"
        assert f not in seen, f"TF loop at {f}"
        seen.append(f)
        parent, T_pf = tree[f]
        T, f = T_pf @ T, parent
    return T


def status_of(client: GraphClient) -> dict:
    got = client.got("xwam_policy/status")
    return json.loads(got[-1].data) if got else {}
