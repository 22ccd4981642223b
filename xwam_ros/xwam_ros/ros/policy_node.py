"""xwam_policy: synchronised multi-camera RGB-D in; X-WAM action chunks and robot commands out (the action path).

The action path: image callbacks feed the synchroniser and hand the newest complete set to one worker thread
through a newest-only slot (a slow model never backs up a queue); the worker builds the observation, runs the
policy, rejects slow or stale chunks, decodes targets (IK), applies the safety limits and sends the command
(JointTrajectory, a MoveIt Servo pose stream, or ~/ee_targets); only then does it publish the raw chunk and hand the
observation to the observed-cloud thread (ros/observed_cloud.py) and the result to the imagination thread
(ros/imagination.py): neither ever holds the worker. Per-stage timing: robot/cadence.py. Parameters: ros/params.py
and robot/config.py. Diagnostics levels: robot/health.py. Topics, parameters and QoS: README, "xwam_policy".
"""
from __future__ import annotations

import json
import threading
import time
import traceback
from collections import defaultdict, deque

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray, PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_msgs.msg import Header, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ..robot.cadence import STAGES, Cadence, expected_query_hz
from ..robot.config import ParameterError
from ..robot.health import EventWindow, action_path_level, current_rss_mb, sync_level
from ..robot.image_cdr import CdrError, image_from_cdr
from ..robot.observation import ObservationError, build_observation, stamp_to_ns
from ..robot.state import assemble_state, gripper_map_for
from ..robot.policy_loading import start_policy
from ..robot.safety import ChunkRejected, SafetyFilter
from ..robot.sync import ApproxSynchronizer, LatestSlot
from ..robot.targets import decode_targets
from ..robot.trajectory import StreamingExecutor, build_joint_trajectory, chunk_times, drop_past
from .imagination import ImaginationPublisher
from .observed_cloud import ObservedCloudPublisher
from .policy_diagnostics import diagnostic_statuses
from .params import RuntimeParameters, declare_parameters
from .policy_msgs import ee_pose_msg, time_msg
from .spin import run_until_shutdown

try:
    from xwam_interfaces.msg import ActionChunk
except ImportError:  # the interfaces are optional; standard topics still work
    ActionChunk = None

JOINT_OUTPUT = ("cartesian", "gantry", "urdf")  # ik modes that send a JointTrajectory


def image_qos_profile(name: str) -> QoSProfile:
    """'sensor_data': best effort, depth 5 (drivers' default; a late frame is worth nothing); 'reliable': for
    publishers that only offer reliable (a reliable subscription does not match a best-effort publisher)."""
    if name == "reliable":
        return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    return qos_profile_sensor_data


def enable_message(enabled: bool, cfg) -> str:
    """The enable service's reply: what will really be sent for the configured ``ik``."""
    if not enabled:
        return "disabled: dry run (nothing is sent toward the robot)"
    if cfg.ik == "none":
        return ("enabled, but ik=none: no controller output; end-effector targets go to ~/ee_targets only "
                "(PoseArray) for an external IK or Cartesian controller")
    if cfg.ik == "servo":
        return f"enabled: end-effector poses (PoseStamped, {cfg.control_rate:g} Hz) will be sent on {cfg.servo_topic}"
    return f"enabled: trajectories (ik={cfg.ik}) will be sent on {cfg.controller_topic}"


class PolicyNode(Node):
    def __init__(self, policy=None, warm_up: bool = True, **kwargs):
        super().__init__("xwam_policy", **kwargs)
        self.cfg = declare_parameters(self)  # raises ParameterError: the node refuses to start
        self._own_policy = policy is None  # an inference process we start, we stop (destroy_node)
        self.policy = policy or start_policy(self.cfg)
        try:
            self._setup(warm_up)
        except BaseException:
            self._close_policy()
            raise

    def _setup(self, warm_up: bool) -> None:
        mc = self.policy.config
        if self.cfg.execute_steps > mc.num_actions:
            raise ParameterError(f"parameter 'execute_steps': {self.cfg.execute_steps} is more than the model's "
                                 f"{mc.num_actions} actions per chunk")
        self.model_hw = (mc.height, mc.width)
        self.dt = 1.0 / self.cfg.control_rate
        self.safety = SafetyFilter(self.cfg.limits)
        self.enabled = bool(self.cfg.enabled)
        self.instruction = self.cfg.instruction
        self.query_instruction = None  # the instruction the newest query used
        self.counters = defaultdict(int)
        self.last_error = ""
        self._outcome = "ok"  # newest outcome of the action path: "ok" or an error kind
        self.events = EventWindow(self.cfg.diagnostics_window)
        self._started_s = self._now()
        self._last_set_s = None
        self.latency = {k: deque(maxlen=100) for k in (*STAGES, "queued", "obs_to_action")}
        self.cadence = Cadence(self._target_hz(self.cfg))
        self._joint_state = self._ee_pose = None
        self._infos = {}
        self._busy_until = -np.inf
        self._query = 0
        self._lock = threading.Lock()
        self._streamer = StreamingExecutor(self.dt, self.cfg.overlap_steps, self.cfg.lead_time)
        self._servo_plan = None  # (times, [K, 7] x y z roll pitch yaw gripper) for ik=servo
        keys = [f"{c.name}/{kind}" for c in self.cfg.cameras for kind in ("color", "depth")]
        self.sync = ApproxSynchronizer(keys, self.cfg.sync_slop, self.cfg.sync_queue_size)
        self.backwards = EventWindow(self.cfg.diagnostics_window)  # per stream: stamps rejected as not newer
        self.slot = LatestSlot()
        self.tf_tree = self.ik_solver = None
        self._gripper_map = gripper_map_for(self.cfg)
        self._make_io()
        self._make_tf_and_ik()
        self.imagination = ImaginationPublisher(self, self.policy, lambda: self.cfg, QoSProfile(depth=10),
                                                 self.counters)
        self.observed = ObservedCloudPublisher(self, self.observed_pub, lambda: self.cfg, lambda: self.policy.config)
        if warm_up:
            self._warm_up()
        self._params = RuntimeParameters(self, lambda: self.cfg, self._apply_parameters)
        self._running = True
        self._worker = threading.Thread(target=self._work, name="xwam_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(f"xwam_policy ready: {len(self.cfg.cameras)} cameras, model {mc.height}x{mc.width}, "
                               f"{mc.action_steps}/{mc.video_steps} steps, ik={self.cfg.ik}, "
                               f"{'ENABLED' if self.enabled else 'dry run'}")

    def _warm_up(self) -> None:
        """One query on a blank observation before going live: first calls pay allocator and kernel set-up
        (seconds on CPU), which would otherwise make the first real observation stale."""
        from ..model.policy import Observation
        mc = self.policy.config
        t0 = time.perf_counter()
        res = self.policy.predict_action_chunk(Observation(np.zeros((mc.num_views, mc.height, mc.width, 3), np.uint8),
                                             np.zeros(mc.state_dim, np.float32), self.instruction))
        if self.cfg.imagine:
            self.imagination.warm_up(res)
        self.get_logger().info(f"warm-up query took {time.perf_counter() - t0:.2f} s")

    # --- ROS interfaces --------------------------------------------------------------------------------------------
    def _make_io(self) -> None:
        image_qos = image_qos_profile(self.cfg.image_qos)
        # sensor callbacks in a group of their own: with executor=multi_threaded they never queue behind the
        # diagnostics timer, services or parameter callbacks (the EventsExecutor runs every callback in one thread)
        sensors = MutuallyExclusiveCallbackGroup()
        for cam in self.cfg.cameras:
            for kind, topic in (("color", cam.color_topic), ("depth", cam.depth_topic)):
                key = f"{cam.name}/{kind}"
                self.create_subscription(Image, topic, lambda raw, k=key: self._on_raw_image(k, raw), image_qos,
                                         callback_group=sensors, raw=True)
            self.create_subscription(CameraInfo, cam.info_topic, lambda m, n=cam.name: self._infos.__setitem__(n, m),
                                     image_qos, callback_group=sensors)
        self.create_subscription(JointState, self.cfg.joint_state_topic, self._on_joints, 10, callback_group=sensors)
        self.create_subscription(PoseStamped, self.cfg.ee_pose_topic, self._on_ee, 10, callback_group=sensors)
        self.create_subscription(String, "~/instruction", self._on_instruction, 10)
        reliable = QoSProfile(depth=10)
        self.traj_pub = (self.create_publisher(JointTrajectory, self.cfg.controller_topic, reliable)
                         if self.cfg.ik in JOINT_OUTPUT else None)
        self.servo_pub = self.create_publisher(PoseStamped, self.cfg.servo_topic, reliable) \
            if self.cfg.ik == "servo" else None
        if self.servo_pub is not None:
            self.create_timer(self.dt, self._servo_tick)
        self.targets_pub = self.create_publisher(PoseArray, "~/ee_targets", reliable)
        self.observed_pub = self.create_publisher(PointCloud2, "~/observed/points", qos_profile_sensor_data)
        self.chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", reliable) if ActionChunk else None
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.status_pub = self.create_publisher(String, "~/status", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(1.0, self._publish_diagnostics)

    def _make_tf_and_ik(self) -> None:
        if self.cfg.extrinsics == "tf":
            from ..robot.tf_tree import TransformTree
            from .tf_listener import TfListener
            self.tf_tree = TransformTree()
            self._tf_listener = TfListener(self, self.tf_tree)
        if self.cfg.ik == "urdf":
            from ..robot.ik import ik_config_from_params
            try:
                self._ik_config = ik_config_from_params(
                    {**self.cfg.values, "ik_tip_frame": self.cfg.ik_tip_frame or self.cfg.ee_frame})
            except ValueError as exc:
                raise ParameterError(f"ik=urdf: {exc}") from exc
            if self.cfg.urdf_file:
                try:
                    xml = open(self.cfg.urdf_file).read()
                except OSError as exc:
                    raise ParameterError(f"parameter 'urdf_file': cannot read {self.cfg.urdf_file}: {exc}") from exc
                self._set_urdf(xml, raise_errors=True)
            else:
                latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
                self.create_subscription(String, self.cfg.robot_description_topic,
                                         lambda m: self._set_urdf(m.data), latched)

    def _set_urdf(self, xml: str, raise_errors: bool = False) -> None:
        from ..robot.ik import UrdfIK
        try:
            solver = UrdfIK(xml, self._ik_config)
        except ValueError as exc:
            if raise_errors:
                raise ParameterError(f"ik=urdf: {exc}") from exc
            self._error("bad_input", f"robot_description unusable for ik=urdf: {exc}")
            return
        self.ik_solver = solver
        self.get_logger().info(f"ik=urdf: {len(solver.arm_joint_names)} arm joints, tip {self._ik_config.tip_frame}")

    def _on_raw_image(self, key: str, raw: bytes) -> None:
        """Images arrive serialized (raw subscriptions): the header is read from the CDR bytes and the pixels stay a
        view of them (robot/image_cdr.py); rclpy's own deserialisation copied every 640x480 buffer (0.5 ms)."""
        try:
            msg = image_from_cdr(raw)
        except CdrError as exc:
            self._error("bad_input", f"{key}: {exc}")
            return
        self._on_image(key, msg)

    def _on_image(self, key: str, msg) -> None:
        """Light on purpose (it runs 30 times a second per stream): the message object itself is queued (no copy,
        no conversion: only the set the worker takes is converted), liveness is the synchroniser's bookkeeping."""
        wall = time.perf_counter()
        now = self._now()
        rejected = self.sync.stats.per_key_out_of_order[key]
        out = self.sync.add(key, stamp_to_ns(msg.header.stamp), msg)
        if self.sync.stats.per_key_out_of_order[key] > rejected:  # one writer per key: the sensor callback group
            self.events.add("out_of_order", now)
            self.backwards.add(key, now)
        if out is not None:
            self._last_set_s = now
            self.slot.put((out, now, time.perf_counter(), time.perf_counter() - wall))

    def _on_joints(self, msg):
        self._joint_state = msg

    def _on_ee(self, msg):
        self._ee_pose = msg

    def _on_instruction(self, msg):
        self.instruction = msg.data
        self.get_logger().info(f"instruction: {msg.data!r}")

    def _on_enable(self, req, resp):
        # through the parameter, so `ros2 param get enabled` and the service always agree
        result = self.set_parameters([Parameter("enabled", value=bool(req.data))])[0]
        resp.success = result.successful
        resp.message = enable_message(bool(req.data), self.cfg) if result.successful else result.reason
        self.get_logger().warning(resp.message)
        return resp

    def _set_enabled(self, on: bool) -> None:
        with self._lock:
            self.enabled = on
            self._busy_until = -np.inf
            self._streamer.reset()
            self._servo_plan = None

    def _apply_parameters(self, cfg, names: set) -> None:
        """A validated run-time change (ros/params.py): takes effect from the next chunk."""
        with self._lock:
            self.cfg = cfg
            self.safety = SafetyFilter(cfg.limits)
            self._streamer.lead_s = cfg.lead_time
            self.cadence.target_hz = self._target_hz(cfg)
        if "enabled" in names:
            self._set_enabled(bool(cfg.enabled))
        if "instruction" in names:
            self.instruction = cfg.instruction
        self.get_logger().info(f"parameters changed: {sorted(names)}")

    def _on_reset(self, req, resp):
        with self._lock:
            self.sync.reset()
            self.slot.clear()
            self._streamer.reset()
            self._servo_plan = None
            self._busy_until = -np.inf
            self.policy.reset()
            self.counters.clear()
            self.events.clear()
            self.backwards.clear()
            self.cadence.clear()
            self.last_error, self._outcome = "", "ok"
            self._started_s, self._last_set_s = self._now(), None
        resp.success, resp.message = True, "reset: queues, chunk timeline, counters and the error window cleared"
        return resp

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # --- worker ----------------------------------------------------------------------------------------------------
    def _work(self) -> None:
        self.slot.serve(lambda: self._running, self._process, self._failed)

    def _failed(self, exc: Exception) -> None:
        """One query failed: reported in /diagnostics, the worker goes on with the next set."""
        if isinstance(exc, ObservationError):
            self._error("bad_input", str(exc))
        elif isinstance(exc, ChunkRejected):
            self._error("rejected_chunk", str(exc))
        else:  # keep running whatever happens in one query
            self._error("internal", f"{type(exc).__name__}: {exc}")
            self.get_logger().debug(traceback.format_exc())

    def _target_hz(self, cfg) -> float:
        return expected_query_hz(cfg.control_rate, cfg.execution_mode, cfg.execute_steps,
                                 self.policy.config.num_actions)

    def _event(self, kind: str) -> None:
        self.counters[kind] += 1
        self.events.add(kind, self._now())

    def _error(self, kind: str, message: str) -> None:
        self._event(kind)
        self.last_error, self._outcome = f"{kind}: {message}", kind
        self.get_logger().error(self.last_error, throttle_duration_sec=2.0)

    def _succeeded(self) -> None:
        self.last_error, self._outcome = "", "ok"

    def _state(self) -> tuple[np.ndarray, np.ndarray]:
        """(model state vector, measured joint positions of joint_names)."""
        return assemble_state(self.cfg, self._joint_state, self._ee_pose, self._gripper_map)

    def calibration(self) -> dict:
        """Camera name -> T_base_cam (static) or hand-eye T_ee_cam (wrist), from the config or from TF."""
        if self.tf_tree is None:
            return {c.name: c.extrinsic for c in self.cfg.cameras}
        out = {}
        for c in self.cfg.cameras:
            target = self.cfg.base_frame if c.kind == "static" else self.cfg.ee_frame
            try:
                out[c.name] = self.tf_tree.lookup(target, c.frame_id)
            except LookupError as exc:
                raise ObservationError(f"camera {c.name}: no transform {target} <- {c.frame_id} in TF: {exc}") from exc
        return out

    def _process(self, synced: dict, received_s: float, handed_wall: float, sync_s: float) -> None:
        """One query. Stages (robot/cadence.py) in perf_counter seconds; receive on the node clock (stamps). The
        time the set waited in the slot (at most a frame period: newer sets replace it) is in obs_to_action only."""
        w0 = time.perf_counter()
        t0 = self._now()
        if self.enabled and t0 < self._busy_until:  # the committed part of the last chunk is still running
            self.counters["skipped_while_executing"] += 1
            return
        state, joints = self._state()
        calib = self.calibration()
        mc = self.policy.config
        built = build_observation(synced, self._infos, state, self.instruction, [c.name for c in self.cfg.cameras],
                                  self.model_hw, mc.state_dim, self.cfg.min_valid_depth)
        obs_t = built.stamp_ns * 1e-9
        stale = self.safety.check_stale(obs_t, self._now())
        if stale:  # normal after a long chunk: drop it, the next set is fresher
            self._event("stale_dropped")
            self.get_logger().warning(f"dropped observation: {stale}", throttle_duration_sec=5.0)
            return
        w1 = time.perf_counter()
        res = self.policy.predict_action_chunk(built.obs, seed=self.cfg.seed + self._query)
        w2 = time.perf_counter()
        infer_s = w2 - w1  # the whole call, whatever the model measures inside
        self._query += 1
        self.query_instruction = built.obs.instruction
        self.counters["queries"] += 1
        gated = False
        try:  # the action path first: gate, decode, limit, send; informational outputs after it
            self._gate(obs_t, infer_s)  # slow or stale chunks stop here, before anything toward the robot (and are
            gated = True  # not imagined either: a stale future is worth nothing and would take CPU from the next)
            decided = self._decide(res, state, joints)  # IKError (a ChunkRejected): no motion
            w3 = time.perf_counter()
            self._send(decided, joints, obs_t, infer_s)
        finally:  # informational, also in dry run and for rejected chunks; clouds and imagination only hand off
            self._publish_chunk(res, obs_t, infer_s)
            if self.cfg.publish_observed_cloud:
                self.observed.offer(built, obs_t, calib)
            if gated:  # imagination (informational, also of IK failures) follows in its thread
                self.imagination.offer(res, built, obs_t, calib)
        self._succeeded()
        w4 = time.perf_counter()
        self.latency["queued"].append(w0 - handed_wall)
        stages = {"receive": max(0.0, received_s - obs_t), "sync": sync_s, "convert": w1 - w0,
                  "model": infer_s, "safety": w3 - w2, "publish": w4 - w3}
        obs_to_action = self._now() - obs_t
        self.cadence.record(stages, obs_to_action, w4)
        for k, v in (*stages.items(), ("obs_to_action", obs_to_action)):
            self.latency[k].append(v)

    def _gate(self, obs_t: float, infer_s: float) -> None:
        """Reject a chunk that took too long or whose observation went stale while the model ran."""
        if infer_s > self.cfg.limits.max_inference_s:
            raise ChunkRejected(f"inference took {infer_s:.2f} s (limit {self.cfg.limits.max_inference_s} s)")
        stale = self.safety.check_stale(obs_t, self._now())
        if stale:
            raise ChunkRejected(f"observation became stale during inference: {stale}")

    def _decide(self, res, state, joints) -> tuple:
        """Decode (IK) and limit the chunk: (targets, limited targets, end-effector poses); nothing is sent."""
        ik = self.cfg.ik
        if ik == "urdf" and self.ik_solver is None:
            raise ChunkRejected(f"ik=urdf: no URDF yet (file '{self.cfg.urdf_file}' or topic "
                                f"{self.cfg.robot_description_topic})")
        targets, ee_poses = decode_targets(res.actions, self.policy.config.action_space, state, joints,
                                           "cartesian" if ik == "servo" else ik, self.policy.config.gripper_action,
                                           solver=self.ik_solver)  # IKError (a ChunkRejected): no motion
        safe = self._limit(targets, joints) if targets is not None else None
        return targets, safe, ee_poses

    def _send(self, decided: tuple, joints, obs_t: float, infer_s: float) -> None:
        """Send a decided chunk toward the robot; in dry run everything but the sending has happened."""
        targets, safe, ee_poses = decided
        if not self.enabled:
            self.counters["dry_run_chunks"] += 1
            return
        if ee_poses is not None:
            self.targets_pub.publish(PoseArray(header=Header(stamp=time_msg(obs_t), frame_id=self.cfg.base_frame),
                                               poses=[ee_pose_msg(p) for p in ee_poses]))
        if safe is not None:
            self._execute(targets, safe, joints, obs_t, infer_s)

    def _limit(self, targets, joints):
        safe, report = self.safety.apply(targets, self.dt, joints)
        if report["rate_limited_steps"] or report["position_clamped_steps"]:
            self._event("safety_limited_chunks")
        return safe

    def _execute(self, targets, safe, joints, obs_t: float, infer_s: float) -> None:
        """Send one trajectory (or servo plan), stamped with the observation time in both execution modes."""
        now = self._now()
        times = chunk_times(obs_t, self.dt, len(safe))
        with self._lock:
            if not self.enabled:  # disabled while the model ran
                return
            if self.cfg.execution_mode == "streaming":
                times, safe = self._merge_streaming(targets, times, joints, now)
                # query again when the committed execute_steps are about to run out, one inference earlier
                self._busy_until = obs_t + self.cfg.execute_steps * self.dt - infer_s
            else:
                self._busy_until = times[-1]
            keep = drop_past(times, now, self.cfg.lead_time)
            if not keep.any():
                raise ChunkRejected("every point of the chunk is already in the past")
            if self.cfg.ik == "servo":
                self._servo_plan = (times[keep], safe[keep])
                self.counters["servo_plans"] += 1
                return
        msg = build_joint_trajectory(JointTrajectory, JointTrajectoryPoint, Duration, Time, self.cfg.joint_names,
                                     safe[keep], times[keep], obs_t, frame_id=self.cfg.base_frame)
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

    def _servo_tick(self) -> None:
        """ik=servo: the committed plan's pose now, at control_rate, while enabled and the plan lasts."""
        with self._lock:
            plan, enabled = self._servo_plan, self.enabled
        if plan is None or not enabled:
            return
        times, axes = plan
        now = self._now()
        if now > times[-1]:
            return
        from transforms3d.euler import euler2quat
        a = np.array([np.interp(now, times, axes[:, j]) for j in range(axes.shape[1])])
        msg = PoseStamped(header=Header(stamp=time_msg(now), frame_id=self.cfg.base_frame))
        msg.pose = ee_pose_msg(np.concatenate([a[:3], euler2quat(*a[3:6])]))
        self.servo_pub.publish(msg)
        self.counters["servo_poses_sent"] += 1

    # --- informational outputs -------------------------------------------------------------------------------------
    def _publish_chunk(self, res, obs_t: float, model_s: float) -> None:
        if self.chunk_pub is None:
            return
        m = ActionChunk(header=Header(stamp=time_msg(obs_t), frame_id=self.cfg.base_frame))
        m.num_steps, m.num_dims = (int(x) for x in res.actions.shape)
        m.values = res.actions.astype(np.float32).ravel().tolist()
        m.dt = float(self.dt)
        m.num_states, m.state_dim = (int(x) for x in res.states.shape)
        m.states = res.states.astype(np.float32).ravel().tolist()
        m.action_steps = int(res.action_steps)
        m.model_latency = float(model_s)
        self.chunk_pub.publish(m)

    # --- diagnostics -----------------------------------------------------------------------------------------------
    def streams(self, now: float) -> tuple[dict, dict]:
        """Per-stream liveness, the synchroniser's own ({key: KeyStatus}), and {key: stamps rejected as not newer
        within the diagnostics window}."""
        statuses = self.sync.status(int(now * 1e9))
        return statuses, {k: self.backwards.count(k, now) for k in statuses}

    def status(self) -> dict:
        now = self._now()
        lat = {k: (float(np.median(v)) if v else None)
               for k, v in {**self.latency, **self.imagination.latency,
                            "observed_cloud": self.observed.latency}.items()}
        statuses, backwards = self.streams(now)
        counters = dict(self.counters)
        return {"enabled": self.enabled, "ik": self.cfg.ik, "instruction": self.instruction,
                "query_instruction": self.query_instruction, "counters": counters, "last_error": self.last_error,
                "imagination_error": self.imagination.last_error,
                "window_s": self.events.window_s, "window_counts": self.events.counts(now),
                "latency_median_s": lat, "sync": {"matched": self.sync.stats.matched,
                                                  "dropped": self.sync.stats.dropped,
                                                  "out_of_order": self.sync.stats.out_of_order,
                                                  "last_spread_s": self.sync.stats.last_spread_s},
                "streams": {k: {"rate_hz": s.rate_hz, "age_s": s.age_s, "backwards_stamps": backwards[k],
                                "last_backwards_jump_s": s.last_jump_s} for k, s in statuses.items()},
                "cadence": self.cadence.report().as_dict(),
                "slot_overwritten": self.slot.overwritten, "rss_mb": current_rss_mb(),
                "device_mem_mb": _device_mem_mb(), "inference_process": self._inference_process()}

    def _inference_process(self) -> dict | None:
        """pid and restarts of the model's own process (inference_process), None when it runs in this one."""
        if not hasattr(self.policy, "restarts"):
            return None
        return {"pid": self.policy.pid, "restarts": self.policy.restarts}

    def diagnostics(self) -> tuple[list, dict]:
        """The DiagnosticStatus list (inference, synchronisation, one per camera) and the status dict."""
        st = self.status()
        now = self._now()
        verdict = action_path_level(self.events, self._outcome, self.last_error, now)
        sync = sync_level(self._last_set_s, self._started_s, *self.streams(now), self.cfg.sync_timeout, now)
        extra = {"action_steps": self.policy.config.action_steps, "video_steps": self.policy.config.video_steps}
        if st["inference_process"] is not None:
            extra.update({f"inference_process_{k}": v for k, v in st["inference_process"].items()})
        return diagnostic_statuses(st, verdict, sync, self.cfg, extra), st

    def _publish_diagnostics(self) -> None:
        statuses, st = self.diagnostics()
        self.status_pub.publish(String(data=json.dumps(st)))
        msg = DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()))
        msg.status = statuses
        self.diag_pub.publish(msg)

    def destroy_node(self):
        self._running = False
        if hasattr(self, "_worker"):  # absent when construction failed (bad parameters, unreadable checkpoint)
            self.slot.put(None)
            self._worker.join(timeout=5.0)
        if hasattr(self, "imagination"):
            self.imagination.stop()
        if hasattr(self, "observed"):
            self.observed.stop()
        self._close_policy()
        return super().destroy_node()

    def _close_policy(self) -> None:
        if self._own_policy and hasattr(self.policy, "close"):
            self.policy.close()


def _device_mem_mb() -> float:
    import torch
    return torch.cuda.memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


def main(args=None):
    rclpy.init(args=args)
    try:
        node = PolicyNode()
    except ParameterError as exc:
        print(f"[xwam_policy] invalid parameters: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(2)
    run_until_shutdown([node], node.cfg.executor)


if __name__ == "__main__":
    main()
