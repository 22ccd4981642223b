"""Inference schedules: flow-matching sigmas and the index-aligned asynchronous (video, action) schedule.

The official X-WAM conventions (its ``fm_solvers_unipc.py``, pinned by test/model/test_official_fixtures.py):

* per modality the sigmas are ``linspace(0.999, 0, N + 1)[:-1]`` (the training schedule's sigma_max = 1 - 1/1000 down
  to sigma_min = 0) passed through the shift, then a final 0. diffusers' own ``use_flow_sigmas`` grid is
  ``linspace(1, 0.001, N + 1)[:-1]`` instead, so we hand diffusers the official grid explicitly;
* the network is fed the scheduler's integer timesteps, ``int64(sigma * 1000)`` (truncated), not ``sigma * 1000``.

Stepping is UniPC multistep (bh2, order 2) in flow-prediction mode: diffusers' ``UniPCMultistepScheduler``, one
per modality, rather than a solver of our own. The policy applies it as the linear map it is (``LinearUniPC``:
coefficients read off diffusers' scheduler once per schedule), which skips diffusers' per-step Python.

Index alignment: network call ``i`` sees the video at ``timestep_video[i]`` and the action/state at
``timestep_action[i]`` while ``i < action_steps``; afterwards action and state stay clean (timestep 0).
"""
from __future__ import annotations

import copy
import functools
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


@functools.lru_cache(maxsize=16)
def _unipc_coefficients(num_steps: int, shift: float) -> tuple[torch.Tensor, np.ndarray]:
    """Every step of diffusers' UniPC (``make_scheduler``) as its coefficients over all inputs so far: run once with
    basis vectors for inputs, row i of the [n, 2n] result holds (a_i, b_i) with prev_sample_i = sum_j a_ij *
    sample_j + b_ij * model_output_j (j <= i). Exact because every operation of the solver (flow x0-prediction,
    the bh2 predictor and corrector) is linear with data-independent coefficients, elementwise over the tensor."""
    sched = make_scheduler(num_steps, shift)
    n = num_steps
    coef = np.zeros((n, 2 * n), np.float64)  # row i over (samples 0..n-1, outputs 0..n-1)
    for i, t in enumerate(sched.timesteps):
        x, v = torch.zeros(1, 2 * n), torch.zeros(1, 2 * n)
        x[0, i], v[0, n + i] = 1.0, 1.0
        coef[i] = sched.step(v, t, x).prev_sample[0].double().numpy()
    return sched.timesteps, coef


class LinearUniPC:
    """diffusers' UniPC (bh2, order 2, flow prediction; ``make_scheduler``) applied as the linear map it computes:
    step i returns sum_j a_ij * sample_j + b_ij * model_output_j over the inputs so far, one matrix-vector product
    over a history buffer, with coefficients taken from diffusers itself (``_unipc_coefficients``). Same outputs to
    float32 rounding; diffusers' own step costs ~0.55 ms of Python per call, as much as a tiny-preset network call,
    this one ~0.05 ms. The buffer holds 2 x steps copies of the tensor (video latents: 100 at 50 steps).

    The interface is the part of diffusers' scheduler the policy uses: ``timesteps`` and ``step(model_output,
    timestep, sample).prev_sample``; steps must come in order (as diffusers requires too)."""

    def __init__(self, num_steps: int, shift: float = 5.0):
        self.num_steps = num_steps
        self.timesteps, self._coef = _unipc_coefficients(num_steps, float(shift))
        self._history: torch.Tensor | None = None  # [2n, numel]
        self._weights: torch.Tensor | None = None
        self.step_index = 0

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor) -> "StepOutput":
        i, n = self.step_index, self.num_steps
        if i >= n:
            raise ValueError(f"LinearUniPC: all {n} steps are done")
        if int(timestep) != int(self.timesteps[i]):
            raise ValueError(f"LinearUniPC: step {i} is at timestep {int(self.timesteps[i])}, got {int(timestep)}")
        if self._history is None:
            self._history = sample.new_empty(2 * n, sample.numel())  # row j is written before any step reads it
            self._weights = torch.tensor(self._coef, dtype=sample.dtype, device=sample.device)
        self._history[i] = sample.reshape(-1)
        self._history[n + i] = model_output.reshape(-1).to(sample.dtype)
        w = self._weights[i]
        prev = w[:i + 1] @ self._history[:i + 1] + w[n:n + i + 1] @ self._history[n:n + i + 1]
        self.step_index = i + 1
        return StepOutput(prev.view(sample.shape))


@dataclass
class StepOutput:
    prev_sample: torch.Tensor


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
    video_sched: "LinearUniPC"
    action_sched: "LinearUniPC"
    state_sched: "LinearUniPC | None"
    calls_done: int = 0

    def clone(self) -> "DenoiseState":
        return DenoiseState(self.video.clone(), self.actions.clone(), self.states.clone(),
                            copy.deepcopy(self.video_sched), copy.deepcopy(self.action_sched),
                            copy.deepcopy(self.state_sched), self.calls_done)
