"""The one dataset format the trainer reads: a directory of episodes, one compressed ``.npz`` per episode.

    <dataset>/meta.json               format, fps, views (+ kinds), state/action names, action conventions
    <dataset>/episodes/episode_000000.npz
        rgb          [V, T, H, W, 3] uint8
        depth_mm     [V, T, H, W] uint16 millimetres, 0 = no reading (lossless, 4x smaller than float32)
        K            [V, 3, 3] float32 intrinsics at (H, W)
        T_base_cam   [V, T, 4, 4] float32 camera (OpenCV optical axes) -> robot base; wrist cameras move
        states       [T, S] float32: EE xyz, quat wxyz (w >= 0), gripper
        actions      [T, A] float32: action t takes observation t to t + 1 (the last one holds still)
        info         JSON string: instruction, success, seed, source

Why npz and not the video layout of the official X-WAM data: exact (depth is lossless, RGB has no codec drift
between what was recorded and what the model trains on), one file per episode and no decoder in the loader.
Converters in ``data/official.py`` and ``data/bags.py`` go to and from the other layouts.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "xwam_ros.episodes/1"


class DatasetError(ValueError):
    """A dataset or episode file that cannot be used; the message names the file and what is wrong."""


@dataclass
class DatasetMeta:
    fps: float
    view_names: tuple
    view_kinds: tuple  # "static" | "wrist" per view
    state_names: tuple
    action_names: tuple
    action_space: str = "ee_delta"  # what the actions are; see model/actions.py
    gripper_action: str = "absolute"  # the gripper dim is a command ("absolute") or a change ("delta")
    base_frame: str = "world"
    extra: dict = field(default_factory=dict)

    def validate(self) -> "DatasetMeta":
        if len(self.view_names) != len(self.view_kinds) or not self.view_names:
            raise DatasetError(f"meta: {len(self.view_names)} views but {len(self.view_kinds)} view kinds")
        if self.fps <= 0:
            raise DatasetError(f"meta: fps must be positive, got {self.fps}")
        if self.gripper_action not in ("absolute", "delta"):
            raise DatasetError(f"meta: gripper_action must be absolute or delta, got {self.gripper_action!r}")
        return self

    def to_dict(self) -> dict:
        return {"format": FORMAT, "fps": self.fps, "view_names": list(self.view_names),
                "view_kinds": list(self.view_kinds), "state_names": list(self.state_names),
                "action_names": list(self.action_names), "action_space": self.action_space,
                "gripper_action": self.gripper_action, "base_frame": self.base_frame, "extra": self.extra}

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetMeta":
        if d.get("format") != FORMAT:
            raise DatasetError(f"meta.json: format {d.get('format')!r} is not {FORMAT!r}")
        keys = ("fps", "view_names", "view_kinds", "state_names", "action_names", "action_space", "gripper_action",
                "base_frame", "extra")
        kw = {k: d[k] for k in keys if k in d}
        for k in ("view_names", "view_kinds", "state_names", "action_names"):
            kw[k] = tuple(kw.get(k, ()))
        return cls(**kw).validate()


@dataclass
class Episode:
    rgb: np.ndarray
    depth: np.ndarray  # [V, T, H, W] float32 metres, NaN = no reading
    K: np.ndarray
    T_base_cam: np.ndarray
    states: np.ndarray
    actions: np.ndarray
    instruction: str = ""
    success: bool = True
    info: dict = field(default_factory=dict)

    @property
    def length(self) -> int:
        return self.states.shape[0]

    def validate(self, name: str = "episode") -> "Episode":
        V, T = self.rgb.shape[:2]
        checks = [
            (self.rgb.ndim == 5 and self.rgb.shape[-1] == 3 and self.rgb.dtype == np.uint8, "rgb must be [V,T,H,W,3] uint8"),
            (self.depth.shape == self.rgb.shape[:4], f"depth {self.depth.shape} must match rgb {self.rgb.shape[:4]}"),
            (self.K.shape == (V, 3, 3), f"K must be [{V},3,3], got {self.K.shape}"),
            (self.T_base_cam.shape == (V, T, 4, 4), f"T_base_cam must be [{V},{T},4,4], got {self.T_base_cam.shape}"),
            (self.states.ndim == 2 and self.states.shape[0] == T, f"states must be [{T}, S], got {self.states.shape}"),
            (self.actions.ndim == 2 and self.actions.shape[0] == T, f"actions must be [{T}, A], got {self.actions.shape}"),
            (T >= 2, f"needs at least 2 steps, has {T}"),
        ]
        for ok, why in checks:
            if not ok:
                raise DatasetError(f"{name}: {why}")
        for key in ("states", "actions", "K", "T_base_cam"):
            if not np.all(np.isfinite(getattr(self, key))):
                raise DatasetError(f"{name}: {key} contains NaN or inf")
        return self


def depth_to_mm(depth: np.ndarray) -> np.ndarray:
    d = np.nan_to_num(np.asarray(depth, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.round(d * 1000.0), 0, 65535).astype(np.uint16)


def depth_from_mm(mm: np.ndarray) -> np.ndarray:
    d = mm.astype(np.float32) / 1000.0
    d[mm == 0] = np.nan
    return d


def write_episode(path: Path, ep: Episode) -> Path:
    """Atomic write: a crash never leaves a half-written episode under the final name."""
    ep.validate(str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {**ep.info, "instruction": ep.instruction, "success": bool(ep.success)}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, rgb=ep.rgb, depth_mm=depth_to_mm(ep.depth), K=ep.K.astype(np.float32),
                        T_base_cam=ep.T_base_cam.astype(np.float32), states=ep.states.astype(np.float32),
                        actions=ep.actions.astype(np.float32), info=np.array(json.dumps(info)))
    os.replace(tmp, path)
    return path


def read_episode(path: Path) -> Episode:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f"{path}: not a readable episode file ({type(exc).__name__}: {exc})") from exc
    missing = {"rgb", "depth_mm", "K", "T_base_cam", "states", "actions", "info"} - set(d)
    if missing:
        raise DatasetError(f"{path}: missing arrays {sorted(missing)}")
    info = json.loads(str(d["info"]))
    return Episode(d["rgb"], depth_from_mm(d["depth_mm"]), d["K"], d["T_base_cam"], d["states"], d["actions"],
                   info.pop("instruction", ""), bool(info.pop("success", True)), info).validate(str(path))


class EpisodeDataset:
    """A dataset directory: its meta and its episode files (read lazily, one at a time)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        meta = self.root / "meta.json"
        if not meta.is_file():
            raise DatasetError(f"{self.root}: no meta.json (not an xwam_ros episode dataset)")
        try:
            self.meta = DatasetMeta.from_dict(json.loads(meta.read_text()))
        except (json.JSONDecodeError, TypeError) as exc:
            raise DatasetError(f"{meta}: {exc}") from exc
        self.files = sorted((self.root / "episodes").glob("episode_*.npz"))
        if not self.files:
            raise DatasetError(f"{self.root}/episodes: no episode_*.npz files")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Episode:
        return read_episode(self.files[i])

    @staticmethod
    def create(root: Path, meta: DatasetMeta) -> Path:
        root = Path(root)
        (root / "episodes").mkdir(parents=True, exist_ok=True)
        (root / "meta.json").write_text(json.dumps(meta.validate().to_dict(), indent=1))
        return root

    @staticmethod
    def episode_path(root: Path, index: int) -> Path:
        return Path(root) / "episodes" / f"episode_{index:06d}.npz"

