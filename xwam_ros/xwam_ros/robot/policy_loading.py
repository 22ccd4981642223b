"""The policy a node configuration asks for (no rclpy): shared by the live node and the offline evaluator, so both run
the same model with the same step counts and the same view-count check."""
from __future__ import annotations

import os

from .config import NodeConfig, ParameterError


def load_policy(cfg: NodeConfig):
    """A checkpoint (``builtin:`` names resolved), or a random tiny model (demos and tests) shaped to the cameras.

    The configured ``action_steps``/``video_steps`` replace the checkpoint's: they are a run-time choice (latency
    against quality), not part of the weights."""
    import torch

    from ..model.config import get_preset
    from ..model.policy import XWAMPolicy
    from ..paths import resolve_checkpoint

    torch.set_num_threads(inference_threads(cfg.inference_threads))  # process-wide: imagination shares the pool
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
    mc = get_preset(cfg.preset, view_names=tuple(c.name for c in cfg.cameras),
                    view_kinds=tuple(c.kind for c in cfg.cameras), action_steps=cfg.action_steps,
                    video_steps=cfg.video_steps, action_dt=1.0 / cfg.control_rate)
    return XWAMPolicy.from_config(mc, seed=cfg.seed, device=device)


def start_policy(cfg: NodeConfig):
    """What the node runs: ``load_policy(cfg)`` in a child process of its own (``inference_process``, see
    policy_process.py) or in this one."""
    if cfg.inference_process:
        from .policy_process import PolicyProcess
        return PolicyProcess(cfg)
    return load_policy(cfg)


def inference_threads(requested: int) -> int:
    """The model's CPU threads: as requested, or (0) every core this process may use but one. On a 2-core host,
    two 60 s runs each at 3x 640x480 RGB-D 30 Hz, one thread ran 139 and 122 queries (model p50 377, 440 ms), two
    threads 93 and 114 (574, 485 ms) (bench/ros_latency.py): the second torch thread competes with the node's own
    Python threads for the GIL and the cores."""
    if requested:
        return requested
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)
