"""Imagination quality on held-out demonstrations: the full ANS imagination from a clip's first frame against the
recorded future (PSNR on static views, depth AbsRel on every view, Chamfer distance of the fused clouds)."""
from __future__ import annotations

import numpy as np

from ..data.clips import cut_clip
from ..geometry.camera import scale_intrinsics
from ..geometry.fusion import fuse_views
from ..model.policy import Observation
from . import metrics


def clip_imagination_metrics(policy, ep, start: int, gripper_action: str, seed: int = 0) -> dict:
    cfg = policy.config
    clip = cut_clip(ep, start, cfg, gripper_action)
    imag = policy.imagine(Observation(clip.rgb[:, 0], clip.states[0], clip.instruction), seed=seed)
    static = [v for v, k in enumerate(cfg.view_kinds) if k == "static"]
    frames = np.minimum(start + np.arange(cfg.num_frames) * cfg.actions_per_frame, ep.length - 1)
    Ks = [scale_intrinsics(ep.K[v], ep.rgb.shape[2:4], (cfg.height, cfg.width)) for v in range(cfg.num_views)]
    chamfers = []
    for f in range(1, cfg.num_frames):
        T = [ep.T_base_cam[v, frames[f]].astype(np.float64) for v in range(cfg.num_views)]
        pred = fuse_views(imag.depth[:, f], imag.rgb[:, f], Ks, T, cfg.depth_near, cfg.depth_far, voxel=0.005)
        real = fuse_views(clip.depth[:, f], clip.rgb[:, f], Ks, T, cfg.depth_near, cfg.depth_far, voxel=0.005)
        chamfers.append(metrics.chamfer(pred[0], real[0]))
    return {"psnr": metrics.psnr(imag.rgb[static, 1:], clip.rgb[static, 1:]),
            "depth_abs_rel": metrics.depth_metrics(imag.depth[:, 1:], clip.depth[:, 1:])["abs_rel"],
            "chamfer_m": float(np.mean(chamfers)), "latency_s": imag.latency}


def imagination_quality(policy, dataset, episodes, clips_per_episode: int = 2, seed: int = 0) -> dict:
    """Mean metrics over ``clips_per_episode`` evenly spaced clips of each held-out episode."""
    rows = []
    for e in episodes:
        ep = dataset[e]
        for start in np.linspace(0, max(0, ep.length - policy.config.num_actions), clips_per_episode).astype(int):
            rows.append(clip_imagination_metrics(policy, ep, int(start), dataset.meta.gripper_action, seed))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} | {"clips": len(rows)}
