"""Offline replay evaluation of a recorded bag.

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

from ..geometry.camera import ee_pose_to_matrix
from ..geometry.fusion import fuse_views
from ..data.bag_observations import Replay, Step, replay_observations  # noqa: F401  (the evaluator's input)
from ..data.bag_reader import BagError
from ..robot.config_file import load_setup  # noqa: F401
from ..robot.extrinsics import camera_extrinsics
from ..robot.policy_loading import load_policy
from ..robot.targets import decode_targets
from . import metrics


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
        res = self.policy.predict_action_chunk(step.built.obs, seed=self.seed + self.n)
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
        ee = pred_state if pred_state is not None else real_ee
        pc = fuse_views(pred.depth[:, f], pred.rgb[:, f], Ks, camera_extrinsics(setup.cameras, ee), near, far, 0.005)
        rc = fuse_views(real.obs.depth, real.obs.rgb, Ks, camera_extrinsics(setup.cameras, real_ee), near, far,
                        0.005)
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
    rep = replay_observations(bag, setup, (model_cfg.height, model_cfg.width), model_cfg.state_dim)
    t_replay = time.perf_counter() - t0
    dt = 1.0 / setup.control_rate
    frame_dt = model_cfg.actions_per_frame * dt
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
                q["imagination"] = imagination_metrics(step, pred, rep, setup, frame_dt,
                                                       *model_cfg.depth_bounds())
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
    from ..paths import share_file
    setup = load_setup(a.config or share_file("config", "policy.yaml"))
    policy = load_policy(setup.replace(checkpoint=a.checkpoint, seed=a.seed))  # the node's own construction
    try:
        res = evaluate_bag(a.bag, setup, PolicyPredictor(policy, setup, a.imagine, a.seed), a.out, policy.config,
                           a.stride, a.imagine, a.max_queries)
    except BagError as exc:
        print(f"xwam-ros eval: {exc}")
        return 2
    print(json.dumps(res["summary"], indent=1, default=float))
    print(f"results: {Path(a.out) / 'results.json'}  report: {Path(a.out) / 'report.md'}")
    return 0
