"""Offline replay evaluation of a recorded bag, and a live bag player for machines without ``ros2 bag``.

Offline (deterministic, no DDS): the bag's camera streams go through the same approximate-time synchroniser and the
same observation builder as the live node; the model is queried every ``stride`` synchronised observations and its
chunk (and, with ``--imagine``, its imagined RGB-D future) is compared with what the bag recorded afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..geometry.camera import ee_pose_to_matrix
from ..geometry.fusion import fuse_views
from ..robot.observation import BuiltObservation, ObservationError, build_observation, ee_state, joint_vector
from ..robot.observation import stamp_to_ns
from ..robot.config import NODE_PARAMS, CameraConfig, validate
from ..robot.sync import ApproxSynchronizer
from ..robot.targets import decode_targets
from . import metrics
from .bag_reader import BagError, iter_messages

IMAGE = "sensor_msgs/msg/Image"


# --- what the live node would be configured with --------------------------------------------------------------------
def load_setup(config_file, overrides: dict | None = None):
    """The node's validated parameters from the same YAML the node uses (``/**`` or ``xwam_policy`` section)."""
    doc = yaml.safe_load(Path(config_file).read_text()) or {}
    section = next((v["ros__parameters"] for k, v in doc.items() if k in ("/**", "xwam_policy", "/xwam_policy")), {})
    p = {**section, **(overrides or {})}
    values = {k: p.get(k, d) for k, (d, _) in NODE_PARAMS.items()}
    # the configs' topic names are relative (resolved in the node's namespace; the root one here), bags and
    # recordings use fully qualified names
    q = lambda t: t if t.startswith("/") else "/" + t  # noqa: E731
    for k in ("joint_state_topic", "ee_pose_topic", "controller_topic"):
        values[k] = q(values[k])
    cams = []
    for name in values["camera_names"]:
        c = p.get("cameras", {}).get(name, {})
        from ..robot.config import realsense_topics
        d = realsense_topics(name)
        topic = lambda key: q(c.get(key, d[key]))  # noqa: E731
        cams.append(CameraConfig(name, topic("color_topic"), topic("depth_topic"), topic("info_topic"),
                                 c.get("frame_id", d["frame_id"]),
                                 c.get("kind", "static"), np.asarray(c.get("extrinsic", np.eye(4).ravel()),
                                                                     float).reshape(4, 4)))
    return validate(values, cams)


# --- rebuilding observations ----------------------------------------------------------------------------------------
@dataclass
class Step:
    built: BuiltObservation
    state: np.ndarray
    joints: np.ndarray
    t: float  # observation stamp (s)


@dataclass
class Replay:
    steps: list = field(default_factory=list)
    joint_t: list = field(default_factory=list)
    joint_q: list = field(default_factory=list)
    ee_t: list = field(default_factory=list)
    ee_pose: list = field(default_factory=list)  # [8] states
    errors: dict = field(default_factory=dict)
    first_error: str = ""
    partial: str = ""  # why the bag ended early, if it did
    last_stamp: dict = field(default_factory=dict)
    sync_stats: dict = field(default_factory=dict)

    def joints_at(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Recorded joint positions at ``times`` (linear interpolation) and a mask of times inside the recording."""
        jt, jq = np.asarray(self.joint_t), np.asarray(self.joint_q)
        inside = (times >= jt[0]) & (times <= jt[-1])
        return np.stack([np.interp(times, jt, jq[:, j]) for j in range(jq.shape[1])], 1), inside

    def ee_at(self, t: float) -> np.ndarray | None:
        if not self.ee_t:
            return None
        i = int(np.argmin(np.abs(np.asarray(self.ee_t) - t)))
        return self.ee_pose[i]


def replay_observations(bag, setup, model_hw, state_dim, instruction: str = "") -> Replay:
    """Rebuild every synchronised observation of ``bag`` exactly as the live node would."""
    keys = [f"{c.name}/{k}" for c in setup.cameras for k in ("color", "depth")]
    topic_key = {c.color_topic: f"{c.name}/color" for c in setup.cameras}
    topic_key.update({c.depth_topic: f"{c.name}/depth" for c in setup.cameras})
    info_cam = {c.info_topic: c.name for c in setup.cameras}
    sync = ApproxSynchronizer(keys, setup.sync_slop, setup.sync_queue_size)
    rep = Replay()
    infos, js, ee = {}, None, None
    instruction = instruction or setup.instruction
    topics = list(topic_key) + list(info_cam) + [setup.joint_state_topic, setup.ee_pose_topic,
                                                 "/xwam_policy/instruction"]
    required = list(topic_key) + [setup.joint_state_topic]
    try:
        for topic, _, msg in iter_messages(bag, topics, required=required):
            if topic in info_cam:
                infos[info_cam[topic]] = msg
            elif topic == setup.joint_state_topic:
                js = msg
                try:
                    rep.joint_q.append(joint_vector(msg, setup.joint_names))
                    rep.joint_t.append(stamp_to_ns(msg.header.stamp) * 1e-9)
                except ObservationError as exc:
                    _note(rep, "bad_joint_states", str(exc))
            elif topic == setup.ee_pose_topic:
                ee = msg
                rep.ee_t.append(stamp_to_ns(msg.header.stamp) * 1e-9)
                rep.ee_pose.append(ee_state(msg.pose, 0.0))
            elif topic == "/xwam_policy/instruction":
                instruction = msg.data
            else:
                if msg.__class__.__name__ != "Image" and not hasattr(msg, "encoding"):
                    raise BagError(f"{bag}: topic {topic} has type {type(msg).__name__}, expected {IMAGE}")
                stamp = stamp_to_ns(msg.header.stamp)
                rep.last_stamp[topic] = stamp * 1e-9
                synced = sync.add(topic_key[topic], stamp, msg)
                if synced is not None:
                    _add_step(rep, synced, infos, js, ee, setup, model_hw, state_dim, instruction)
    except BagError as exc:
        if not rep.steps:
            raise
        rep.partial = str(exc)  # keep what was rebuilt before the damage
    s = sync.stats
    rep.sync_stats = {"matched": s.matched, "dropped": s.dropped, "out_of_order": s.out_of_order}
    if not rep.steps:
        raise BagError(f"{bag}: no usable synchronised observation"
                       + (f"; first error: {rep.first_error}" if rep.first_error else
                          f" (per-topic last stamps: {rep.last_stamp})"))
    return rep


def _note(rep: Replay, kind: str, message: str) -> None:
    rep.errors[kind] = rep.errors.get(kind, 0) + 1
    rep.first_error = rep.first_error or message


def _add_step(rep, synced, infos, js, ee, setup, model_hw, state_dim, instruction) -> None:
    try:
        joints = joint_vector(js, setup.joint_names)
        if setup.state_source == "joints":
            state = joints
        else:
            if ee is None:
                raise ObservationError(f"no end-effector pose on {setup.ee_pose_topic} yet")
            state = ee_state(ee.pose, joint_vector(js, [setup.gripper_joint])[0])
        built = build_observation(synced, infos, state, instruction, [c.name for c in setup.cameras], model_hw,
                                  state_dim, setup.min_valid_depth)
    except ObservationError as exc:
        _note(rep, "bad_observation", str(exc))
        return
    rep.steps.append(Step(built, state, joints, built.stamp_ns * 1e-9))


# --- predictions ----------------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    joint_targets: np.ndarray | None  # [K, J] physical
    ee_poses: np.ndarray | None  # [K, 8]
    rgb: np.ndarray | None = None  # [V, F, H, W, 3] imagined (frame 0 = observation)
    depth: np.ndarray | None = None  # [V, F, H, W] metres
    states: np.ndarray | None = None  # [F, S] predicted states
    latency: float = 0.0
    steps: dict = field(default_factory=dict)


class PolicyPredictor:
    """The default predictor: the same policy call and target decoding as the live node."""

    def __init__(self, policy, setup, imagine: bool = False, seed: int = 0):
        self.policy, self.setup, self.imagine, self.seed, self.n = policy, setup, imagine, seed, 0

    def __call__(self, step: Step) -> Prediction:
        res = self.policy.policy(step.built.obs, seed=self.seed + self.n)
        self.n += 1
        targets, ee = decode_targets(res.actions, self.policy.config.action_space, step.state, step.joints,
                                     self.setup.ik, self.policy.config.gripper_action)
        pred = Prediction(targets, ee, latency=res.latency, steps={"action_steps": res.action_steps})
        if self.imagine:
            im = self.policy.continue_imagination(res)
            pred.rgb, pred.depth, pred.states, pred.latency = im.rgb, im.depth, im.states, im.latency
            pred.steps["video_steps"] = im.video_steps
        return pred


# --- evaluation -----------------------------------------------------------------------------------------------------
def _atomic_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    os.replace(tmp, path)


def _extrinsics(setup, ee_state_row):
    out = []
    for c in setup.cameras:
        if c.kind == "static":
            out.append(c.extrinsic)
        else:
            out.append(None if ee_state_row is None else ee_pose_to_matrix(ee_state_row[:3], ee_state_row[3:7])
                       @ c.extrinsic)
    return out


def _cloud(depths, rgbs, Ks, exts, near, far):
    keep = [i for i, e in enumerate(exts) if e is not None]
    return fuse_views(depths[keep], rgbs[keep], [Ks[i] for i in keep], [exts[i] for i in keep], near, far,
                      voxel=0.005)


def imagination_metrics(step: Step, pred: Prediction, rep: Replay, setup, frame_dt: float, near: float,
                        far: float) -> list:
    """Per future step: PSNR/SSIM (static views), AbsRel/delta1 per view, Chamfer of the fused clouds."""
    times = np.array([s.t for s in rep.steps])
    Ks = [f.K for f in step.built.frames]
    out = []
    for f in range(1, pred.rgb.shape[1]):
        t_f = step.t + f * frame_dt
        i = int(np.argmin(np.abs(times - t_f)))
        if abs(times[i] - t_f) > frame_dt / 2:
            out.append({"step": f, "missing": "no recorded frame near this future time"})
            continue
        real = rep.steps[i].built
        row = {"step": f, "dt_s": float(times[i] - step.t), "views": {}}
        for v, cam in enumerate(setup.cameras):
            m = metrics.depth_metrics(pred.depth[v, f], real.obs.depth[v])
            if cam.kind == "static":  # the paper's protocol: image metrics on static cameras only
                m["psnr"] = metrics.psnr(pred.rgb[v, f], real.obs.rgb[v])
                m["ssim"] = metrics.ssim(pred.rgb[v, f], real.obs.rgb[v])
            row["views"][cam.name] = m
        pred_state = pred.states[f] if (pred.states is not None and setup.state_source == "ee_pose") else None
        real_ee = rep.ee_at(times[i])
        pc = _cloud(pred.depth[:, f], pred.rgb[:, f], Ks, _extrinsics(setup, pred_state if pred_state is not None
                                                                       else real_ee), near, far)
        rc = _cloud(real.obs.depth, real.obs.rgb, Ks, _extrinsics(setup, real_ee), near, far)
        row["chamfer_m"] = metrics.chamfer(pc[0], rc[0])
        out.append(row)
    return out


def action_metrics(step: Step, pred: Prediction, rep: Replay, dt: float, scale: np.ndarray) -> dict | None:
    if pred.joint_targets is None and pred.ee_poses is None:
        return None
    res = {}
    k = len(pred.joint_targets if pred.joint_targets is not None else pred.ee_poses)
    times = step.t + dt * np.arange(1, k + 1)
    if pred.joint_targets is not None:
        real, inside = rep.joints_at(times)
        if not inside.any():
            return None
        err = np.abs(pred.joint_targets[inside] - real[inside])
        res.update({"horizon_steps": int(inside.sum()), "abs_err": err.tolist(),
                    "mae": float(err.mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                    "mae_normalised": float((err / scale).mean())})
    if pred.ee_poses is not None and rep.ee_t:
        et, ep = np.asarray(rep.ee_t), np.asarray(rep.ee_pose)
        ok = (times >= et[0]) & (times <= et[-1])
        if ok.any():
            real = np.stack([np.interp(times[ok], et, ep[:, j]) for j in range(3)], 1)
            res["ee_path_err_m"] = np.linalg.norm(pred.ee_poses[ok, :3] - real, axis=1).tolist()
    return res


def summarise(queries: list, setup) -> dict:
    acts = [q["actions"] for q in queries if q.get("actions") and "abs_err" in q["actions"]]
    out = {"queries": len(queries)}
    if acts:
        h = max(len(a["abs_err"]) for a in acts)
        per_h = [np.mean([np.mean(a["abs_err"][i]) for a in acts if len(a["abs_err"]) > i]) for i in range(h)]
        per_joint = np.mean(np.concatenate([np.asarray(a["abs_err"]) for a in acts]), axis=0)
        out.update({"action_mae": float(np.mean([a["mae"] for a in acts])),
                    "action_rmse": float(np.mean([a["rmse"] for a in acts])),
                    "action_mae_normalised": float(np.mean([a["mae_normalised"] for a in acts])),
                    "error_vs_horizon": [float(x) for x in per_h],
                    "per_joint_mae": dict(zip(setup.joint_names, (float(x) for x in per_joint)))})
    ee = [e for q in queries if q.get("actions") for e in q["actions"].get("ee_path_err_m", [])]
    if ee:
        out["ee_path_err_m"] = float(np.mean(ee))
    im = [r for q in queries for r in q.get("imagination", []) if "views" in r]
    if im:
        def mean(key, static_only=False):
            vals = [m[key] for r in im for m in r["views"].values() if key in m and np.isfinite(m[key])]
            return float(np.mean(vals)) if vals else None
        psnrs = [m["psnr"] for r in im for m in r["views"].values() if "psnr" in m]
        out.update({"psnr": float(np.mean(psnrs)) if psnrs and np.all(np.isfinite(psnrs)) else
                    (float("inf") if psnrs else None),
                    "ssim": mean("ssim"), "abs_rel": mean("abs_rel"), "delta1": mean("delta1"),
                    "chamfer_m": float(np.nanmean([r["chamfer_m"] for r in im])),
                    "lpips": "skipped: no local LPIPS weights (nothing is downloaded)"})
    lat = [q["latency_s"] for q in queries]
    if lat:
        out["latency_s"] = {"median": float(np.median(lat)), "max": float(np.max(lat))}
    return out


def evaluate_bag(bag, setup, predictor, out_dir, model_cfg, stride: int = 10, imagine: bool = False,
                 max_queries: int = 0, progress: bool = True) -> dict:
    """Query ``predictor`` along the bag and write results.json (after every query) and report.md."""
    bag, out = Path(bag).resolve(), Path(out_dir).resolve()
    if out == bag or bag in out.parents:
        raise BagError(f"output directory {out} is inside the input bag {bag}; refusing to write there")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rep = replay_observations(bag, setup, (model_cfg.height, model_cfg.width), model_cfg.proprio_dim)
    t_replay = time.perf_counter() - t0
    dt = 1.0 / setup.control_rate
    frame_dt = model_cfg.action_num * dt
    jq = np.asarray(rep.joint_q)
    scale = np.maximum(np.quantile(jq, 0.99, axis=0) - np.quantile(jq, 0.01, axis=0), 1e-6) if len(jq) else 1.0
    result = {"bag": str(bag), "observations": len(rep.steps), "replay_s": t_replay, "sync": rep.sync_stats,
              "input_errors": rep.errors, "first_input_error": rep.first_error, "partial": rep.partial,
              "stride": stride, "camera_last_stamp_s": rep.last_stamp, "queries": [], "complete": False}
    stopped = _stopped_cameras(rep)
    if stopped:
        result["warnings"] = [f"camera topic {t} stopped at {s:.2f} s, {end - s:.2f} s before the bag's last frame"
                              for t, s, end in stopped]
    idx = list(range(0, len(rep.steps), max(1, stride)))[: max_queries or None]
    bar = _progress(len(idx), progress)
    try:
        for i in idx:
            step = rep.steps[i]
            pred = predictor(step)
            q = {"t": step.t, "latency_s": pred.latency, "steps": pred.steps,
                 "actions": action_metrics(step, pred, rep, dt, scale)}
            if imagine and pred.rgb is not None:
                q["imagination"] = imagination_metrics(step, pred, rep, setup, frame_dt, model_cfg.depth_near,
                                                       model_cfg.depth_far)
                if len(result["queries"]) < 3:  # a few side-by-side strips for the report
                    from .report import frames_strip
                    q["frames_png"] = frames_strip(step, pred, rep, setup, frame_dt,
                                                   out / f"frames_q{len(result['queries'])}.png")
            result["queries"].append(q)
            result["summary"] = summarise(result["queries"], setup)
            _atomic_json(out / "results.json", result)
            bar.update(1)
        result["complete"] = True
    except KeyboardInterrupt:
        result["interrupted"] = True
    finally:
        bar.close()
        result["summary"] = summarise(result["queries"], setup)
        _atomic_json(out / "results.json", result)
        from .report import write_report
        write_report(result, out)
    return result


def _stopped_cameras(rep: Replay):
    if not rep.last_stamp:
        return []
    end = max(rep.last_stamp.values())
    return [(t, s, end) for t, s in rep.last_stamp.items() if end - s > 1.0]


def _progress(n, enabled):
    try:
        from tqdm import tqdm
        return tqdm(total=n, desc="queries", disable=not enabled)
    except ImportError:  # pragma: no cover
        class _No:
            def update(self, _): pass
            def close(self): pass
        return _No()


# --- live player ----------------------------------------------------------------------------------------------------
def _msg_class(type_name: str):
    import importlib
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def play_bag(path, node, rate: float = 1.0, clock: bool = True, topics=None, qos=10, stop=None) -> int:
    """Publish a bag's messages with rclpy at ``rate`` x real time (and /clock); returns messages published."""
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    from .bag_reader import _reader
    r = _reader(path)
    pubs, n = {}, 0
    clock_pub = node.create_publisher(Clock, "/clock", 10) if clock else None
    try:
        conns = [c for c in r.connections if topics is None or c.topic in topics]
        for c in conns:
            pubs[c.topic] = (node.create_publisher(_msg_class(c.msgtype), c.topic, qos), _msg_class(c.msgtype))
        time.sleep(0.5)  # discovery
        t_wall0, t_bag0 = time.monotonic(), None
        for conn, t_ns, raw in r.messages(connections=conns):
            if stop is not None and stop():
                break
            t_bag0 = t_ns if t_bag0 is None else t_bag0
            wait = (t_ns - t_bag0) * 1e-9 / rate - (time.monotonic() - t_wall0)
            if wait > 0:
                time.sleep(wait)
            pub, cls = pubs[conn.topic]
            if clock_pub is not None:
                from builtin_interfaces.msg import Time
                clock_pub.publish(Clock(clock=Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9)))
            pub.publish(deserialize_message(bytes(raw), cls))
            n += 1
    finally:
        r.close()
    return n


# --- command line ---------------------------------------------------------------------------------------------------
def eval_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros eval", description="Offline replay evaluation of a ROS 2 bag.")
    ap.add_argument("bag", help="bag directory (sqlite3 or MCAP)")
    ap.add_argument("--config", default=None, help="the policy node's parameter YAML (topics, cameras, joints)")
    ap.add_argument("--checkpoint", default="", help="checkpoint directory (default: random tiny model)")
    ap.add_argument("--out", default="outputs/eval", help="output directory (never inside the bag)")
    ap.add_argument("--stride", type=int, default=10, help="query every n-th synchronised observation")
    ap.add_argument("--imagine", action="store_true", help="also evaluate the imagined RGB-D future")
    ap.add_argument("--max-queries", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from ..ros.graph import share_file
    setup = load_setup(a.config or share_file("config", "policy.yaml"))
    policy = _policy(a.checkpoint, setup, a.seed)
    try:
        res = evaluate_bag(a.bag, setup, PolicyPredictor(policy, setup, a.imagine, a.seed), a.out, policy.config,
                           a.stride, a.imagine, a.max_queries)
    except BagError as exc:
        print(f"xwam-ros eval: {exc}")
        return 2
    print(json.dumps(res["summary"], indent=1, default=float))
    print(f"results: {Path(a.out) / 'results.json'}  report: {Path(a.out) / 'report.md'}")
    return 0


def _policy(checkpoint, setup, seed):
    from ..model.config import get_preset
    from ..model.policy import XWAMPolicy
    if checkpoint:
        return XWAMPolicy.from_pretrained(checkpoint)
    cfg = get_preset("tiny", view_names=tuple(c.name for c in setup.cameras),
                     view_kinds=tuple(c.kind for c in setup.cameras), action_dt=1.0 / setup.control_rate)
    return XWAMPolicy.from_config(cfg, seed=seed)
