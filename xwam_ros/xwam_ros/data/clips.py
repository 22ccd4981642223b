"""Training clips cut from dataset episodes, in the layout the trainer consumes (``Clip``).

A clip starting at step s holds frames s, s + n, ..., s + (F - 1) n (n = ``actions_per_frame``, the paper's frame_skip 4),
the F states at those frames and the K = n (F - 1) actions from s. Past the end of an episode the last frame is
repeated and the arm holds still, so the model also learns to stop once the task is done. Images are resized to
the model size exactly as the live node resizes camera messages (``geometry/image.resize_rgbd``: area for colour,
nearest for depth), so training and deployment see the same pixels.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..geometry.depth import invalid_to_far, metric_to_inverse_depth
from ..geometry.image import resize_rgbd
from ..model.layout import DELTA_GRIPPER, StateLayout
from .episodes import DatasetError, Episode, EpisodeDataset


@dataclass
class Clip:
    rgb: np.ndarray  # [V, F, H, W, 3] uint8
    depth: np.ndarray  # [V, F, H, W] float32 metres
    actions: np.ndarray  # [K, A] physical (EE deltas: dxyz, axis-angle, gripper)
    states: np.ndarray  # [F, S] physical (xyz, quat wxyz, gripper)
    instruction: str
    action_mask: np.ndarray  # [A] 1 = valid dim
    state_mask: np.ndarray  # [S]


def hold_action(last: np.ndarray, gripper_action: str) -> np.ndarray:
    """No motion; an absolute gripper command keeps its last value (every arm's), a gripper delta is zero."""
    a = np.zeros_like(last)
    if gripper_action == "absolute":
        layout = StateLayout.from_action_dim(last.shape[0], "the dataset's action width")
        for arm in range(layout.arms):
            layout.arm_action(a, arm)[DELTA_GRIPPER] = layout.arm_action(last, arm)[DELTA_GRIPPER]
    return a


class EpisodeClips(torch.utils.data.Dataset):
    """Every ``stride``-th start of every episode of a dataset directory, as model-size clips."""

    def __init__(self, root: Path, cfg, stride: int | None = None, episodes: list[int] | None = None):
        self.data = EpisodeDataset(root)
        self.cfg = cfg
        meta = self.data.meta
        if list(meta.view_names) != list(cfg.view_names):
            raise DatasetError(f"{root}: dataset views {list(meta.view_names)} differ from the model's "
                               f"{list(cfg.view_names)} (same names, same order)")
        if len(meta.action_names) > cfg.action_dim or len(meta.state_names) > cfg.state_dim:
            raise DatasetError(f"{root}: {len(meta.action_names)} action / {len(meta.state_names)} state dims do "
                               f"not fit the model's {cfg.action_dim} / {cfg.state_dim}")
        self.stride = stride or cfg.actions_per_frame
        self.episode_ids = list(range(len(self.data))) if episodes is None else list(episodes)
        self.index = []  # (episode, start)
        for e in self.episode_ids:
            n = self._length(e)
            self.index += [(e, s) for s in range(0, max(1, n - cfg.actions_per_frame), self.stride)]
        h = hashlib.sha1(f"{Path(root).resolve()}|{self.stride}|{self.episode_ids}".encode())
        for f in self.data.files:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        self.cache_key = h.hexdigest()[:12]  # LatentCache: new data never reuses stale latents
        self._cached = (None, None)

    def _length(self, e: int) -> int:
        with np.load(self.data.files[e]) as z:
            return int(z["states"].shape[0])

    def __len__(self) -> int:
        return len(self.index)

    def episode(self, e: int) -> Episode:
        if self._cached[0] != e:  # clips are read in episode order: keep the last episode in memory
            self._cached = (e, self.data[e])
        return self._cached[1]

    def clips_of(self, episodes) -> list[int]:
        keep = set(episodes)
        return [i for i, (e, _) in enumerate(self.index) if e in keep]

    def __getitem__(self, i: int) -> Clip:
        e, s = self.index[i]
        return cut_clip(self.episode(e), s, self.cfg, self.data.meta.gripper_action)


def cut_clip(ep: Episode, start: int, cfg, gripper_action: str = "absolute") -> Clip:
    T = ep.length
    frames = np.minimum(start + np.arange(cfg.num_frames) * cfg.actions_per_frame, T - 1)
    hw = (cfg.height, cfg.width)
    rgb = np.empty((ep.rgb.shape[0], cfg.num_frames, *hw, 3), np.uint8)
    depth = np.empty((ep.rgb.shape[0], cfg.num_frames, *hw), np.float32)
    for v in range(ep.rgb.shape[0]):
        for f, t in enumerate(frames):
            rgb[v, f], depth[v, f], _ = resize_rgbd(ep.rgb[v, t], ep.depth[v, t], ep.K[v], hw)
    steps = np.arange(start, start + cfg.num_actions)
    acts = ep.actions[np.minimum(steps, T - 1)].copy()
    acts[steps >= T - 1] = hold_action(ep.actions[-1], gripper_action)
    A, S = ep.actions.shape[1], ep.states.shape[1]
    action_mask = np.zeros(cfg.action_dim, np.float32)
    action_mask[:A] = 1
    state_mask = np.zeros(cfg.state_dim, np.float32)
    state_mask[:S] = 1
    return Clip(rgb, invalid_to_far(depth, cfg.depth_bounds()[1]),
                np.pad(acts, ((0, 0), (0, cfg.action_dim - A))).astype(np.float32),
                np.pad(ep.states[frames], ((0, 0), (0, cfg.state_dim - S))).astype(np.float32),
                ep.instruction, action_mask, state_mask)


def dataset_arrays(root: Path, episodes=None) -> tuple[np.ndarray, np.ndarray]:
    """All actions and states of the chosen episodes (for normalisation statistics), without touching images."""
    data = EpisodeDataset(root)
    acts, sts = [], []
    for e in (range(len(data)) if episodes is None else episodes):
        with np.load(data.files[e]) as z:
            acts.append(z["actions"])
            sts.append(z["states"])
    return np.concatenate(acts), np.concatenate(sts)


def dataset_normalizer(root: Path, episodes=None, action_dim: int | None = None, state_dim: int | None = None):
    """q01/q99 statistics (symmetric for actions; quaternions passed through) of every step of the chosen episodes,
    zero-padded to the model's action/state dims when given."""
    from ..model.normalize import Normalizer
    acts, sts = dataset_arrays(root, episodes)
    if action_dim is not None:
        acts = np.pad(acts, ((0, 0), (0, action_dim - acts.shape[1])))
    if state_dim is not None:
        sts = np.pad(sts, ((0, 0), (0, state_dim - sts.shape[1])))
    quaternions = StateLayout.from_state_dim(sts.shape[1], "the dataset's state width").quaternion_indices()
    return Normalizer.fit(acts, sts, passthrough_state_dims=quaternions), len(acts)


def measured_depth_ranges(root: Path, episodes, samples: int = 16, margin: float = 0.2) -> tuple | None:
    """Per view (near, far) metres for the inverse-depth code (XWAMConfig.depth_ranges): the 0.5th and 99.5th
    percentiles of valid depth over up to ``samples`` of the given episodes, widened by ``margin``; None if some view
    has no valid depth. Pixels and frames are subsampled (4x4, every 5th frame): percentiles need no more."""
    data = EpisodeDataset(root)
    episodes = list(episodes)
    pick = [episodes[int(k)] for k in np.linspace(0, len(episodes) - 1, min(samples, len(episodes)))]
    # a training run asks more than once (model_config); the files' sizes and times say when to measure again
    files = [data.files[e] for e in pick]
    stats = [os.stat(f) for f in files]
    key = (margin, *((str(f), st.st_size, st.st_mtime_ns) for f, st in zip(files, stats)))
    if key not in _MEASURED_RANGES:
        _MEASURED_RANGES[key] = _depth_percentiles(files, margin)
    return _MEASURED_RANGES[key]


_MEASURED_RANGES: dict = {}


def _depth_percentiles(files: list, margin: float) -> tuple | None:
    per_view = None
    for f in files:
        with np.load(f) as z:
            d = z["depth_mm"][:, ::5, ::4, ::4]
        per_view = per_view or [[] for _ in range(len(d))]
        for v in range(len(d)):
            per_view[v].append(d[v][d[v] > 0])
    ranges = []
    for vals in per_view or []:
        mm = np.concatenate(vals)
        if not mm.size:
            return None
        lo, hi = np.percentile(mm, [0.5, 99.5])
        ranges.append((np.floor(lo * (1 - margin)) / 1000.0, np.ceil(hi * (1 + margin)) / 1000.0))
    return tuple(ranges) or None


def clip_videos(cfg, clip: Clip) -> tuple[torch.Tensor, torch.Tensor]:
    """The autoencoder's inputs of a clip, in [-1, 1]: RGB [V, 3, F, H, W] and inverse depth as 3-channel
    pseudo-RGB [V, 3, F, H, W] (X-WAM's depth encoding, geometry/depth.py)."""
    rgb = torch.from_numpy(clip.rgb).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
    inv = torch.from_numpy(metric_to_inverse_depth(clip.depth, *cfg.depth_bounds()))
    return rgb, inv[:, None].expand(-1, 3, -1, -1, -1)
