"""From action chunks to joint_trajectory_controller messages, and receding-horizon chunk streaming (no rclpy here).

Timing follows the controller's semantics: ``header.stamp`` is when the trajectory starts and each point's
``time_from_start`` is relative to it. We anchor the stamp to the observation the chunk was predicted from, so action
k (0-based) is due at ``obs_stamp + (k + 1) * dt``. Points already in the past (plus a small lead for transport) are
dropped: sending them would make the controller skip its bridge segment and jump.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def chunk_times(obs_stamp_s: float, dt: float, n: int) -> np.ndarray:
    if dt <= 0:
        raise ValueError(f"action dt must be positive, got {dt}")
    return obs_stamp_s + dt * np.arange(1, n + 1)


def drop_past(times: np.ndarray, now_s: float, lead_s: float = 0.0) -> np.ndarray:
    """Boolean mask of the points still worth sending (strictly after now + lead)."""
    return np.asarray(times) > now_s + lead_s


def finite_difference_velocities(positions: np.ndarray, times: np.ndarray, end_at_rest: bool = True) -> np.ndarray:
    p, t = np.asarray(positions, np.float64), np.asarray(times, np.float64)
    v = np.zeros_like(p)
    if len(p) >= 2:
        v[:-1] = np.diff(p, axis=0) / np.diff(t)[:, None]
        v[-1] = 0.0 if end_at_rest else v[-2]
    return v


def _duration(msg_cls, seconds: float):
    ns = int(round(seconds * 1e9))
    return msg_cls(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def build_joint_trajectory(traj_cls, point_cls, duration_cls, time_cls, joint_names, positions, times_abs,
                           stamp_s: float, frame_id: str = "", velocities=None):
    """JointTrajectory anchored at ``stamp_s`` with points at absolute times ``times_abs`` (strictly increasing)."""
    positions = np.asarray(positions, np.float64)
    times_abs = np.asarray(times_abs, np.float64)
    if positions.ndim != 2 or positions.shape != (len(times_abs), len(joint_names)):
        raise ValueError(f"positions {positions.shape} do not match {len(times_abs)} times x {len(joint_names)} joints")
    rel = times_abs - stamp_s
    if len(rel) and (rel[0] <= 0 or np.any(np.diff(rel) <= 0)):
        raise ValueError("time_from_start must be positive and strictly increasing")
    if velocities is None:
        velocities = finite_difference_velocities(positions, times_abs)
    msg = traj_cls()
    ns = int(round(stamp_s * 1e9))
    msg.header.stamp = time_cls(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.joint_names = list(joint_names)
    msg.points = [point_cls(positions=[float(x) for x in p], velocities=[float(x) for x in v],
                            time_from_start=_duration(duration_cls, r))
                  for p, v, r in zip(positions, velocities, rel)]
    return msg


@dataclass
class StreamingExecutor:
    """Receding-horizon execution: a committed timeline that new chunks join without a jump.

    When a chunk computed from an observation at time t_obs arrives at ``now``, the timeline up to
    ``now + lead_s`` is already committed (the robot is executing it: this is the inference delay that real-time
    chunking accounts for). From there the new chunk takes over, cross-faded linearly from the old plan over
    ``overlap_steps`` points so position and velocity change smoothly.
    """

    dt: float
    overlap_steps: int = 4
    lead_s: float = 0.05
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    positions: np.ndarray | None = None

    def reset(self) -> None:
        self.times, self.positions = np.zeros(0), None

    def _old_at(self, t: np.ndarray) -> np.ndarray | None:
        if self.positions is None or len(self.times) == 0:
            return None
        return np.stack([np.interp(t, self.times, self.positions[:, j]) for j in range(self.positions.shape[1])], 1)

    def merge(self, new_positions: np.ndarray, new_times: np.ndarray, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Join a new chunk; returns the (times, positions) still to execute after ``now_s + lead_s``."""
        new_positions = np.asarray(new_positions, np.float64)
        new_times = np.asarray(new_times, np.float64)
        cut = now_s + self.lead_s
        keep_new = new_times > cut
        if not keep_new.any():
            return self.pending(now_s)  # the whole chunk is stale: keep the old plan
        nt, npos = new_times[keep_new], new_positions[keep_new]
        committed = (self.times > now_s) & (self.times <= cut) if len(self.times) else np.zeros(0, bool)
        old = self._old_at(nt)
        if old is not None:
            # beyond its end the old plan holds its last target (np.interp clamps), so a late chunk still starts
            # from where the robot is headed instead of jumping to the new plan
            alpha = np.clip((np.arange(len(nt)) + 1) / (self.overlap_steps + 1), 0.0, 1.0)[:, None]
            npos = (1 - alpha) * old + alpha * npos
        if old is not None and committed.any():
            self.times = np.concatenate([self.times[committed], nt])
            self.positions = np.concatenate([self.positions[committed], npos])
        else:
            self.times, self.positions = nt, npos
        return self.pending(now_s)

    def pending(self, now_s: float) -> tuple[np.ndarray, np.ndarray]:
        if self.positions is None:
            return np.zeros(0), np.zeros((0, 0))
        m = self.times > now_s
        return self.times[m], self.positions[m]


def stamp_to_s(stamp) -> float:
    """builtin_interfaces Time/Duration -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


class TrajectoryFollower:
    """Joint-space trajectory playback with joint_trajectory_controller timing semantics (no rclpy)."""

    def __init__(self, q0: np.ndarray, names):
        self.q = np.array(q0, float)
        self.names = list(names)
        self._times = None
        self._points = None
        self.received = 0

    def set(self, names, stamp_s: float, tfs: np.ndarray, positions: np.ndarray, now_s: float) -> str | None:
        if list(names) != self.names:
            return f"trajectory joints {list(names)} do not match {self.names}"
        if len(tfs) == 0 or np.any(np.diff(tfs) <= 0):
            return "trajectory is empty or time_from_start is not strictly increasing"
        start = now_s if stamp_s == 0 else stamp_s
        times = start + tfs
        if times[-1] < now_s:
            return "trajectory ends in the past"
        ahead = times > now_s  # points already due are skipped: interpolation starts from here, now, to the next one
        self._times = np.concatenate([[now_s], times[ahead]])
        self._points = np.vstack([self.q, np.asarray(positions)[ahead]])
        self.received += 1
        return None

    def step(self, now_s: float) -> np.ndarray:
        if self._times is not None:
            t = np.clip(now_s, self._times[0], self._times[-1])
            self.q = np.array([np.interp(t, self._times, self._points[:, j]) for j in range(len(self.q))])
            if now_s >= self._times[-1]:
                self._times = self._points = None  # hold the last point
        return self.q.copy()
