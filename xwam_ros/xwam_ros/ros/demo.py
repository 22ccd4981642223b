"""The built-in default: the simulated robot + the policy node (the shipped tiny X-WAM, CPU), arm enabled in
simulation, imagination on, for a few episodes (or a bounded time); prints success and latency, records the
published topics to MCAP and writes a PNG of the imagined 4D future."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from std_msgs.msg import String
from sensor_msgs.msg import Image, JointState, PointCloud2
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray
from diagnostic_msgs.msg import DiagnosticArray

from .graph import Graph, share_file
from .pointcloud2 import read_xyzrgb
from .recording import BagRecorder
from .snapshot import snapshot


def _recorded_topics(policy_ns: str):
    from xwam_interfaces.msg import ActionChunk, ImaginedFuture
    rel = QoSProfile(depth=50)
    return [(f"{policy_ns}/imagined/points", PointCloud2, rel), (f"{policy_ns}/imagined/future", ImaginedFuture, rel),
            (f"{policy_ns}/imagined/ee_path", MarkerArray, rel), (f"{policy_ns}/action_chunk", ActionChunk, rel),
            (f"{policy_ns}/observed/points", PointCloud2, qos_profile_sensor_data),
            ("/arm_controller/joint_trajectory", JointTrajectory, rel), ("/joint_states", JointState, rel),
            ("/diagnostics", DiagnosticArray, rel),
            ("/agentview/color/image_raw", Image, qos_profile_sensor_data)]


def run_demo(duration: float = 600.0, out_dir="outputs/demo", config_file=None, max_imaginations: int = 0,
             episodes: int = 3, log=print) -> dict:
    """Runs until ``episodes`` simulated episodes are over (robosuite robot), ``max_imaginations`` imagined
    futures were published (if set), or ``duration`` seconds passed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bag = out / "imagined.mcap"
    if bag.exists():
        import shutil
        shutil.rmtree(bag)
    config_file = config_file or share_file("config", "policy.yaml")
    log(f"[demo] config {config_file}; starting the simulated robot + xwam_policy (CPU), arm enabled in simulation")
    t_start = time.monotonic()
    graph = Graph(config_file, sim=True, overrides={"enabled": True}, sim_overrides={"episodes": episodes})
    rec_node = Node("xwam_demo_recorder", context=graph.context)
    results = []
    from .sim_robot import RESULT_QOS
    rec_node.create_subscription(String, "/sim/episode_result", lambda m: results.append(json.loads(m.data)),
                                 RESULT_QOS)
    recorder = BagRecorder(rec_node, bag, _recorded_topics("/xwam_policy"), storage="mcap")
    last_future = {}
    from xwam_interfaces.msg import ImaginedFuture
    rec_node.create_subscription(ImaginedFuture, "/xwam_policy/imagined/future",
                                 lambda m: last_future.__setitem__("msg", m), QoSProfile(depth=2))
    rec_node.create_subscription(PointCloud2, "/xwam_policy/observed/points",
                                 lambda m: last_future.__setitem__("observed", m), qos_profile_sensor_data)
    graph.add_node(rec_node)
    graph.start()
    pn = graph.policy_node
    q0 = graph.camera.follower.q.copy() if graph.camera else None
    log(f"[demo] model ready in {time.monotonic() - t_start:.1f} s; running for up to {duration:.0f} s")
    t0 = time.monotonic()
    next_report = t0 + 5
    try:
        while time.monotonic() - t0 < duration:
            time.sleep(0.2)
            c = pn.counters
            if max_imaginations and c.get("imaginations", 0) >= max_imaginations:
                break
            if graph.sim_process is not None and len(results) >= episodes:
                break
            if graph.sim_process is not None and graph.sim_process.proc.poll() is not None and len(results) < episodes:
                raise RuntimeError(f"the simulated robot exited (code {graph.sim_process.proc.returncode}) after "
                                   f"{len(results)} of {episodes} episodes; its log is above")
            if time.monotonic() >= next_report:
                next_report += 5
                lat = pn.status()["latency_median_s"]
                fmt = lambda v: f"{v * 1e3:.0f} ms" if v is not None else "n/a"  # noqa: E731
                log(f"[demo] t={time.monotonic() - t0:5.1f}s episodes={len(results)} queries={c.get('queries', 0)} "
                    f"trajectories={c.get('trajectories_sent', 0)} imaginations={c.get('imaginations', 0)} "
                    f"model={fmt(lat['model'])} imagine={fmt(lat['imagine'])} errors={pn.last_error or 'none'}")
    finally:
        time.sleep(1.0)  # let the last imagination's messages reach the recorder before it closes
        status = pn.status()
        q1 = graph.camera.follower.q.copy() if graph.camera else None
        recorder.close()
        graph.shutdown()
    png = out / "imagined_cloud.png"
    if "msg" in last_future:
        observed = read_xyzrgb(last_future["observed"]) if "observed" in last_future else None
        snapshot([read_xyzrgb(c) for c in last_future["msg"].clouds], png, observed=observed)
    summary = {"bag": str(bag), "png": str(png) if png.exists() else None, "recorded_messages": recorder.counts,
               "episodes": results, **status}
    if results:
        summary["success_rate"] = sum(r["success"] for r in results) / len(results)
    if q0 is not None:
        summary["arm_moved_m"] = float(np.linalg.norm(q1[:3] - q0[:3]))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    lat = status["latency_median_s"]
    log(f"[demo] done: {status['counters']}")
    log(f"[demo] median latency: model {lat['model']}, obs->action {lat['obs_to_action']}, imagine {lat['imagine']} s")
    if results:
        log(f"[demo] episodes: {sum(r['success'] for r in results)}/{len(results)} successful "
            f"({', '.join(str(r['steps']) + ' steps' for r in results)})")
    if q0 is not None:
        log(f"[demo] arm moved {summary['arm_moved_m']:.3f} m")
    log(f"[demo] 4D recording (open in Foxglove, or `ros2 bag play`): {bag}")
    log(f"[demo] imagined cloud snapshot: {png}")
    return summary
