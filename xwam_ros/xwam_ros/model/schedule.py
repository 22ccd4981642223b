"""Inference schedules: flow-matching sigmas and the index-aligned asynchronous (video, action) schedule.

Per modality the sigmas are ``linspace(1, 0.001, N + 1)[:-1]`` passed through the shift, then a final 0; stepping is
UniPC multistep in flow-prediction mode. diffusers' ``UniPCMultistepScheduler(prediction_type="flow_prediction",
use_flow_sigmas=True, flow_shift=5)`` reproduces exactly these sigmas (checked in the tests), so we use one instance
per modality rather than writing our own solver.

Index alignment: network call ``i`` sees the video at ``sigma_video[i]`` and the action/state at
``sigma_action[i]`` while ``i < action_steps``; afterwards action and state stay clean (sigma 0).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler


def flow_sigmas(num_steps: int, shift: float = 5.0) -> np.ndarray:
    """The schema's sigma formula, with the final 0 appended: shape [num_steps + 1]."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    s = np.linspace(1.0, 0.001, num_steps + 1)[:-1]
    s = shift * s / (1.0 + (shift - 1.0) * s)
    return np.append(s, 0.0)


def make_scheduler(num_steps: int, shift: float = 5.0) -> UniPCMultistepScheduler:
    sched = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                    use_flow_sigmas=True, flow_shift=shift, solver_order=2, solver_type="bh2")
    sched.set_timesteps(num_steps)
    return sched


@dataclass
class AsyncSchedule:
    """Index-aligned video/action schedules; ``call(i)`` tells what call i does."""

    video_steps: int = 50
    action_steps: int = 10
    shift: float = 5.0
    sigma_video: np.ndarray = field(init=False)
    sigma_action: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.action_steps > self.video_steps:
            raise ValueError(f"action_steps ({self.action_steps}) must not exceed video_steps ({self.video_steps})")
        self.sigma_video = flow_sigmas(self.video_steps, self.shift)
        self.sigma_action = flow_sigmas(self.action_steps, self.shift)

    def sigmas_at(self, i: int) -> tuple[float, float]:
        """(video sigma, action sigma) fed to the network at call i."""
        a = self.sigma_action[i] if i < self.action_steps else 0.0
        return float(self.sigma_video[i]), float(a)


@dataclass
class DenoiseState:
    """Everything needed to resume denoising after any call: latents, per-modality solver state, call index."""

    video: torch.Tensor
    actions: torch.Tensor
    states: torch.Tensor
    video_sched: UniPCMultistepScheduler
    action_sched: UniPCMultistepScheduler
    state_sched: UniPCMultistepScheduler
    calls_done: int = 0

    def clone(self) -> "DenoiseState":
        return DenoiseState(self.video.clone(), self.actions.clone(), self.states.clone(),
                            copy.deepcopy(self.video_sched), copy.deepcopy(self.action_sched),
                            copy.deepcopy(self.state_sched), self.calls_done)
