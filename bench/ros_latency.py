"""ROS overhead of the policy node at camera rate: 3 cameras, 640x480 RGB-D at 30 Hz, tiny model on this CPU.

Reports the node's cadence (robot/cadence.py) per query over the whole run: receive (stamp -> callback), sync
(callback -> hand-off), convert, model, safety, publish, and the ROS overhead (every stage but the model) beside
the numbers issue 11 measured before the camera path was reworked; process CPU and RSS sampled every second over the
run (slope shows growth); the machine's load average (the machine may be shared: other processes compete for the
same cores and inflate every number); and the rate at which 3-view 640x480 clouds can be fused and published.

    .venv/bin/python bench/ros_latency.py [--duration 60]      (use --duration 600 for the 10-minute soak)
    .venv/bin/python bench/ros_latency.py --cameras process    (a separate camera process; ros_latency_process.json)
    .venv/bin/python bench/ros_latency.py --cameras process --dds-profile none   (without the graph's DDS profile)
    .venv/bin/python bench/ros_latency.py --transport-only     (publisher + DDS + executor, no node: receive's floor)
    .venv/bin/python bench/ros_latency.py --executor multi_threaded   (rclpy's MultiThreadedExecutor instead of the
                                                  node's default EventsExecutor; ros_latency_multi_threaded.json)
"""
import argparse
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA")  # 1.5 MB frames across processes
os.environ.setdefault("ROS_DOMAIN_ID", str(70 + os.getpid() % 20))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import rclpy  # noqa: E402
from rclpy.executors import MultiThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import current_rss_mb, table, write  # noqa: E402

from xwam_ros.geometry.fusion import fuse_views  # noqa: E402
from xwam_ros.robot.cadence import Cadence, format_cadence  # noqa: E402
from xwam_ros.robot.convert import depth_to_image_msg, rgb_to_image_msg  # noqa: E402
from xwam_ros.ros.graph import graph_env, ros_args, share_file  # noqa: E402
from xwam_ros.robot.config import realsense_topics  # noqa: E402
from xwam_ros.robot.health import process_cpu_seconds  # noqa: E402
from xwam_ros.ros.pointcloud2 import make_xyzrgb_cloud  # noqa: E402
from xwam_ros.ros.policy_node import PolicyNode  # noqa: E402
from xwam_ros.ros.spin import EXECUTORS, SpinThread  # noqa: E402
from xwam_ros.sim.procedural import HOME, CameraRig, fk  # noqa: E402


class Cameras(Node):
    """Publishes pre-rendered 640x480 frames with fresh stamps at a fixed rate, like a camera driver: neither the
    rendering nor the encoding of the (unchanging) frames into messages is measured; each tick only stamps and
    publishes the ready messages (a driver's C++ thread does not re-encode in Python; before issue 11's rework the
    bench re-encoded every frame each tick in this process, taking CPU from the node it measures)."""

    def __init__(self, context, rate):
        super().__init__("bench_cameras", context=context)
        self.rig = CameraRig(480, 640)
        self.frames = {c: self.rig.render(c, HOME) for c in ("agentview", "sideview", "eye_in_hand")}
        self.msgs = {c: (rgb_to_image_msg(rgb, Header(), Image), depth_to_image_msg(depth, Header(), Image, "16UC1"),
                         CameraInfo(height=480, width=640, k=[float(x) for x in self.rig.K.ravel()]))
                     for c, (rgb, depth) in self.frames.items()}
        self.pubs = {c: tuple(self.create_publisher(t, realsense_topics(c)[k], qos_profile_sensor_data)
                              for t, k in ((Image, "color_topic"), (Image, "depth_topic"), (CameraInfo, "info_topic")))
                     for c in self.frames}
        from geometry_msgs.msg import PoseStamped
        from sensor_msgs.msg import JointState
        self.js = self.create_publisher(JointState, "/joint_states", 10)
        self.ee = self.create_publisher(PoseStamped, "/ee_pose", 10)
        self.JointState, self.PoseStamped = JointState, PoseStamped
        self.create_timer(1.0 / rate, self.tick)

    def tick(self):
        stamp = self.get_clock().now().to_msg()
        h = Header(stamp=stamp)
        self.js.publish(self.JointState(header=h, name=["x", "y", "z", "roll", "pitch", "yaw", "gripper"],
                                        position=[float(x) for x in HOME]))
        T = fk(HOME)
        ee = self.PoseStamped(header=h)
        ee.pose.position.x, ee.pose.position.y, ee.pose.position.z = (float(x) for x in T[:3, 3])
        ee.pose.orientation.x = 1.0
        self.ee.publish(ee)
        for c, pubs in self.pubs.items():
            for pub, msg in zip(pubs, self.msgs[c]):
                msg.header = h
                pub.publish(msg)


# ROS overhead before issue 11's rework (ms): bench/results/ros_latency.json of 2026-11-24 (600 s, in-process
# cameras: sync_wait + convert + publish) and the issue's --cameras process run (40 s)
BEFORE_MS = {"inprocess": {"p50": 23.16, "p95": 44.63}, "process": {"p50": 54.0, "p95": 186.0}}
TARGET_MS = {"p50": 5.0, "p95": 10.0}


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def inference_cpu_seconds(pid) -> float:
    """CPU seconds of the node's inference process, 0 when there is none (or it is gone)."""
    if pid is None:
        return 0.0
    try:
        return process_cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def convert_cpu_ms(node, n=30) -> dict:
    """CPU time (this thread's, so other processes' load does not count) of the node's own per-observation work on
    one 3-camera 640x480 set: deserialising the six images from the wire (what each image callback pays) and the
    convert stage (images -> model observation). Wall times on a loaded machine are these times stretched."""
    from rclpy.serialization import deserialize_message, serialize_message
    from xwam_ros.robot.observation import build_observation
    rig = CameraRig(480, 640)
    names = ("agentview", "sideview", "eye_in_hand")
    wire = {}
    for c in names:
        rgb, depth = rig.render(c, HOME)
        wire[f"{c}/color"] = serialize_message(rgb_to_image_msg(rgb, Header(), Image))
        wire[f"{c}/depth"] = serialize_message(depth_to_image_msg(depth, Header(), Image, "16UC1"))
    infos = {c: CameraInfo(height=480, width=640, k=[float(x) for x in rig.K.ravel()]) for c in names}
    mc = node.policy.config
    state = np.zeros(mc.state_dim, np.float32)
    take, conv = [], []
    for _ in range(n):
        t0 = time.thread_time()
        synced = {k: (0, deserialize_message(b, Image)) for k, b in wire.items()}
        t1 = time.thread_time()
        build_observation(synced, infos, state, "x", names, node.model_hw, mc.state_dim)
        t2 = time.thread_time()
        take.append(t1 - t0)
        conv.append(t2 - t1)
    return {"deserialise_6_images_cpu_ms": round(float(np.median(take)) * 1e3, 2),
            "convert_cpu_ms": round(float(np.median(conv)) * 1e3, 2)}


def cloud_rate(node, seconds=5.0):
    rig = CameraRig(480, 640)
    frames = [rig.render(c, HOME) for c in ("agentview", "sideview", "eye_in_hand")]
    exts = [rig.T_base_cam(c, HOME) for c in ("agentview", "sideview", "eye_in_hand")]
    depths, rgbs = np.stack([f[1] for f in frames]), np.stack([f[0] for f in frames])
    pub = node.create_publisher(PointCloud2, "/bench/points", 10)
    n, t0, npts = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        pts, cols = fuse_views(depths, rgbs, [rig.K] * 3, exts, 0.05, 3.0)
        pub.publish(make_xyzrgb_cloud(pts, cols, Header(frame_id="base_link"), PointCloud2, PointField))
        n += 1
        npts = len(pts)
    return n / (time.perf_counter() - t0), npts


def run_cameras(rate: float, duration: float) -> None:
    """--role cameras: the camera publisher alone, as a separate process (like a real camera driver)."""
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    cams = Cameras(ctx, rate)
    ex = MultiThreadedExecutor(num_threads=1, context=ctx)
    ex.add_node(cams)
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration:
        ex.spin_once(timeout_sec=0.05)
    ex.shutdown()
    cams.destroy_node()
    rclpy.shutdown(context=ctx)


class BareSubscriber(Node):
    """--transport-only: the node's image subscriptions (raw, sensor-data QoS, image_from_cdr) and nothing else, to
    measure what the receive stage costs without the node: the camera publisher, DDS and the executor."""

    def __init__(self, context):
        super().__init__("bench_bare_subscriber", context=context)
        from xwam_ros.robot.image_cdr import image_from_cdr
        self.parse, self.receive_s, self._ages = image_from_cdr, [], {}
        self.keys = [f"{c}/{k}" for c in ("agentview", "sideview", "eye_in_hand") for k in ("color", "depth")]
        for key in self.keys:
            cam, kind = key.split("/")
            topic = realsense_topics(cam)["color_topic" if kind == "color" else "depth_topic"]
            self.create_subscription(Image, topic, lambda raw, k=key: self._on_image(k, raw), qos_profile_sensor_data,
                                     raw=True)

    def _on_image(self, key, raw):
        now = self.get_clock().now().nanoseconds
        stamp = self.parse(raw).header.stamp
        self._ages[key] = (stamp.sec * 10**9 + stamp.nanosec, now)
        stamps = {s for s, _ in self._ages.values()}
        if len(self._ages) == len(self.keys) and len(stamps) == 1:  # a complete set: newest stamp -> last callback
            self.receive_s.append((max(t for _, t in self._ages.values()) - stamps.pop()) * 1e-9)
            self._ages.clear()


def run_transport_only(a) -> None:
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    cams, sub = Cameras(ctx, a.rate), BareSubscriber(ctx)
    spin = SpinThread([cams, sub], a.executor, ctx, num_threads=3)
    time.sleep(a.duration)
    spin.stop()
    r = np.array(sub.receive_s[int(a.rate * 2):]) * 1e3  # without the first 2 s (discovery)
    rows = [{"stage": "receive (camera publisher + DDS + executor, no node)", "sets": len(r),
             "p50_ms": round(float(np.percentile(r, 50)), 2), "p95_ms": round(float(np.percentile(r, 95)), 2),
             "worst_ms": round(float(r.max()), 2)}]
    print(table(rows, ["stage", "sets", "p50_ms", "p95_ms", "worst_ms"]))
    print(f"wrote {write('ros_latency_transport', rows, {'executor': a.executor, 'duration_s': a.duration})}")


def main():
    if os.environ.get("XWAM_BENCH_TRACE"):
        import faulthandler
        faulthandler.dump_traceback_later(float(os.environ["XWAM_BENCH_TRACE"]), exit=True)
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--cameras", choices=("process", "inprocess"), default="inprocess",
                    help="publish camera frames in the node's process (default) or from a separate process; on 2 cores the separate publisher competes with the model for CPU")
    ap.add_argument("--inference-threads", type=int, default=0,
                    help="the node's inference_threads (0 = its default: every core but one)")
    ap.add_argument("--in-place", action="store_true",
                    help="the model in the node's process (inference_process: false), as before issue 11's last step")
    ap.add_argument("--switch-interval", type=float, default=None,
                    help="sys.setswitchinterval for the node's process (Python's default is 0.005 s)")
    ap.add_argument("--dds-profile", choices=("package", "none"), default="package",
                    help="package: the graph's Fast DDS profile (32 MiB shared-memory segment, graph_env()) in both "
                         "processes, as the launch file does; none: the builtin LARGE_DATA transports only")
    ap.add_argument("--executor", choices=EXECUTORS, default="events",
                    help="the rclpy executor of the node's process (the node's 'executor' parameter, ros/spin.py); "
                         "multi_threaded: 3 threads here (node + in-process cameras)")
    ap.add_argument("--transport-only", action="store_true",
                    help="the same in-process camera publisher with a bare subscriber instead of the node and no "
                         "model: the floor of the receive stage (ros_latency_transport.json)")
    ap.add_argument("--role", default="bench", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "bench" and a.dds_profile == "package":  # before any DDS participant; the camera child inherits it
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", graph_env()["FASTDDS_DEFAULT_PROFILES_FILE"])
    if a.role == "cameras":
        return run_cameras(a.rate, a.duration)
    if a.transport_only:
        return run_transport_only(a)
    if a.switch_interval:
        sys.setswitchinterval(a.switch_interval)
    ctx = rclpy.Context()
    rclpy.init(args=ros_args(share_file("config", "policy.yaml"),
                             {"imagine": False, "publish_observed_cloud": False, "max_observation_age": 5.0,
                              "inference_threads": a.inference_threads, "inference_process": not a.in_place}),
               context=ctx)
    node = PolicyNode(context=ctx)
    node.cadence = Cadence(node.cadence.target_hz, window=10**6)  # every query of the run, not the last 100
    load_start = os.getloadavg()
    cam_proc = None
    if a.cameras == "process":
        import subprocess
        cam_proc = subprocess.Popen([sys.executable, __file__, "--role", "cameras", "--rate", str(a.rate),
                                     "--duration", str(a.duration + 30)], env=os.environ.copy())
    cams = Cameras(ctx, a.rate) if a.cameras == "inprocess" else Node("bench_cloud", context=ctx)
    spin = SpinThread([cams, node], a.executor, ctx, num_threads=3)
    samples = []
    child = getattr(node.policy, "pid", None)
    t0, c0, m0 = time.monotonic(), cpu_seconds(), inference_cpu_seconds(child)
    while time.monotonic() - t0 < a.duration:
        time.sleep(1.0)
        t, c, m = time.monotonic(), cpu_seconds(), inference_cpu_seconds(child)
        samples.append((t - t0, (c - c0) * 100, current_rss_mb(), (m - m0) * 100))
        c0, m0 = c, m
    st = node.status()
    lat = node.cadence.samples()
    load_end = os.getloadavg()
    if cam_proc is not None:
        cam_proc.terminate()
        cam_proc.wait(10)
    rate, npts = cloud_rate(cams)
    cpu = convert_cpu_ms(node)
    spin.stop()  # as the node process after SIGINT: context, executor, then the node (worker, inference) and cameras

    def ms(key, q=50):
        return round(float(np.percentile(lat[key], q)) * 1e3, 2) if lat[key] else None
    steady = [s for s in samples if s[0] > 10] or samples
    slope = np.polyfit([s[0] for s in steady], [s[2] for s in steady], 1)[0] * 60 if len(steady) > 2 else 0.0
    before = BEFORE_MS[a.cameras]
    rows = [{"stage": k, "p50_ms": ms(k), "p95_ms": ms(k, 95), "worst_ms": ms(k, 100)}
            for k in ("receive", "sync", "convert", "model", "safety", "publish", "obs_to_action")]
    rows.append({"stage": "ros_overhead (all but model)", "p50_ms": ms("overhead"), "p95_ms": ms("overhead", 95),
                 "worst_ms": ms("overhead", 100), "before_p50_ms": before["p50"], "before_p95_ms": before["p95"],
                 "target_p50_ms": TARGET_MS["p50"], "target_p95_ms": TARGET_MS["p95"]})
    print(table(rows, ["stage", "p50_ms", "p95_ms", "worst_ms", "before_p50_ms", "before_p95_ms", "target_p50_ms",
                       "target_p95_ms"]))
    print(format_cadence(st["cadence"]))
    extra = {"duration_s": a.duration, "camera_rate_hz": a.rate, "cameras": a.cameras,
             "executor": a.executor,
             "dds_profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "none (builtin LARGE_DATA)"),
             "inference_threads": a.inference_threads, "torch_threads": torch.get_num_threads(),
             "switch_interval_s": sys.getswitchinterval(),
             "image": "640x480 rgb8 + 16UC1, 3 cameras",
             "queries": st["counters"].get("queries", 0), "sync": st["sync"], "cadence": st["cadence"],
             "load_average_start": [round(x, 2) for x in load_start],
             "load_average_end": [round(x, 2) for x in load_end],
             "note": "shared machine: the load average (1/5/15 min, over the machine's cores) counts every process "
                     "on it, other engineers' runs included",
             "inference_process": not a.in_place,
             "cpu_pct_mean": round(float(np.mean([s[1] for s in steady])), 1),
             "inference_process_cpu_pct_mean": round(float(np.mean([s[3] for s in steady])), 1),
             "rss_mb_start": round(steady[0][2], 1), "rss_mb_end": round(steady[-1][2], 1),
             "rss_slope_mb_per_min": round(float(slope), 3),
             "cloud_build_publish_hz": round(rate, 1), "cloud_points": npts, **cpu}
    for k, v in extra.items():
        if k != "cadence":
            print(f"{k}: {v}")
    name = ("ros_latency" if a.cameras == "inprocess" else "ros_latency_process") + \
        ("_multi_threaded" if a.executor == "multi_threaded" else "")
    name += "_inplace" if a.in_place else ""
    name += f"_threads{a.inference_threads}" if a.inference_threads else ""
    name += f"_switch{a.switch_interval * 1e3:g}ms" if a.switch_interval else ""
    print(f"wrote {write(name, rows, extra)}")


if __name__ == "__main__":
    main()
