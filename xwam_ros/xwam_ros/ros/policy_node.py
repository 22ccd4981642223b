"""xwam_policy: synchronised multi-camera RGB-D in; X-WAM action chunks, trajectories and imagined 4D futures out.

Threading: subscription callbacks only convert stamps and hand the newest synchronised set to a worker thread through
a newest-only slot, so a slow model never backs up a queue; the worker runs the model, the safety filter and the
publishers. All times come from the node clock (``use_sim_time`` is honoured). Topics, parameters and services are
documented in docs/ros.md.
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from collections import defaultdict, deque

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseArray, PoseStamped
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2, PointField
from std_msgs.msg import Header, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from builtin_interfaces.msg import Duration, Time
from visualization_msgs.msg import Marker, MarkerArray

from ..geometry.camera import ee_pose_to_matrix
from ..geometry.fusion import fuse_views
from ..robot.convert import depth_to_image_msg, rgb_to_image_msg
from ..robot.observation import ObservationError, build_observation, ee_state, joint_vector, stamp_to_ns
from ..robot.config import ParameterError, declare_and_read
from .pointcloud2 import make_xyzrgb_cloud
from ..robot.safety import ChunkRejected, SafetyFilter
from ..robot.sync import ApproxSynchronizer, LatestSlot
from ..robot.targets import decode_targets
from ..robot.trajectory import StreamingExecutor, build_joint_trajectory, chunk_times, drop_past

try:
    from xwam_interfaces.msg import ActionChunk, ImaginedFuture
except ImportError:  # the interfaces are optional; standard topics still work
    ActionChunk = ImaginedFuture = None


def _stamp(t_s: float) -> Time:
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _pose(T: np.ndarray) -> Pose:
    from transforms3d.quaternions import mat2quat
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(x) for x in T[:3, 3])
    q = mat2quat(T[:3, :3])
    p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = (float(x) for x in q)
    return p


def load_policy(cfg, camera_kinds, logger=None):
    """The model for this node: a checkpoint, or a random tiny model (demo/test) shaped to the camera set."""
    import torch

    from ..model.config import get_preset
    from ..model.policy import XWAMPolicy
    from ..paths import resolve_checkpoint

    device = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if cfg.dtype == "bfloat16" else torch.float32
    if cfg.checkpoint:
        policy = XWAMPolicy.from_pretrained(resolve_checkpoint(cfg.checkpoint), device=device, dtype=dtype)
        if policy.config.num_views != len(cfg.cameras):
            raise ParameterError(f"parameter 'camera_names': {len(cfg.cameras)} cameras but the checkpoint expects "
                                 f"{policy.config.num_views} views {list(policy.config.view_names)}")
        policy.config = policy.config.replace(action_steps=cfg.action_steps, video_steps=cfg.video_steps)
        policy.schedule = type(policy.schedule)(cfg.video_steps, cfg.action_steps, policy.config.shift)
        return policy
    mc = get_preset(cfg.preset, view_names=tuple(c.name for c in cfg.cameras), view_kinds=tuple(camera_kinds),
                    action_steps=cfg.action_steps, video_steps=cfg.video_steps, action_dt=1.0 / cfg.control_rate)
    return XWAMPolicy.from_config(mc, seed=cfg.seed, device=device)


class PolicyNode(Node):
    def __init__(self, policy=None, warm_up: bool = True, **kwargs):
        super().__init__("xwam_policy", **kwargs)
        self.cfg = declare_and_read(self)  # raises ParameterError: the node refuses to start
        self.policy = policy or load_policy(self.cfg, [c.kind for c in self.cfg.cameras])
        mc = self.policy.config
        self.model_hw = (mc.height, mc.width)
        self.dt = 1.0 / self.cfg.control_rate
        self.safety = SafetyFilter(self.cfg.limits)
        self.enabled = bool(self.cfg.enabled)
        self.instruction = self.cfg.instruction
        self.counters = defaultdict(int)
        self.last_error = ""
        self.latency = {k: deque(maxlen=100) for k in ("sync_wait", "convert", "model", "publish", "obs_to_action",
                                                      "imagine", "imagine_model")}
        self._joint_state = None
        self._ee_pose = None
        self._infos = {}
        self._busy_until = -np.inf
        self._query = 0
        self._lock = threading.Lock()
        self._streamer = StreamingExecutor(self.dt, self.cfg.overlap_steps, self.cfg.lead_time)
        keys = [f"{c.name}/{kind}" for c in self.cfg.cameras for kind in ("color", "depth")]
        self.sync = ApproxSynchronizer(keys, self.cfg.sync_slop, self.cfg.sync_queue_size)
        self.slot = LatestSlot()
        if warm_up:
            self._warm_up()
        self._make_io()
        self._running = True
        self._worker = threading.Thread(target=self._work, name="xwam_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"xwam_policy ready: {len(self.cfg.cameras)} cameras, model {mc.height}x{mc.width}, "
                               f"{mc.action_steps}/{mc.video_steps} steps, {'ENABLED' if self.enabled else 'dry run'}")

    def _warm_up(self) -> None:
        """One query on a blank observation before going live: first calls pay allocator and kernel set-up
        (seconds on CPU), which would otherwise make the first real observation stale."""
        from ..model.policy import Observation
        mc = self.policy.config
        t0 = time.perf_counter()
        obs = Observation(np.zeros((mc.num_views, mc.height, mc.width, 3), np.uint8),
                          np.zeros(mc.state_dim, np.float32), self.instruction)
        res = self.policy.predict_action_chunk(obs)
        if self.cfg.imagine:
            self.policy.continue_imagination(res)
        self.get_logger().info(f"warm-up query took {time.perf_counter() - t0:.2f} s")

    # --- ROS interfaces --------------------------------------------------------------------------------------------
    def _make_io(self) -> None:
        for cam in self.cfg.cameras:
            for kind, topic in (("color", cam.color_topic), ("depth", cam.depth_topic)):
                key = f"{cam.name}/{kind}"
                self.create_subscription(Image, topic, lambda m, k=key: self._on_image(k, m), qos_profile_sensor_data)
            self.create_subscription(CameraInfo, cam.info_topic, lambda m, n=cam.name: self._infos.__setitem__(n, m),
                                     qos_profile_sensor_data)
        self.create_subscription(JointState, self.cfg.joint_state_topic, self._on_joints, 10)
        self.create_subscription(PoseStamped, self.cfg.ee_pose_topic, self._on_ee, 10)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10)
        reliable = QoSProfile(depth=10)
        self.traj_pub = self.create_publisher(JointTrajectory, self.cfg.controller_topic, reliable)
        self.targets_pub = self.create_publisher(PoseArray, "~/ee_targets", reliable)
        self.cloud_pub = self.create_publisher(PointCloud2, "~/imagined/points", reliable)
        self.observed_pub = self.create_publisher(PointCloud2, "~/observed/points", qos_profile_sensor_data)
        self.path_pub = self.create_publisher(MarkerArray, "~/imagined/ee_path", reliable)
        self.image_pubs = {c.name: (self.create_publisher(Image, f"~/imagined/{c.name}/rgb", reliable),
                                    self.create_publisher(Image, f"~/imagined/{c.name}/depth", reliable))
                           for c in self.cfg.cameras}
        self.chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", reliable) if ActionChunk else None
        self.future_pub = self.create_publisher(ImaginedFuture, "~/imagined/future", reliable) if ImaginedFuture else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0, self._publish_diagnostics)

    def _on_image(self, key: str, msg: Image) -> None:
        out = self.sync.add(key, stamp_to_ns(msg.header.stamp), msg)
        if out is not None:
            self.slot.put((out, self._now()))

    def _on_joints(self, msg):
        self._joint_state = msg

    def _on_ee(self, msg):
        self._ee_pose = msg

    def _on_instruction(self, msg):
        self.instruction = msg.data
        self.get_logger().info(f"instruction: {msg.data!r}")

    def _on_enable(self, req, resp):
        with self._lock:
            self.enabled = bool(req.data)
            self._busy_until = -np.inf
            self._streamer.reset()
        resp.success, resp.message = True, "enabled: motion will be sent" if req.data else "disabled: dry run"
        self.get_logger().warning(resp.message)
        return resp

    def _on_reset(self, req, resp):
        with self._lock:
            self.sync.reset()
            self.slot.clear()
            self._streamer.reset()
            self._busy_until = -np.inf
            self.policy.reset()
            self.counters.clear()
            self.last_error = ""
        resp.success, resp.message = True, "reset: queues, chunk timeline and counters cleared"
        return resp

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- worker ----------------------------------------------------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            item = self.slot.take(timeout=0.2)
            if item is None or not self._running:
                continue
            try:
                self._process(*item)
            except ObservationError as exc:
                self._error("bad_input", str(exc))
            except ChunkRejected as exc:
                self._error("rejected_chunk", str(exc))
            except Exception as exc:  # keep running whatever happens in one query
                self._error("internal", f"{type(exc).__name__}: {exc}")
                self.get_logger().debug(traceback.format_exc())

    def _error(self, kind: str, message: str) -> None:
        self.counters[kind] += 1
        self.last_error = f"{kind}: {message}"
        self.get_logger().error(self.last_error, throttle_duration_sec=2.0)

    def _state(self) -> tuple[np.ndarray, np.ndarray]:
        """(model state vector, measured joint positions of joint_names)."""
        joints = joint_vector(self._joint_state, self.cfg.joint_names)
        if self.cfg.state_source == "joints":
            return joints, joints
        if self._ee_pose is None:
            raise ObservationError(f"no end-effector pose received on {self.cfg.ee_pose_topic}")
        g = joint_vector(self._joint_state, [self.cfg.gripper_joint])[0]
        return ee_state(self._ee_pose.pose, g), joints

    def _process(self, synced: dict, received_s: float) -> None:
        t0 = self._now()
        if self.enabled and self.cfg.execution_mode == "chunk" and t0 < self._busy_until:
            self.counters["skipped_while_executing"] += 1
            return
        state, joints = self._state()
        mc = self.policy.config
        built = build_observation(synced, self._infos, state, self.instruction, [c.name for c in self.cfg.cameras],
                                  self.model_hw, mc.state_dim, self.cfg.min_valid_depth)
        obs_t = built.stamp_ns * 1e-9
        stale = self.safety.check_stale(obs_t, self._now())
        if stale:  # normal when the worker was busy imagining: drop it, the next set is fresher
            self.counters["stale_dropped"] += 1
            self.get_logger().warning(f"dropped observation: {stale}", throttle_duration_sec=5.0)
            return
        t1 = self._now()
        res = self.policy.predict_action_chunk(built.obs, seed=self.cfg.seed + self._query)
        self._query += 1
        t2 = self._now()
        self.counters["queries"] += 1
        if self.cfg.publish_observed_cloud:
            self._publish_observed(built, obs_t)
        targets, ee_poses = self._targets(res, state, joints)
        self._publish_chunk(res, obs_t, t2 - t1)
        if ee_poses is not None:
            self.targets_pub.publish(PoseArray(header=Header(stamp=_stamp(obs_t), frame_id=self.cfg.base_frame),
                                               poses=[_pose(ee_pose_to_matrix(p[:3], p[3:7])) for p in ee_poses]))
        if targets is not None:
            self._execute(targets, joints, obs_t, res.latency)
        t3 = self._now()
        for k, v in (("sync_wait", received_s - obs_t), ("convert", t1 - t0), ("model", t2 - t1),
                     ("publish", t3 - t2), ("obs_to_action", t3 - obs_t)):
            self.latency[k].append(v)
        if self.cfg.imagine and (self._query - 1) % self.cfg.imagine_every == 0:
            self._imagine(res, built, obs_t)

    def _targets(self, res, state, joints):
        """Absolute joint targets [K, J] (or None when no IK) and absolute EE poses [K, 8] for EE models."""
        return decode_targets(res.actions, self.policy.config.action_space, state, joints, self.cfg.ik,
                              self.policy.config.gripper_action)

    def _execute(self, targets, joints, obs_t: float, latency: float) -> None:
        if latency > self.cfg.limits.max_inference_s:
            raise ChunkRejected(f"inference took {latency:.2f} s (limit {self.cfg.limits.max_inference_s} s)")
        safe, report = self.safety.apply(targets, self.dt, joints)
        if report["rate_limited_steps"] or report["position_clamped_steps"]:
            self.counters["safety_limited_chunks"] += 1
        now = self._now()
        stale = self.safety.check_stale(obs_t, now)
        if stale:
            raise ChunkRejected(f"observation became stale during inference: {stale}")
        times = chunk_times(obs_t, self.dt, len(safe))
        if not self.enabled:
            self.counters["dry_run_chunks"] += 1
            return
        with self._lock:
            if self.cfg.execution_mode == "streaming":
                times, safe = self._merge_streaming(targets, times, joints, now)
                stamp = now
                self._busy_until = obs_t + self.cfg.execute_steps * self.dt - latency
            else:
                stamp = obs_t
                self._busy_until = times[-1]
        keep = drop_past(times, now, self.cfg.lead_time)
        if not keep.any():
            raise ChunkRejected("every point of the chunk is already in the past")
        msg = build_joint_trajectory(JointTrajectory, JointTrajectoryPoint, Duration, Time, self.cfg.joint_names,
                                     safe[keep], times[keep], stamp, frame_id=self.cfg.base_frame)
        self.traj_pub.publish(msg)
        self.counters["trajectories_sent"] += 1

    def _merge_streaming(self, targets, times, joints, now: float):
        """Join a new chunk onto the committed plan, then enforce the limits from where the plan is *now*.

        The robot follows the committed plan (JTC with interpolate_from_desired_state), so the rate limits start
        from the plan's current target, not from the measured joints -- unless the robot has drifted away from the
        plan (blocked, or not executing), in which case the plan is dropped and everything restarts from the
        measured state."""
        pending_t, pending_q = self._streamer.pending(now)
        if len(pending_t):
            start = np.array([np.interp(now, self._streamer.times, self._streamer.positions[:, j])
                              for j in range(self._streamer.positions.shape[1])])
            if np.any(np.abs(start - joints) > 10 * self.safety.smax):
                self.counters["plan_reset_drift"] += 1
                self._streamer.reset()
                start = joints
        else:
            start = joints
        times, merged = self._streamer.merge(targets, times, now)
        safe, _ = self.safety.apply(merged, self.dt, start)
        self._streamer.positions[-len(safe):] = safe  # the plan we commit is the limited one
        return times, safe

    # --- outputs ---------------------------------------------------------------------------------------------------
    def _publish_chunk(self, res, obs_t: float, model_s: float) -> None:
        if self.chunk_pub is None:
            return
        m = ActionChunk(header=Header(stamp=_stamp(obs_t), frame_id=self.cfg.base_frame))
        m.num_steps, m.num_dims = (int(x) for x in res.actions.shape)
        m.values = res.actions.astype(np.float32).ravel().tolist()
        m.dt = float(self.dt)
        m.num_states, m.state_dim = (int(x) for x in res.states.shape)
        m.states = res.states.astype(np.float32).ravel().tolist()
        m.action_steps = int(res.action_steps)
        m.model_latency = float(model_s)
        self.chunk_pub.publish(m)

    def _extrinsics(self, state_row: np.ndarray | None) -> list:
        out = []
        for cam in self.cfg.cameras:
            if cam.kind == "static":
                out.append(cam.extrinsic)
            elif state_row is not None:  # X-WAM: wrist pose = (predicted) EE pose x hand-eye
                out.append(ee_pose_to_matrix(state_row[:3], state_row[3:7]) @ cam.extrinsic)
            else:
                out.append(None)
        return out

    def _cloud(self, depths, rgbs, Ks, exts, stamp_s):
        keep = [i for i, e in enumerate(exts) if e is not None]
        pts, cols = fuse_views(depths[keep], rgbs[keep], [Ks[i] for i in keep], [exts[i] for i in keep],
                               min_depth=self.policy.config.depth_near, max_depth=self.policy.config.depth_far,
                               voxel=self.cfg.cloud_voxel or None, stride=self.cfg.cloud_stride)
        return make_xyzrgb_cloud(pts, cols, Header(stamp=_stamp(stamp_s), frame_id=self.cfg.base_frame),
                                 PointCloud2, PointField)

    def _publish_observed(self, built, obs_t: float) -> None:
        state = built.obs.state if self.cfg.state_source == "ee_pose" else None
        Ks = [f.K for f in built.frames]
        self.observed_pub.publish(self._cloud(built.obs.depth, built.obs.rgb, Ks, self._extrinsics(state), obs_t))

    def _imagine(self, res, built, obs_t: float) -> None:
        t0 = time.perf_counter()
        imag = self.policy.continue_imagination(res)
        t_model = time.perf_counter()
        self.latency["imagine_model"].append(t_model - t0)
        mc = self.policy.config
        frame_dt = mc.actions_per_frame * self.dt
        Ks = [f.K for f in built.frames]
        ee_model = self.cfg.state_source == "ee_pose"
        clouds, rgb_msgs, depth_msgs = [], [], []
        for f in range(1, mc.num_frames):
            stamp = obs_t + f * frame_dt
            exts = self._extrinsics(imag.states[f] if ee_model else None)
            cloud = self._cloud(imag.depth[:, f], imag.rgb[:, f], Ks, exts, stamp)
            self.cloud_pub.publish(cloud)
            clouds.append(cloud)
            for v, cam in enumerate(self.cfg.cameras):
                h = Header(stamp=_stamp(stamp), frame_id=cam.frame_id)
                rgb_msgs.append(rgb_to_image_msg(imag.rgb[v, f], h, Image))
                depth_msgs.append(depth_to_image_msg(imag.depth[v, f], h, Image))
                self.image_pubs[cam.name][0].publish(rgb_msgs[-1])
                self.image_pubs[cam.name][1].publish(depth_msgs[-1])
        path = self._ee_path(imag.states, obs_t) if ee_model else None
        if path is not None:
            self.path_pub.publish(path)
        if self.future_pub is not None:
            fut = ImaginedFuture(header=Header(stamp=_stamp(obs_t), frame_id=self.cfg.base_frame), clouds=clouds,
                                 rgb=rgb_msgs, depth=depth_msgs, view_names=[c.name for c in self.cfg.cameras],
                                 num_views=len(self.cfg.cameras), video_steps=int(imag.video_steps),
                                 latency=float(imag.latency))
            fut.ee_path.header = fut.header
            if ee_model:
                fut.ee_path.poses = [_pose(ee_pose_to_matrix(s[:3], s[3:7])) for s in imag.states]
            self.future_pub.publish(fut)
        self.latency["imagine"].append(time.perf_counter() - t0)
        self.counters["imaginations"] += 1

    def _ee_path(self, states: np.ndarray, obs_t: float) -> MarkerArray:
        h = Header(stamp=_stamp(obs_t), frame_id=self.cfg.base_frame)
        line = Marker(header=h, ns="xwam_ee_path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
        line.scale.x = 0.005
        line.color.r, line.color.g, line.color.b, line.color.a = 1.0, 0.6, 0.0, 1.0
        line.pose.orientation.w = 1.0
        line.points = [Point(x=float(s[0]), y=float(s[1]), z=float(s[2])) for s in states]
        dots = Marker(header=h, ns="xwam_ee_path", id=1, type=Marker.SPHERE_LIST, action=Marker.ADD)
        dots.scale.x = dots.scale.y = dots.scale.z = 0.015
        dots.color = line.color
        dots.pose.orientation.w = 1.0
        dots.points = line.points
        return MarkerArray(markers=[line, dots])

    # --- diagnostics -----------------------------------------------------------------------------------------------
    def status(self) -> dict:
        lat = {k: (float(np.median(v)) if v else None) for k, v in self.latency.items()}
        return {"enabled": self.enabled, "counters": dict(self.counters), "last_error": self.last_error,
                "latency_median_s": lat, "sync": {"matched": self.sync.stats.matched,
                                                  "dropped": self.sync.stats.dropped,
                                                  "out_of_order": self.sync.stats.out_of_order,
                                                  "last_spread_s": self.sync.stats.last_spread_s},
                "slot_overwritten": self.slot.overwritten, "rss_mb": _rss_mb(), "device_mem_mb": _device_mem_mb()}

    def _publish_diagnostics(self) -> None:
        st = self.status()
        self.status_pub.publish(String(data=json.dumps(st)))
        level = DiagnosticStatus.OK
        if self.counters.get("internal") or self.counters.get("bad_input") or self.counters.get("rejected_chunk"):
            level = DiagnosticStatus.WARN
        values = [KeyValue(key=f"latency_{k}_ms", value=f"{v * 1e3:.1f}" if v is not None else "n/a")
                  for k, v in st["latency_median_s"].items()]
        values += [KeyValue(key=k, value=str(v)) for k, v in st["counters"].items()]
        values += [KeyValue(key="action_steps", value=str(self.policy.config.action_steps)),
                   KeyValue(key="video_steps", value=str(self.policy.config.video_steps)),
                   KeyValue(key="rss_mb", value=f"{st['rss_mb']:.0f}"),
                   KeyValue(key="device_mem_mb", value=f"{st['device_mem_mb']:.0f}"),
                   KeyValue(key="enabled", value=str(self.enabled))]
        msg = DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()))
        msg.status = [DiagnosticStatus(level=level, name="xwam_policy: inference", hardware_id="xwam",
                                       message=self.last_error or "ok", values=values)]
        self.diag_pub.publish(msg)

    def destroy_node(self):
        self._running = False
        if hasattr(self, "slot"):  # absent when construction failed (bad parameters, unreadable checkpoint)
            self.slot.put(None)
            self._worker.join(timeout=5.0)
        return super().destroy_node()


def _rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _device_mem_mb() -> float:
    import torch
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


def main(args=None):
    rclpy.init(args=args)
    try:
        node = PolicyNode()
    except ParameterError as exc:
        print(f"[xwam_policy] invalid parameters: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(2)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
