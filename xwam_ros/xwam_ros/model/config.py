"""Typed, self-validating configuration of an X-WAM model and its inference schedule.

Field names follow the Wan/X-WAM checkpoints where one exists (dim, ffn_dim, num_heads, num_layers, text_dim, ...).
Everything that describes the robot setup (number of views, image size, horizon, action/state dims, depth-branch
depth) is configuration, never a constant.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .layout import StateLayout


# Former field names (also the official X-WAM config's names) -> ours; read by from_dict.
LEGACY_NAMES = {"proprio_dim": "state_dim", "action_num": "actions_per_frame"}


@dataclass
class XWAMConfig:
    # transformer (Wan2.2-TI2V-5B: 3072 / 14336 / 24 / 30)
    dim: int = 3072
    ffn_dim: int = 14336
    num_heads: int = 24
    num_layers: int = 30
    num_depth_layers: int = 10  # M: last M blocks copied into the depth branch
    text_dim: int = 4096
    text_len: int = 512
    freq_dim: int = 256
    eps: float = 1e-6
    latent_channels: int = 48
    patch_size: tuple = (1, 2, 2)
    rope_theta: float = 10000.0
    # robot / data layout
    view_names: tuple = ("robot0_agentview_left", "robot0_agentview_right", "robot0_eye_in_hand")
    view_kinds: tuple = ("static", "static", "wrist")
    action_dim: int = 14
    state_dim: int = 16  # robot state vector (the checkpoints' proprio_encoder/decoder keys keep "proprio"); with
    # ee_delta actions 8 per arm and action_dim 7 per arm: StateLayout.of(config), model/layout.py
    actions_per_frame: int = 4  # actions per video frame (K / H; the official config's action_num)
    num_frames: int = 9  # 1 conditioning + H future frames
    num_actions: int = 32  # actions in one chunk (= actions_per_frame x (num_frames - 1))
    num_states: int = 9
    height: int = 256
    width: int = 320
    vae_stride: tuple = (4, 16, 16)
    # inference
    action_steps: int = 10  # network calls until the action chunk is final (ANS)
    video_steps: int = 50  # network calls until the video is final
    shift: float = 5.0
    cfg_scale: float = 1.0  # 1 = conditional only (the paper's setting)
    compile: bool = False  # run the transformer's forward through torch.compile (inductor; opt-in, slow first call)
    action_dt: float = 0.05  # seconds between consecutive actions (RoboCasa: 20 Hz)
    action_space: str = "ee_delta"  # "ee_delta" | "joint"
    gripper_action: str = "delta"  # the gripper dim of EE actions: a change ("delta", X-WAM) or a command ("absolute")
    # Depth targets are inverse depth mapped linearly to [-1, 1] over this metric range (metres):
    # x = 2 (1/d - 1/far) / (1/near - 1/far) - 1, near -> +1, far -> -1 (geometry/depth.py). The paper does not
    # state its range; fixing it per robot keeps predicted depth metric.
    depth_near: float = 0.1
    depth_far: float = 4.0
    # per view (near, far) in view order, overriding the pair above: a wrist camera sees centimetres, a static one
    # metres, and one shared range leaves each a sliver of the code (the trainer measures them from the data)
    depth_ranges: tuple = ()
    extras: dict = field(default_factory=dict)

    # --- derived sizes ---------------------------------------------------------------------------------------------
    @property
    def num_views(self) -> int:
        return len(self.view_names)

    @property
    def action_hz(self) -> float:
        return 1.0 / self.action_dt

    @property
    def video_fps(self) -> float:
        """Frame rate of the predicted video: actions_per_frame actions per frame."""
        return self.action_hz / self.actions_per_frame

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def latent_frames(self) -> int:
        return 1 + (self.num_frames - 1) // self.vae_stride[0]

    @property
    def latent_h(self) -> int:
        return self.height // self.vae_stride[1]

    @property
    def latent_w(self) -> int:
        return self.width // self.vae_stride[2]

    @property
    def tokens_per_view(self) -> int:
        return (self.latent_h // self.patch_size[1]) * (self.latent_w // self.patch_size[2])

    @property
    def num_video_tokens(self) -> int:
        return self.latent_frames * self.num_views * self.tokens_per_view

    @property
    def seq_len(self) -> int:
        return self.num_video_tokens + self.num_actions + self.num_states

    @property
    def num_main_only_layers(self) -> int:
        return self.num_layers - self.num_depth_layers

    def depth_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per view near and far planes [V] (metres) of the inverse-depth code (geometry/depth.py)."""
        pairs = self.depth_ranges or ((self.depth_near, self.depth_far),) * self.num_views
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])

    # --- validation ------------------------------------------------------------------------------------------------
    def validate(self) -> "XWAMConfig":
        def bad(name, why):
            raise ValueError(f"XWAMConfig.{name}: {why}")

        try:  # YAML and JSON give lists; one hashable form
            self.depth_ranges = tuple(tuple(float(x) for x in p) for p in self.depth_ranges)
        except (TypeError, ValueError):
            bad("depth_ranges", f"need (near, far) pairs of numbers, got {self.depth_ranges!r}")

        for name in ("dim", "ffn_dim", "num_heads", "num_layers", "text_dim", "text_len", "freq_dim",
                     "latent_channels", "action_dim", "state_dim", "actions_per_frame", "num_frames", "num_actions",
                     "num_states", "height", "width", "action_steps", "video_steps"):
            if int(getattr(self, name)) <= 0:
                bad(name, f"must be positive, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            bad("num_heads", f"dim {self.dim} is not divisible by {self.num_heads} heads")
        d = self.head_dim
        if d % 2 or (d - 4 * (d // 6)) % 2 or d // 6 == 0:
            bad("num_heads", f"head dim {d} cannot be split into even t/h/w RoPE parts")
        for name in ("patch_size", "vae_stride"):
            val = getattr(self, name)
            if len(val) != 3 or any(int(v) <= 0 for v in val):
                bad(name, f"need three positive (t, h, w) sizes, got {val}")
        if not self.eps > 0:
            bad("eps", f"must be positive, got {self.eps}")
        if self.freq_dim % 2:
            bad("freq_dim", "must be even (cos and sin halves)")
        if not 0 <= self.num_depth_layers <= self.num_layers:
            bad("num_depth_layers", f"must be in [0, num_layers={self.num_layers}], got {self.num_depth_layers}")
        if len(self.view_kinds) != len(self.view_names) or not self.view_names:
            bad("view_kinds", f"need one kind per view ({len(self.view_names)} views, {len(self.view_kinds)} kinds)")
        if any(k not in ("static", "wrist") for k in self.view_kinds):
            bad("view_kinds", f"each kind must be 'static' or 'wrist', got {self.view_kinds}")
        if len(set(self.view_names)) != len(self.view_names):
            bad("view_names", f"names must be unique, got {self.view_names}")
        st, sh, sw = self.vae_stride
        if (self.num_frames - 1) % st:
            bad("num_frames", f"num_frames - 1 = {self.num_frames - 1} must be a multiple of the VAE time stride {st}")
        for name, size, s, p in (("height", self.height, sh, self.patch_size[1]), ("width", self.width, sw,
                                                                                     self.patch_size[2])):
            if size % (s * p):
                bad(name, f"{size} must be a multiple of VAE stride x patch = {s * p}")
        if self.patch_size[0] != 1:
            bad("patch_size", "temporal patch must be 1 (one token row per latent frame)")
        if self.num_actions != self.actions_per_frame * (self.num_frames - 1):
            bad("num_actions", f"must equal actions_per_frame x (num_frames - 1) = {self.actions_per_frame * (self.num_frames - 1)}")
        if self.num_states != self.num_frames:
            bad("num_states", f"must equal num_frames ({self.num_frames}): one state per video frame")
        if self.action_steps > self.video_steps:
            bad("action_steps", f"({self.action_steps}) must not exceed video_steps ({self.video_steps})")
        if not 0 < self.depth_near < self.depth_far:
            bad("depth_near", f"need 0 < depth_near < depth_far, got {self.depth_near}, {self.depth_far}")
        if self.depth_ranges and len(self.depth_ranges) != self.num_views:
            bad("depth_ranges", f"need one (near, far) per view ({self.num_views}), got {self.depth_ranges}")
        for v, pair in enumerate(self.depth_ranges):
            if len(pair) != 2 or not 0 < pair[0] < pair[1]:
                bad("depth_ranges", f"view {self.view_names[v]!r}: need (near, far) with 0 < near < far, got {pair}")
        if self.gripper_action not in ("delta", "absolute"):
            bad("gripper_action", f"must be 'delta' or 'absolute', got {self.gripper_action!r}")
        if self.action_space not in ("ee_delta", "joint"):
            bad("action_space", f"must be 'ee_delta' or 'joint', got {self.action_space!r}")
        if self.action_space == "ee_delta":
            try:
                StateLayout.of(self)  # 8 state / 7 action values per arm (model/layout.py)
            except ValueError as exc:
                bad("state_dim", str(exc))
        if not self.action_dt > 0:
            bad("action_dt", f"seconds between actions must be positive, got {self.action_dt}")
        if not self.shift > 0:
            bad("shift", f"sigma shift must be positive, got {self.shift}")
        if not self.cfg_scale >= 0:
            bad("cfg_scale", f"must be >= 0 (1 = no guidance), got {self.cfg_scale}")
        return self

    # --- (de)serialisation -----------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k in ("patch_size", "vae_stride", "view_names", "view_kinds"):
            d[k] = list(d[k])
        d["depth_ranges"] = [list(p) for p in d["depth_ranges"]]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "XWAMConfig":
        d = dict(d)
        for old, new in LEGACY_NAMES.items():  # checkpoints saved before the rename (and the official config names)
            if old in d:
                if new in d:
                    raise ValueError(f"XWAMConfig: both {old!r} and its new name {new!r} given")
                d[new] = d.pop(old)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"XWAMConfig: unknown fields {unknown}")
        for k in ("patch_size", "vae_stride", "view_names", "view_kinds"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d).validate()

    def replace(self, **changes) -> "XWAMConfig":
        return dataclasses.replace(self, **changes).validate()


def get_preset(name: str, **overrides) -> XWAMConfig:
    """"xwam-5b" (the paper's model), "mid" (benchmark scale) or "tiny" (CPU tests and the built-in demo)."""
    presets = {
        "xwam-5b": dict(),
        "mid": dict(dim=512, ffn_dim=1536, num_heads=8, num_layers=8, num_depth_layers=2, text_dim=256,
                    text_len=32, latent_channels=16, height=128, width=160, action_dim=7, state_dim=8),
        "tiny": dict(dim=64, ffn_dim=128, num_heads=2, num_layers=4, num_depth_layers=2, text_dim=32, text_len=16,
                     freq_dim=32, latent_channels=16, height=64, width=64, action_dim=7, state_dim=8,
                     view_names=("agentview", "sideview", "eye_in_hand"), view_kinds=("static", "static", "wrist"),
                     depth_near=0.1, depth_far=3.0),
    }
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(presets)}")
    return XWAMConfig(**{**presets[name], **overrides}).validate()
