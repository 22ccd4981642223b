"""Imagination quality on held-out demonstrations, per future step, against the static-world baseline.

For a clip cut from a recorded episode, the model imagines the future from the clip's first frame; the baseline says
"the future looks like now" (frame 0 repeated); the autoencoder's round trip of the real future (encode, decode) is
the ceiling: the diffusion model generates latents, so its pictures can be no better than the decoder's. Both are scored against the recorded future at every future step the
node publishes: PSNR on the static views, depth AbsRel and delta1 on every view, Chamfer distance of the fused
clouds (metres). The model's clouds are fused with the recorded camera poses of their step; the baseline's cloud is
frame 0 fused with frame 0's poses (the world, and the wrist camera, as they are now).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch

from ..data.clips import clip_videos, cut_clip
from ..geometry.depth import inverse_depth_to_metric
from ..geometry.camera import scale_intrinsics
from ..geometry.fusion import fuse_views
from ..model.policy import Observation
from . import metrics

METRICS = ("psnr", "abs_rel", "delta1", "chamfer_m")
# Chamfer of the clouds cropped to a workspace box: the whole-cloud Chamfer is dominated by far background (a static
# camera seeing 4 m: 5 % depth error is 20 cm there), the box is where the robot acts
WORKSPACE_METRIC = "chamfer_workspace_m"
SOURCES = ("model", "static", "autoencoder")
HIGHER_IS_BETTER = {"psnr": True, "abs_rel": False, "delta1": True, "chamfer_m": False, WORKSPACE_METRIC: False}


def metric_names(workspace=None) -> tuple:
    """The metrics a table has: the four, plus the workspace Chamfer when a box is given."""
    return METRICS + ((WORKSPACE_METRIC,) if workspace is not None else ())


def crop(points: np.ndarray, workspace) -> np.ndarray:
    """Points [N, 3] inside the axis-aligned box ((x0, y0, z0), (x1, y1, z1)) of the base frame."""
    lo, hi = np.asarray(workspace[0]), np.asarray(workspace[1])
    return points[np.all((points >= lo) & (points <= hi), axis=1)]


@dataclass(frozen=True)
class Prediction:
    """One predicted future step: RGB [V, H, W, 3] uint8, depth [V, H, W] metres, camera poses [V, 4, 4]."""
    rgb: np.ndarray
    depth: np.ndarray
    T_base_cam: np.ndarray


def step_metrics(pred: Prediction, real: Prediction, Ks, static_views, near, far, workspace=None) -> dict:
    """The metrics of one prediction against the recorded step (near/far: the clouds' depth range per view;
    workspace: a base-frame box for the cropped Chamfer, see metric_names)."""
    d = metrics.depth_metrics(pred.depth, real.depth)
    fuse = lambda p: fuse_views(p.depth, p.rgb, Ks, list(p.T_base_cam), near, far, voxel=0.005)[0]  # noqa: E731
    cp, cr = fuse(pred), fuse(real)
    out = {"psnr": metrics.psnr(pred.rgb[static_views], real.rgb[static_views]), "abs_rel": d["abs_rel"],
           "delta1": d["delta1"], "chamfer_m": metrics.chamfer(cp, cr)}
    if workspace is not None:
        out[WORKSPACE_METRIC] = metrics.chamfer(crop(cp, workspace), crop(cr, workspace))
    return out


@torch.no_grad()
def autoencoder_round_trip(policy, clip) -> tuple[np.ndarray, np.ndarray]:
    """The clip's real RGB [V, F, H, W, 3] uint8 and depth [V, F, H, W] metres after the policy's autoencoder."""
    cfg = policy.config
    rgb, inv = (policy.codec.decode(policy.codec.encode(x[None].to(policy.device)))[0].clamp(-1, 1).cpu()
                for x in clip_videos(cfg, clip))
    rgb_u8 = ((rgb + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).numpy()
    return rgb_u8, inverse_depth_to_metric(inv.mean(1).numpy(), *cfg.depth_bounds())


def clip_step_metrics(policy, ep, start: int, gripper_action: str, seed: int = 0, workspace=None) -> list[dict]:
    """Per future step f >= 1: {"step", "t_s", "model" | "static" | "autoencoder": metrics} for one clip."""
    cfg = policy.config
    clip = cut_clip(ep, start, cfg, gripper_action)
    imag = policy.imagine(Observation(clip.rgb[:, 0], clip.states[0], clip.instruction), seed=seed)
    ae_rgb, ae_depth = autoencoder_round_trip(policy, clip)
    static = [v for v, k in enumerate(cfg.view_kinds) if k == "static"]
    frames = np.minimum(start + np.arange(cfg.num_frames) * cfg.actions_per_frame, ep.length - 1)
    Ks = [scale_intrinsics(ep.K[v], ep.rgb.shape[2:4], (cfg.height, cfg.width)) for v in range(cfg.num_views)]
    poses = lambda f: ep.T_base_cam[:, frames[f]].astype(np.float64)  # noqa: E731
    now = Prediction(clip.rgb[:, 0], clip.depth[:, 0], poses(0))
    rows = []
    for f in range(1, cfg.num_frames):
        real = Prediction(clip.rgb[:, f], clip.depth[:, f], poses(f))
        preds = {"model": Prediction(imag.rgb[:, f], imag.depth[:, f], poses(f)), "static": now,
                 "autoencoder": Prediction(ae_rgb[:, f], ae_depth[:, f], poses(f))}
        rows.append({"step": f, "t_s": f * cfg.actions_per_frame * cfg.action_dt,
                     **{k: step_metrics(p, real, Ks, static, *cfg.depth_bounds(), workspace)
                        for k, p in preds.items()}})
    return rows


def clip_starts(length: int, num_actions: int, clips: int) -> np.ndarray:
    """``clips`` evenly spaced clip starts that leave a whole chunk inside the episode."""
    return np.linspace(0, max(0, length - num_actions), clips).astype(int)


def imagination_per_step(policy, dataset, episodes, clips_per_episode: int = 2, seed: int = 0,
                         workspace=None) -> list[dict]:
    """Mean model and baseline metrics per future step over evenly spaced clips of the held-out episodes; each row
    also says whether the model beats the baseline on each metric."""
    per_clip = []
    for e in episodes:
        ep = dataset[e]
        for start in clip_starts(ep.length, policy.config.num_actions, clips_per_episode):
            per_clip.append(clip_step_metrics(policy, ep, int(start), dataset.meta.gripper_action, seed, workspace))
    table = []
    for i, first in enumerate(per_clip[0]):
        row = {"step": first["step"], "t_s": round(first["t_s"], 3), "clips": len(per_clip)}
        for who in SOURCES:
            for m in metric_names(workspace):
                row[f"{m}_{who}"] = float(np.nanmean([c[i][who][m] for c in per_clip]))
        row["model_better"] = {m: bool((row[f"{m}_model"] > row[f"{m}_static"]) == HIGHER_IS_BETTER[m])
                               for m in metric_names(workspace)}
        table.append(row)
    return table


def imagination_quality(policy, dataset, episodes, clips_per_episode: int = 2, seed: int = 0) -> dict:
    """The model's metrics averaged over all future steps (one summary row, as in the paper's Table 3)."""
    table = imagination_per_step(policy, dataset, episodes, clips_per_episode, seed)
    return {m: float(np.mean([r[f"{m}_model"] for r in table])) for m in METRICS} | {"clips": table[0]["clips"]}
