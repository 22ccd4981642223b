"""The built-in default: launch/policy.launch.py with the simulated robot + the policy node (the shipped tiny X-WAM,
CPU), arm enabled in simulation, imagination on, for a few episodes (or a bounded time); prints success and latency,
records the published topics to MCAP and writes a PNG of the imagined 4D future.

The graph runs as `ros2 launch` runs it (ros/graph.py: run_graph); this module only watches it over DDS like any
client: the policy's ``~/status`` (JSON), ``sim/episode_result``, the imagined future and the joint states."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..paths import config_path
from ..robot.cadence import format_cadence
from .graph import run_graph, sim_node_of


def _name(ns: str, topic: str) -> str:
    """Fully qualified name of a graph topic under namespace ``ns`` (/diagnostics stays global)."""
    return topic if topic.startswith("/") else "/" + "/".join(p for p in (ns.strip("/"), topic) if p)


def _recorded_topics(ns: str):
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState, PointCloud2
    from trajectory_msgs.msg import JointTrajectory
    from visualization_msgs.msg import MarkerArray
    from xwam_interfaces.msg import ActionChunk, ImaginedFuture
    rel = QoSProfile(depth=50)
    topics = [("xwam_policy/imagined/points", PointCloud2, rel), ("xwam_policy/imagined/future", ImaginedFuture, rel),
              ("xwam_policy/imagined/ee_path", MarkerArray, rel), ("xwam_policy/action_chunk", ActionChunk, rel),
              ("xwam_policy/observed/points", PointCloud2, qos_profile_sensor_data),
              ("arm_controller/joint_trajectory", JointTrajectory, rel), ("joint_states", JointState, rel),
              ("/diagnostics", DiagnosticArray, rel), ("agentview/color/image_raw", Image, qos_profile_sensor_data)]
    return [(_name(ns, t), cls, qos) for t, cls, qos in topics]


IMAGINATION_GRACE_S = 20.0


class DemoMonitor:
    """Watches the running graph from its own rclpy context (a thread of this process), records it, and decides
    when the demo is over. Everything it learns comes from topics, as any other client would see it."""

    def __init__(self, bag: Path, episodes: int, duration: float, max_imaginations: int, wait_for_episodes: bool,
                 namespace: str = "", log=print):
        self.bag, self.episodes, self.duration = bag, episodes, duration
        self.max_imaginations, self.wait_for_episodes, self.ns, self.log = max_imaginations, wait_for_episodes, \
            namespace, log
        self.results, self.status, self.last, self.joints = [], {}, {}, []
        self.recorder, self.error, self.t_ready, self.graph_kind = None, None, None, None
        self.startup_timeout = 600.0  # node start-up (imports, model load, warm-up) is not part of ``duration``

    def _setup(self, node) -> None:
        from rclpy.qos import QoSProfile, qos_profile_sensor_data
        from sensor_msgs.msg import JointState, PointCloud2
        from std_msgs.msg import String
        from xwam_interfaces.msg import ImaginedFuture

        from .recording import BagRecorder
        from .sim_robot import RESULT_QOS
        n = lambda t: _name(self.ns, t)  # noqa: E731
        node.create_subscription(String, n("sim/episode_result"), lambda m: self.results.append(json.loads(m.data)),
                                 RESULT_QOS)
        node.create_subscription(String, n("xwam_policy/status"),
                                 lambda m: self.status.update(json.loads(m.data)), 10)
        node.create_subscription(ImaginedFuture, n("xwam_policy/imagined/future"),
                                 lambda m: self.last.__setitem__("future", m), QoSProfile(depth=2))
        node.create_subscription(PointCloud2, n("xwam_policy/observed/points"),
                                 lambda m: self.last.__setitem__("observed", m), qos_profile_sensor_data)
        node.create_subscription(JointState, n("joint_states"), self._on_joints, 10)
        self.recorder = BagRecorder(node, self.bag, _recorded_topics(self.ns), storage="mcap")

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
    monitor = DemoMonitor(bag, episodes, duration, max_imaginations, sim_node_of(config_file) == "sim_robot",
                          namespace, log)
    run_graph(monitor=monitor, log=log, config_file=config_file, sim=True, namespace=namespace,
              overrides={"enabled": True, "episodes": episodes})
    if monitor.error is not None:
        raise monitor.error
    return _summarise(monitor, out, log)


def _summarise(m: DemoMonitor, out: Path, log) -> dict:
    from .pointcloud2 import read_xyzrgb
    from .snapshot import snapshot
    png = out / "imagined_cloud.png"
    if "future" in m.last:
        observed = read_xyzrgb(m.last["observed"]) if "observed" in m.last else None
        snapshot([read_xyzrgb(c) for c in m.last["future"].clouds], png, observed=observed)
    status = {"counters": {}, "latency_median_s": {}, **m.status}
    summary = {"bag": str(m.bag), "png": str(png) if png.exists() else None,
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
    log(f"[demo] imagined cloud snapshot: {png}")
    return summary
