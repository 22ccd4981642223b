"""Synchronised ROS messages -> the model's Observation. Shared by the live node and offline bag evaluation, so both
see exactly the same pixels, intrinsics and state (no rclpy import: works on rosbags messages too)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.camera import ee_pose_to_matrix, scale_intrinsics
from ..model.layout import arm_state_from
from ..model.policy import Observation
from .convert import ImageConversionError, camera_info_to_K, depth_to_metres, image_to_rgb


class ObservationError(ValueError):
    """The synchronised set cannot become a model observation; the message names the camera or joint."""


@dataclass
class CameraFrame:
    rgb: np.ndarray  # [H, W, 3] uint8 at model size
    depth: np.ndarray  # [H, W] float32 metres (NaN invalid) at model size
    K: np.ndarray  # [3, 3] at model size
    stamp_ns: int


@dataclass
class BuiltObservation:
    obs: Observation
    frames: list  # CameraFrame per view, config order
    stamp_ns: int  # newest stamp in the synchronised set
    spread_ns: int


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def convert_camera(name: str, color_msg, depth_msg, info_msg, out_hw, min_valid_fraction: float) -> CameraFrame:
    """One camera's colour + aligned depth + camera_info at the model's size."""
    if info_msg is None:
        raise ObservationError(f"camera {name}: no camera_info received yet")
    try:
        K = camera_info_to_K(info_msg, f"{name} camera_info")
        src = (int(color_msg.height), int(color_msg.width))
        if (int(depth_msg.height), int(depth_msg.width)) != src:
            raise ObservationError(f"camera {name}: depth {depth_msg.width}x{depth_msg.height} is not aligned to "
                                   f"colour {src[1]}x{src[0]} (use aligned_depth_to_color)")
        if (int(info_msg.height), int(info_msg.width)) not in ((0, 0), src):
            raise ObservationError(f"camera {name}: camera_info is {info_msg.width}x{info_msg.height} but the "
                                   f"colour image is {src[1]}x{src[0]}")
        rgb = image_to_rgb(color_msg, f"{name} colour", out_hw)
        depth = depth_to_metres(depth_msg, f"{name} depth", out_hw)
        K = scale_intrinsics(K, src, tuple(out_hw)) if out_hw is not None else K  # None: native size
    except ImageConversionError as exc:
        raise ObservationError(f"camera {name}: {exc}") from exc
    valid = np.isfinite(depth).mean()
    if valid < min_valid_fraction:
        raise ObservationError(f"camera {name}: only {valid:.0%} of depth pixels are valid "
                               f"(NaN/zero depth; need {min_valid_fraction:.0%})")
    return CameraFrame(rgb, depth, K, stamp_to_ns(color_msg.header.stamp))


def joint_vector(joint_state, names) -> np.ndarray:
    """Positions of ``names`` (in that order) from a JointState, with a clear error for missing joints."""
    if joint_state is None:
        raise ObservationError("no joint_states received yet")
    index = {n: i for i, n in enumerate(joint_state.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ObservationError(f"joint_states lacks joints {missing} (it has {list(joint_state.name)}); "
                               "is this bag/robot the one the model was configured for?")
    pos = np.asarray(joint_state.position, np.float64)
    out = np.array([pos[index[n]] for n in names], np.float32)
    if not np.all(np.isfinite(out)):
        raise ObservationError(f"joint_states has non-finite positions for {names}")
    return out


def ee_state(pose, gripper: float) -> np.ndarray:
    """One arm's state (StateLayout): position, quaternion wxyz with w >= 0, gripper."""
    q = np.array([pose.orientation.w, pose.orientation.x, pose.orientation.y, pose.orientation.z])
    if q[0] < 0:
        q = -q
    p = np.array([pose.position.x, pose.position.y, pose.position.z])
    ee_pose_to_matrix(p, q)  # validates the quaternion
    return arm_state_from(p, q, gripper).astype(np.float32)


def build_observation(synced: dict, infos: dict, state: np.ndarray, instruction: str, view_names, out_hw,
                      state_dim: int, min_valid_depth: float = 0.05) -> BuiltObservation:
    """``synced`` maps '<view>/color' and '<view>/depth' to (stamp_ns, msg); ``infos`` maps view -> CameraInfo."""
    frames = [convert_camera(v, synced[f"{v}/color"][1], synced[f"{v}/depth"][1], infos.get(v), out_hw,
                             min_valid_depth) for v in view_names]
    stamps = [s for s, _ in synced.values()]
    st = np.zeros(state_dim, np.float32)
    if len(state) > state_dim:
        raise ObservationError(f"robot state has {len(state)} values, the model takes {state_dim}")
    st[: len(state)] = state  # single-arm data in dual-arm slots: the rest stays zero (masked in training)
    obs = Observation(rgb=np.stack([f.rgb for f in frames]), state=st, instruction=instruction,
                      depth=np.stack([f.depth for f in frames]))
    return BuiltObservation(obs, frames, max(stamps), max(stamps) - min(stamps))
