"""The policy a node configuration asks for (no rclpy): shared by the live node and the offline evaluator, so both run
the same model with the same step counts and the same view-count check."""
from __future__ import annotations

from .config import NodeConfig, ParameterError


def load_policy(cfg: NodeConfig):
    """A checkpoint (``builtin:`` names resolved), or a random tiny model (demos and tests) shaped to the cameras.

    The configured ``action_steps``/``video_steps`` replace the checkpoint's: they are a run-time choice (latency
    against quality), not part of the weights."""
    import torch

    from ..model.config import get_preset
    from ..model.policy import XWAMPolicy
    from ..paths import resolve_checkpoint

    if cfg.inference_threads:  # process-wide: the imagination thread shares the pool
        torch.set_num_threads(cfg.inference_threads)
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
