"""The built-in default: launch/policy.launch.py with the simulated robot + the policy node (the shipped tiny X-WAM,
CPU), arm enabled in simulation, imagination on, for a few episodes (or a bounded time); prints success and latency,
records the published topics to MCAP and writes a PNG of the imagined 4D future.

The graph runs as `ros2 launch` runs it (ros/graph.py: run_graph); this module only watches it over DDS like any
client: the policy's ``~/status`` (JSON), ``sim/episode_result``, the imagined future and the joint states."""
from __future__ import annotations

import json
import time
from collections import deque
from pathlib import Path

import numpy as np

from ..paths import config_path
from ..robot.cadence import format_cadence
from ..robot.config_file import load_setup, qualified
from ..robot.trajectory import stamp_to_s
from .graph import run_graph, sim_node_of


def recorded_topics(ns: str):
    """(topic, type, QoS) of everything the demo's MCAP holds: the imagined future, observations, commands and TF
    (so Foxglove and RViz can place every cloud; foxglove/xwam_layout.json shows these topics)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState, PointCloud2
    from tf2_msgs.msg import TFMessage
    from trajectory_msgs.msg import JointTrajectory
    from visualization_msgs.msg import MarkerArray
    from xwam_interfaces.msg import ActionChunk, ImaginedFuture
    rel = QoSProfile(depth=50)
    topics = [("xwam_policy/imagined/points", PointCloud2, rel), ("xwam_policy/imagined/future", ImaginedFuture, rel),
              ("xwam_policy/imagined/ee_path", MarkerArray, rel), ("xwam_policy/action_chunk", ActionChunk, rel),
              ("xwam_policy/observed/points", PointCloud2, qos_profile_sensor_data),
              ("arm_controller/joint_trajectory", JointTrajectory, rel), ("joint_states", JointState, rel),
              ("/diagnostics", DiagnosticArray, rel), ("agentview/color/image_raw", Image, qos_profile_sensor_data),
              ("/tf", TFMessage, QoSProfile(depth=100)),
              ("/tf_static", TFMessage, QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))]
    return [(qualified(t, ns), cls, qos) for t, cls, qos in topics]


def _nearest(history, t_s: float, tol_s: float):
    """The message of ``history`` [(stamp_s, msg)] nearest to ``t_s`` within ``tol_s``, else None."""
    best = min(history, key=lambda sm: abs(sm[0] - t_s), default=None)
    return best[1] if best is not None and abs(best[0] - t_s) <= tol_s else None


IMAGINATION_GRACE_S = 20.0


class DemoMonitor:
    """Watches the running graph from its own rclpy context (a thread of this process), records it, and decides
    when the demo is over. Everything it learns comes from topics, as any other client would see it."""

    def __init__(self, bag: Path, episodes: int, duration: float, max_imaginations: int, wait_for_episodes: bool,
                 namespace: str = "", log=print, view=None):
        self.bag, self.episodes, self.duration = bag, episodes, duration
        self.max_imaginations, self.wait_for_episodes, self.ns, self.log = max_imaginations, wait_for_episodes, \
            namespace, log
        self.results, self.status, self.joints = [], {}, []
        # recent imagined futures and what was observed afterwards: the snapshot pairs each future step with the
        # observation of the same time
        self.futures, self.observed = deque(maxlen=8), deque(maxlen=120)
        self.images = {k: deque(maxlen=90) for k in ("color", "depth")}
        self.view = view  # a static camera's CameraConfig (topics resolved in the namespace): the RGB-D strips
        self.recorder, self.error, self.t_ready, self.graph_kind = None, None, None, None
        self.startup_timeout = 600.0  # node start-up (imports, model load, warm-up) is not part of ``duration``

    def _setup(self, node) -> None:
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState, PointCloud2
        from std_msgs.msg import String
        from xwam_interfaces.msg import ImaginedFuture

        from .recording import BagRecorder
        from .sim_robot import RESULT_QOS
        n = lambda t: qualified(t, self.ns)  # noqa: E731
        node.create_subscription(String, n("sim/episode_result"), lambda m: self.results.append(json.loads(m.data)),
                                 RESULT_QOS)
        node.create_subscription(String, n("xwam_policy/status"),
                                 lambda m: self.status.update(json.loads(m.data)), 10)
        node.create_subscription(ImaginedFuture, n("xwam_policy/imagined/future"),
                                 lambda m: self.futures.append(m), QoSProfile(depth=2))
        node.create_subscription(PointCloud2, n("xwam_policy/observed/points"),
                                 lambda m: self.observed.append((stamp_to_s(m.header.stamp), m)), qos_profile_sensor_data)
        if self.view is not None:  # one static camera's real colour and depth, for the RGB-D strips
            for key, topic in (("color", self.view.color_topic), ("depth", self.view.depth_topic)):
                node.create_subscription(Image, topic, lambda m, k=key: self.images[k].append((stamp_to_s(m.header.stamp), m)),
                                         qos_profile_sensor_data)
        node.create_subscription(JointState, n("joint_states"), self._on_joints, 10)
        self.recorder = BagRecorder(node, self.bag, recorded_topics(self.ns), storage="mcap")

    def _on_joints(self, msg) -> None:  # keeps the first and the latest state: how far the arm moved
        self.joints[1 if self.joints else 0:] = [np.array(msg.position)]

    def _done(self, t0: float, graph) -> bool:
        c = self.status.get("counters", {})
        if self.max_imaginations and c.get("imaginations", 0) >= self.max_imaginations:
            return True
        if self.wait_for_episodes and len(self.results) >= self.episodes:
            # imagination runs beside the action path at a lower priority: give one that is under way time to land,
            # so the recording and the snapshot show an imagined future
            self._episodes_done_at = getattr(self, "_episodes_done_at", None) or time.monotonic()
            return c.get("imaginations", 0) >= 1 or time.monotonic() - self._episodes_done_at > IMAGINATION_GRACE_S
        if graph.exits:
            name, code = graph.exits[0]
            if not (self.wait_for_episodes and len(self.results) >= self.episodes):
                raise RuntimeError(f"{name} exited (code {code}) after {len(self.results)} of {self.episodes} "
                                   "episodes; its log is above")
        return time.monotonic() - t0 >= self.duration

    def _report(self, t: float) -> None:
        c, lat = self.status.get("counters", {}), self.status.get("latency_median_s", {})
        fmt = lambda v: f"{v * 1e3:.0f} ms" if v is not None else "n/a"  # noqa: E731
        self.log(f"[demo] t={t:5.1f}s episodes={len(self.results)} queries={c.get('queries', 0)} "
                 f"trajectories={c.get('trajectories_sent', 0)} imaginations={c.get('imaginations', 0)} "
                 f"model={fmt(lat.get('model'))} imagine={fmt(lat.get('imagine'))} "
                 f"errors={self.status.get('last_error') or 'none'}")

    def __call__(self, graph) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.signals import SignalHandlerOptions
        from .graph import LaunchedGraph
        self.graph_kind = "launch" if isinstance(graph, LaunchedGraph) else "in-process"
        ctx = rclpy.Context()
        rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO)  # the launch service owns signals
        node = Node("xwam_demo_monitor", context=ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(node)
        spin = lambda sec: [ex.spin_once(timeout_sec=0.05) for _ in range(max(1, int(sec / 0.05)))]  # noqa: E731
        try:
            self._setup(node)
            t_start = time.monotonic()
            while not self.status and not graph.exits:  # the policy publishes ~/status once its model is loaded
                if time.monotonic() - t_start > self.startup_timeout:
                    raise RuntimeError(f"the policy published no status within {self.startup_timeout:.0f} s")
                spin(0.2)
            self.t_ready = time.monotonic() - t_start
            self.log(f"[demo] policy up after {self.t_ready:.1f} s; running for up to {self.duration:.0f} s")
            t0 = next_report = time.monotonic()
            while not self._done(t0, graph):
                spin(0.2)
                if time.monotonic() >= next_report + 5:
                    next_report += 5
                    self._report(time.monotonic() - t0)
            spin(1.5)  # the last imagination's messages and status reach the recorder before it closes
        except Exception as exc:  # reported by run_demo once the graph is down
            self.error = exc
        finally:
            if self.recorder is not None:
                self.recorder.close()
            ex.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=ctx)


def run_demo(duration: float = 600.0, out_dir="outputs/demo", config_file=None, max_imaginations: int = 0,
             episodes: int = 3, namespace: str = "", log=print) -> dict:
    """Runs until ``episodes`` simulated episodes are over (robosuite robot), ``max_imaginations`` imagined
    futures were published (if set), or ``duration`` seconds passed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "imagined.mcap"
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    config_file = config_path(config_file or "policy.yaml")
    log(f"[demo] config {config_file}; starting the simulated robot + xwam_policy (CPU), arm enabled in simulation")
    view = next((c for c in load_setup(config_file, namespace=namespace).cameras if c.kind == "static"), None)
    monitor = DemoMonitor(bag, episodes, duration, max_imaginations, sim_node_of(config_file) == "sim_robot",
                          namespace, log, view)
    run_graph(monitor=monitor, log=log, config_file=config_file, sim=True, namespace=namespace,
              overrides={"enabled": True, "episodes": episodes})
    if monitor.error is not None:
        raise monitor.error
    return _summarise(monitor, out, log)


def future_steps(m: DemoMonitor, tol_s: float = 0.25) -> list:
    """StepViews of the newest imagined future whose horizon has been observed (else the newest): per step the
    imagined cloud and RGB-D of the monitored view beside the observation nearest in time."""
    from ..robot.convert import depth_to_metres, image_to_rgb
    from .pointcloud2 import read_xyzrgb
    from .snapshot import StepView
    if not m.futures:
        return []
    last_seen = m.observed[-1][0] if m.observed else -np.inf
    future = next((f for f in reversed(m.futures) if f.clouds and stamp_to_s(f.clouds[-1].header.stamp) <= last_seen),
                  m.futures[-1])
    names = list(future.view_names)
    v = names.index(m.view.name) if m.view is not None and m.view.name in names else None
    steps = []
    for k, cloud in enumerate(future.clouds):
        t = stamp_to_s(cloud.header.stamp)
        seen = _nearest(m.observed, t, tol_s)
        color, depth = (_nearest(m.images[key], t, tol_s) for key in ("color", "depth"))
        pred = (None, None)
        if v is not None and k * future.num_views + v < len(future.rgb):  # rgb/depth: [future step][view] flattened
            i = k * future.num_views + v
            pred = (image_to_rgb(future.rgb[i]), depth_to_metres(future.depth[i]))
        steps.append(StepView(t_s=t - stamp_to_s(future.header.stamp), imagined=read_xyzrgb(cloud),
                              observed=read_xyzrgb(seen) if seen is not None else None,
                              imagined_rgb=pred[0], imagined_depth=pred[1],
                              observed_rgb=image_to_rgb(color) if color is not None else None,
                              observed_depth=depth_to_metres(depth) if depth is not None else None))
    return steps


def _summarise(m: DemoMonitor, out: Path, log) -> dict:
    from .pointcloud2 import read_xyzrgb
    from .snapshot import future_grid, snapshot
    png, grid = out / "imagined_cloud.png", out / "imagined_vs_observed.png"
    if m.futures:
        observed = read_xyzrgb(m.observed[-1][1]) if m.observed else None
        snapshot([read_xyzrgb(c) for c in m.futures[-1].clouds], png, observed=observed)
        future_grid(future_steps(m), grid)
    status = {"counters": {}, "latency_median_s": {}, **m.status}
    summary = {"bag": str(m.bag), "png": str(png) if png.exists() else None,
               "grid_png": str(grid) if grid.exists() else None,
               "recorded_messages": m.recorder.counts if m.recorder else {}, "episodes": m.results,
               "startup_s": m.t_ready, "graph": m.graph_kind, **status}
    if m.results:
        summary["success_rate"] = sum(r["success"] for r in m.results) / len(m.results)
    if len(m.joints) >= 2:
        summary["arm_moved_m"] = float(np.linalg.norm(m.joints[-1][:3] - m.joints[0][:3]))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    lat = status["latency_median_s"]
    log(f"[demo] done: {status['counters']}")
    log(f"[demo] median latency: model {lat.get('model')}, obs->action {lat.get('obs_to_action')}, "
        f"imagine {lat.get('imagine')} s")
    if status.get("cadence"):  # the policy's cadence report, as its ~/status carried it over DDS
        log("[demo] cadence of the action path (last queries):\n" + format_cadence(status["cadence"]))
    if m.results:
        log(f"[demo] episodes: {sum(r['success'] for r in m.results)}/{len(m.results)} successful "
            f"({', '.join(str(r['steps']) + ' steps' for r in m.results)})")
    if "arm_moved_m" in summary:
        log(f"[demo] arm moved {summary['arm_moved_m']:.3f} m")
    log(f"[demo] 4D recording (open in Foxglove, or `ros2 bag play`): {m.bag}")
    log(f"[demo] imagined cloud snapshot: {png}; imagined vs observed per future step: {grid}")
    return summary
