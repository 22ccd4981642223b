"""Training clips from the built-in procedural scene.

A clip is what one X-WAM training sample needs: ``num_frames`` multi-view RGB-D frames (frame 0 = the current
observation), the ``num_actions`` actions between them (``actions_per_frame`` per frame interval), one state per frame, the
instruction and per-dimension validity masks. ``ProceduralClips`` renders them from the built-in gantry scene with a
scripted reach-and-grasp motion, so the whole training path runs here without downloading data; the simulator and
bag datasets (issue 4) provide clips in the same layout.
"""
from __future__ import annotations

import numpy as np
import torch
from transforms3d.quaternions import mat2quat

from ..data.clips import Clip  # noqa: F401  (re-exported: the trainer's sample type)
from ..geometry.depth import invalid_to_far
from ..model.layout import ONE_ARM, StateLayout
from ..sim.procedural import HOME, CameraRig, default_boxes, fk


def ee_state_of(q: np.ndarray) -> np.ndarray:
    T = fk(q)
    quat = mat2quat(T[:3, :3])
    quat = -quat if quat[0] < 0 else quat
    return np.concatenate([T[:3, 3], quat, [q[6]]]).astype(np.float32)


class ProceduralClips(torch.utils.data.Dataset):
    """Deterministic clips: clip i moves the gantry from a seeded start toward a seeded box, closing the gripper."""

    def __init__(self, cfg, num_clips: int, seed: int = 0):
        self.cfg, self.n, self.seed = cfg, num_clips, seed
        self.rig = CameraRig(cfg.height, cfg.width)
        names = list(self.rig.cameras)
        if list(cfg.view_names) != names[: cfg.num_views]:
            raise ValueError(f"procedural clips render views {names}; the model config has {list(cfg.view_names)}")
        self.boxes = default_boxes()

    def __len__(self) -> int:
        return self.n

    def trajectory(self, i: int) -> np.ndarray:
        """Joint positions at every action step (num_actions + 1 of them)."""
        c = self.cfg
        rng = np.random.default_rng([self.seed, i])
        q0 = HOME.copy()
        q0[:2] += rng.uniform(-0.08, 0.08, 2)
        q0[5] = rng.uniform(-0.3, 0.3)
        box = self.boxes[i % len(self.boxes)]
        goal = q0.copy()
        goal[:2] = (box.lo[:2] + box.hi[:2]) / 2
        goal[2] = box.hi[2] + 0.06
        goal[6] = 0.0  # close
        s = np.linspace(0.0, 1.0, c.num_actions + 1)
        s = 3 * s ** 2 - 2 * s ** 3  # smooth start and stop
        return q0[None] + s[:, None] * (goal - q0)[None]

    def __getitem__(self, i: int) -> Clip:
        c = self.cfg
        qs = self.trajectory(i)
        frame_idx = np.arange(c.num_frames) * c.actions_per_frame
        views = list(c.view_names)
        rgb = np.zeros((c.num_views, c.num_frames, c.height, c.width, 3), np.uint8)
        depth = np.zeros((c.num_views, c.num_frames, c.height, c.width), np.float32)
        for f, k in enumerate(frame_idx):
            for v, name in enumerate(views):
                rgb[v, f], depth[v, f] = self.rig.render(name, qs[k])
        states = np.stack([ee_state_of(qs[k]) for k in frame_idx])
        actions = np.zeros((c.num_actions, c.action_dim), np.float32)
        for k in range(c.num_actions):
            T0, T1 = fk(qs[k]), fk(qs[k + 1])
            actions[k, :3] = T1[:3, 3] - T0[:3, 3]
            dR = T1[:3, :3] @ T0[:3, :3].T
            from transforms3d.axangles import mat2axangle
            axis, angle = mat2axangle(dR)
            actions[k, 3:6] = axis * angle
            actions[k, 6] = qs[k + 1][6] - qs[k][6]
        pad_a = np.zeros(c.action_dim, np.float32)
        pad_a[:ONE_ARM.action_size] = 1  # the rig is one arm: a two-arm model's second arm is padding
        pad_s = np.zeros(c.state_dim, np.float32)
        pad_s[:ONE_ARM.state_size] = 1
        return Clip(rgb, invalid_to_far(depth, c.depth_bounds()[1]), actions, StateLayout.of(c).pad(states),
                    f"reach the box {i % len(self.boxes)}", pad_a, pad_s)
