"""Inference schedules: flow-matching sigmas and the index-aligned asynchronous (video, action) schedule.

The official X-WAM conventions (its ``fm_solvers_unipc.py``, pinned by test/model/test_official_fixtures.py):

* per modality the sigmas are ``linspace(0.999, 0, N + 1)[:-1]`` (the training schedule's sigma_max = 1 - 1/1000 down
  to sigma_min = 0) passed through the shift, then a final 0. diffusers' own ``use_flow_sigmas`` grid is
  ``linspace(1, 0.001, N + 1)[:-1]`` instead, so we hand diffusers the official grid explicitly;
* the network is fed the scheduler's integer timesteps, ``int64(sigma * 1000)`` (truncated), not ``sigma * 1000``.

Stepping is UniPC multistep (bh2, order 2) in flow-prediction mode: diffusers' ``UniPCMultistepScheduler``, one
instance per modality, rather than a solver of our own.

Index alignment: network call ``i`` sees the video at ``timestep_video[i]`` and the action/state at
``timestep_action[i]`` while ``i < action_steps``; afterwards action and state stay clean (timestep 0).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler


NUM_TRAIN_TIMESTEPS = 1000


def unshifted_sigmas(num_steps: int) -> np.ndarray:
    """The official grid before the shift: ``linspace(sigma_max, sigma_min, N + 1)[:-1]`` with sigma_max = 0.999."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return np.linspace(1.0 - 1.0 / NUM_TRAIN_TIMESTEPS, 0.0, num_steps + 1)[:-1]


def flow_sigmas(num_steps: int, shift: float = 5.0) -> np.ndarray:
    """Shifted sigmas with the final 0 appended: shape [num_steps + 1] (what the solver steps through)."""
    s = unshifted_sigmas(num_steps)
    return np.append(shift * s / (1.0 + (shift - 1.0) * s), 0.0)


def make_scheduler(num_steps: int, shift: float = 5.0) -> UniPCMultistepScheduler:
    """diffusers' UniPC on the official sigma grid; its ``timesteps`` are the int64 network timesteps."""
    sched = UniPCMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, prediction_type="flow_prediction",
                                    use_flow_sigmas=True, flow_shift=shift, solver_order=2, solver_type="bh2")
    sched.set_timesteps(sigmas=unshifted_sigmas(num_steps))
    return sched


@dataclass
class AsyncSchedule:
    """Index-aligned video/action schedules; ``timesteps_at(i)`` tells what network call i is fed."""

    video_steps: int = 50
    action_steps: int = 10
    shift: float = 5.0
    sigma_video: np.ndarray = field(init=False)
    sigma_action: np.ndarray = field(init=False)
    timestep_video: np.ndarray = field(init=False)  # int64, one per call
    timestep_action: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.action_steps > self.video_steps:
            raise ValueError(f"action_steps ({self.action_steps}) must not exceed video_steps ({self.video_steps})")
        self.sigma_video = flow_sigmas(self.video_steps, self.shift)
        self.sigma_action = flow_sigmas(self.action_steps, self.shift)
        self.timestep_video = make_scheduler(self.video_steps, self.shift).timesteps.numpy()
        self.timestep_action = make_scheduler(self.action_steps, self.shift).timesteps.numpy()

    def sigmas_at(self, i: int) -> tuple[float, float]:
        """(video sigma, action sigma) the solver is at before call i (action 0 once its schedule is done)."""
        a = self.sigma_action[i] if i < self.action_steps else 0.0
        return float(self.sigma_video[i]), float(a)

    def timesteps_at(self, i: int) -> tuple[int, int]:
        """(video, action) integer network timesteps of call i (action 0 once its schedule is done)."""
        a = self.timestep_action[i] if i < self.action_steps else 0
        return int(self.timestep_video[i]), int(a)


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
