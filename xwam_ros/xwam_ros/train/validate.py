"""Periodic validation on held-out clips, through the same policy path the robot uses.

* action error: the 10-call asynchronous policy path (``XWAMPolicy.policy``) from each clip's first frame; MAE over
  the valid action dimensions in normalised units (comparable across datasets) and in physical units.
* optional (``val_imagine``, slower: all ``video_steps`` calls plus VAE decoding): PSNR of the imagined future RGB
  frames and AbsRel of the imagined depth against the clip's ground truth.
"""
from __future__ import annotations

import numpy as np
import torch

from ..eval.metrics import depth_metrics, psnr
from ..model.policy import Observation


def validate(policy, clips, indices, imagine: bool = False, seed: int = 0) -> dict:
    """Mean metrics over ``clips[i] for i in indices`` (keys prefixed ``val/``)."""
    was_training = policy.transformer.training
    policy.transformer.eval()
    rows = []
    try:
        with torch.no_grad():
            for i in indices:
                rows.append(_clip_metrics(policy, clips[i], imagine, seed))
    finally:
        policy.transformer.train(was_training)
    return {f"val/{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _clip_metrics(policy, clip, imagine: bool, seed: int) -> dict:
    obs = Observation(clip.rgb[:, 0], clip.states[0], clip.instruction)
    valid = clip.action_mask > 0
    res = policy.predict_action_chunk(obs, seed=seed)
    norm = policy.normalizer.normalize_actions
    out = {"action_mae": float(np.abs(norm(res.actions) - norm(clip.actions))[:, valid].mean()),
           "action_mae_phys": float(np.abs(res.actions - clip.actions)[:, valid].mean())}
    if imagine:
        imag = policy.continue_imagination(res)
        # frame 0 is the given observation; score only the imagined future
        out["psnr"] = psnr(imag.rgb[:, 1:], clip.rgb[:, 1:])
        out["depth_abs_rel"] = depth_metrics(imag.depth[:, 1:], clip.depth[:, 1:])["abs_rel"]
    return out
