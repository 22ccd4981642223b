"""Imagination quality on held-out demonstrations, per future step, against the static-world baseline.

For a clip cut from a recorded episode, the model imagines the future from the clip's first frame; the baseline says
"the future looks like now" (frame 0 repeated). Both are scored against the recorded future at every future step the
node publishes: PSNR on the static views, depth AbsRel and delta1 on every view, Chamfer distance of the fused
clouds (metres). The model's clouds are fused with the recorded camera poses of their step; the baseline's cloud is
frame 0 fused with frame 0's poses (the world, and the wrist camera, as they are now).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.clips import cut_clip
from ..geometry.camera import scale_intrinsics
from ..geometry.fusion import fuse_views
from ..model.policy import Observation
from . import metrics

METRICS = ("psnr", "abs_rel", "delta1", "chamfer_m")
HIGHER_IS_BETTER = {"psnr": True, "abs_rel": False, "delta1": True, "chamfer_m": False}


@dataclass(frozen=True)
class Prediction:
    """One predicted future step: RGB [V, H, W, 3] uint8, depth [V, H, W] metres, camera poses [V, 4, 4]."""
    rgb: np.ndarray
    depth: np.ndarray
    T_base_cam: np.ndarray


def step_metrics(pred: Prediction, real: Prediction, Ks, static_views, near: float, far: float) -> dict:
    """The four metrics of one prediction against the recorded step."""
    d = metrics.depth_metrics(pred.depth, real.depth)
    fuse = lambda p: fuse_views(p.depth, p.rgb, Ks, list(p.T_base_cam), near, far, voxel=0.005)[0]  # noqa: E731
    return {"psnr": metrics.psnr(pred.rgb[static_views], real.rgb[static_views]), "abs_rel": d["abs_rel"],
            "delta1": d["delta1"], "chamfer_m": metrics.chamfer(fuse(pred), fuse(real))}


def clip_step_metrics(policy, ep, start: int, gripper_action: str, seed: int = 0) -> list[dict]:
    """Per future step f >= 1: {"step", "t_s", "model": metrics, "static": metrics} for one clip."""
    cfg = policy.config
    clip = cut_clip(ep, start, cfg, gripper_action)
    imag = policy.imagine(Observation(clip.rgb[:, 0], clip.states[0], clip.instruction), seed=seed)
    static = [v for v, k in enumerate(cfg.view_kinds) if k == "static"]
    frames = np.minimum(start + np.arange(cfg.num_frames) * cfg.actions_per_frame, ep.length - 1)
    Ks = [scale_intrinsics(ep.K[v], ep.rgb.shape[2:4], (cfg.height, cfg.width)) for v in range(cfg.num_views)]
    poses = lambda f: ep.T_base_cam[:, frames[f]].astype(np.float64)  # noqa: E731
    now = Prediction(clip.rgb[:, 0], clip.depth[:, 0], poses(0))
    rows = []
    for f in range(1, cfg.num_frames):
        real = Prediction(clip.rgb[:, f], clip.depth[:, f], poses(f))
        model = Prediction(imag.rgb[:, f], imag.depth[:, f], poses(f))
        rows.append({"step": f, "t_s": f * cfg.actions_per_frame * cfg.action_dt,
                     "model": step_metrics(model, real, Ks, static, cfg.depth_near, cfg.depth_far),
                     "static": step_metrics(now, real, Ks, static, cfg.depth_near, cfg.depth_far)})
    return rows


def clip_starts(length: int, num_actions: int, clips: int) -> np.ndarray:
    """``clips`` evenly spaced clip starts that leave a whole chunk inside the episode."""
    return np.linspace(0, max(0, length - num_actions), clips).astype(int)


def imagination_per_step(policy, dataset, episodes, clips_per_episode: int = 2, seed: int = 0) -> list[dict]:
    """Mean model and baseline metrics per future step over evenly spaced clips of the held-out episodes; each row
    also says whether the model beats the baseline on each metric."""
    per_clip = []
    for e in episodes:
        ep = dataset[e]
        for start in clip_starts(ep.length, policy.config.num_actions, clips_per_episode):
            per_clip.append(clip_step_metrics(policy, ep, int(start), dataset.meta.gripper_action, seed))
    table = []
    for i, first in enumerate(per_clip[0]):
        row = {"step": first["step"], "t_s": round(first["t_s"], 3), "clips": len(per_clip)}
        for who in ("model", "static"):
            for m in METRICS:
                row[f"{m}_{who}"] = float(np.nanmean([c[i][who][m] for c in per_clip]))
        row["model_better"] = {m: bool((row[f"{m}_model"] > row[f"{m}_static"]) == HIGHER_IS_BETTER[m])
                               for m in METRICS}
        table.append(row)
    return table


def imagination_quality(policy, dataset, episodes, clips_per_episode: int = 2, seed: int = 0) -> dict:
    """The model's metrics averaged over all future steps (one summary row, as in the paper's Table 3)."""
    table = imagination_per_step(policy, dataset, episodes, clips_per_episode, seed)
    return {m: float(np.mean([r[f"{m}_model"] for r in table])) for m in METRICS} | {"clips": table[0]["clips"]}
