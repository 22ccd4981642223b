"""The official X-WAM dataset layout <-> dataset episodes.

Official layout (X-WAM's README, "Data Structure"): ``metadata.json`` ({episode id: num_frames}),
``data/chunk-XXXX/episode_XXXXXXX.json`` (instructions, per-view rgb/depth video paths with start/end/fps and a
"static"/"dynamic" type, proprios and target-pose actions per arm, optional ``raw_actions``), and per view
``video/<view>/chunk-XXXX/*.mp4`` (RGB) and ``depth/<view>/chunk-XXXX/*.mp4`` (depth as 8-bit grey, read as
x / 127.5 - 1). The layout has no camera calibration, so converting *from* it takes intrinsics and extrinsics from
the caller (``cameras``), and its depth videos are read as our normalised inverse depth over the robot's
[near, far] range -- the paper does not state its own normalisation (see docs/model.md).

Writing keeps RGB bit-exact by default (H.264 RGB, crf 0); pass ``crf > 0`` for small lossy files. Depth in this
layout is 8 bits of inverse depth, so a round trip is exact only to that quantisation.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry.depth import inverse_depth_to_metric, metric_to_inverse_depth
from ..model.actions import encode_ee_deltas
from ..model.layout import DELTA_GRIPPER, ONE_ARM, arm_state_from, one_arm
from .episodes import DatasetError, DatasetMeta, Episode

CHUNK = 1000  # episodes per chunk directory


def _rel(kind: str, view: str, index: int) -> str:
    return f"{kind}/{view}/chunk-{index // CHUNK:04d}/episode_{index:07d}.mp4"


# --- video io (PyAV) ------------------------------------------------------------------------------------------------
def write_video(path: Path, frames: np.ndarray, fps: float, crf: int = 0) -> None:
    """[T, H, W, 3] uint8 -> mp4. crf 0 uses H.264 in RGB (lossless); otherwise yuv420p H.264 at that crf."""
    import av
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        codec, pix = ("libx264rgb", "rgb24") if crf == 0 else ("libx264", "yuv420p")
        s = c.add_stream(codec, rate=int(round(fps)))
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def read_video(path: Path) -> np.ndarray:
    import av
    try:
        with av.open(str(path)) as c:
            return np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)])
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise DatasetError(f"{path}: cannot decode video ({type(exc).__name__}: {exc})") from exc


# --- episodes -> official -------------------------------------------------------------------------------------------
def export_official(episodes, meta: DatasetMeta, root: Path, near: float, far: float, crf: int = 0) -> Path:
    """Write episodes in the official layout (single arm in the "left" slots, as X-WAM's RoboCasa data)."""
    root = Path(root)
    counts = {}
    for i, ep in enumerate(episodes):
        key = f"episode_{i:07d}"
        obs = {}
        for v, view in enumerate(meta.view_names):
            inv = metric_to_inverse_depth(np.nan_to_num(ep.depth[v], nan=far), near, far)
            grey = np.round((inv + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
            write_video(root / _rel("video", view, i), ep.rgb[v], meta.fps, crf)
            write_video(root / _rel("depth", view, i), np.repeat(grey[..., None], 3, -1), meta.fps, crf)
            obs[view] = {"type": "dynamic" if meta.view_kinds[v] == "wrist" else "static",
                         "rgb_path": _rel("video", view, i), "depth_path": _rel("depth", view, i),
                         "start": 0, "end": ep.length, "fps": meta.fps}
        s = ep.states.astype(np.float64)
        arm = one_arm(s, "the official layout's left-arm export")
        pos, grip = arm.position(s), arm.gripper(s)[:, None]
        rotm = Rotation.from_quat(arm.quaternion(s), scalar_first=True).as_matrix().reshape(-1, 9)
        nxt = np.minimum(np.arange(ep.length) + 1, ep.length - 1)  # the target of step t is the pose at t + 1
        grip_target = arm.arm_action(ep.actions)[:, DELTA_GRIPPER:] if meta.gripper_action == "absolute" \
            else grip[nxt]
        doc = {"num_frames": ep.length, "instructions": [ep.instruction], "observations": obs,
               "proprios": {"left_ee_pos": pos.tolist(), "left_ee_rotm": rotm.tolist(),
                            "left_gripper_pos": grip.tolist()},
               "actions": {"left_ee_pos": pos[nxt].tolist(), "left_ee_rotm": rotm[nxt].tolist(),
                           "left_gripper_pos": np.asarray(grip_target).tolist()},
               # not read by X-WAM: what the official layout has no field for, so the trip back is exact
               "xwam_ros": {"K": ep.K.tolist(), "T_base_cam": ep.T_base_cam.tolist(), "success": ep.success,
                            "gripper_action": meta.gripper_action, "depth_range": [near, far], "info": ep.info}}
        f = root / "data" / f"chunk-{i // CHUNK:04d}" / f"{key}.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(doc))
        counts[key] = ep.length
    (root / "metadata.json").write_text(json.dumps(counts, indent=1))
    return root


# --- official -> episodes -------------------------------------------------------------------------------------------
def official_episodes(root: Path) -> list[Path]:
    root = Path(root)
    meta = root / "metadata.json"
    if not meta.is_file():
        raise DatasetError(f"{root}: no metadata.json (not the official X-WAM layout)")
    files = sorted((root / "data").glob("chunk-*/episode_*.json"))
    if not files:
        raise DatasetError(f"{root}/data: no chunk-*/episode_*.json files")
    return files


def import_official(path: Path, root: Path, views, near: float, far: float, cameras: dict | None = None,
                    gripper_action: str = "delta") -> Episode:
    """One official episode JSON -> Episode. ``cameras``: {view: {"K": 3x3, "extrinsic": 4x4, "kind": ...}} for
    data without our calibration block (extrinsic = camera->base for static views, T_ee_cam for wrist views)."""
    try:
        doc = json.loads(Path(path).read_text())
        obs, pro = doc["observations"], doc["proprios"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise DatasetError(f"{path}: not an official X-WAM episode ({type(exc).__name__}: {exc})") from exc
    missing = [v for v in views if v not in obs]
    if missing:
        raise DatasetError(f"{path}: views {missing} missing; the episode has {sorted(obs)}")
    rgb, depth = [], []
    for v in views:
        o = obs[v]
        frames = read_video(Path(root) / o["rgb_path"])[o["start"]:o["end"]]
        grey = read_video(Path(root) / o["depth_path"])[o["start"]:o["end"]].astype(np.float32).mean(-1)
        rgb.append(frames)
        depth.append(inverse_depth_to_metric(grey / 127.5 - 1.0, near, far).astype(np.float32))
    n = min(len(r) for r in rgb)
    pos = np.asarray(pro["left_ee_pos"], np.float64)[:n]
    quat = Rotation.from_matrix(np.asarray(pro["left_ee_rotm"], np.float64)[:n].reshape(-1, 3, 3)).as_quat()
    wxyz = quat[:, [3, 0, 1, 2]] * np.where(quat[:, 3:4] < 0, -1.0, 1.0)
    grip = np.asarray(pro["left_gripper_pos"], np.float64)[:n, 0]
    states = arm_state_from(pos, wxyz, grip).astype(np.float32)  # the left arm only: one arm (StateLayout)
    extra = doc.get("xwam_ros", {})
    grips = None
    if extra.get("gripper_action", gripper_action) == "absolute":
        grips = np.asarray(doc["actions"]["left_gripper_pos"], np.float64)[:n, 0]
    K, T = _calibration(extra, cameras, views, states, n, path)
    return Episode(np.stack([r[:n] for r in rgb]), np.stack([d[:n] for d in depth]), K, T, states,
                   encode_ee_deltas(states, grips), (doc.get("instructions") or [""])[0],
                   bool(extra.get("success", True)), {**extra.get("info", {}), "source": f"official:{Path(path).name}"})


def _calibration(extra, cameras, views, states, n, path):
    if "K" in extra and "T_base_cam" in extra:
        return np.asarray(extra["K"], np.float32), np.asarray(extra["T_base_cam"], np.float32)[:, :n]
    if not cameras or any(v not in cameras for v in views):
        raise DatasetError(f"{path}: the official layout carries no camera calibration; pass K and extrinsic for "
                           f"every view {list(views)}")
    from ..geometry.camera import ee_pose_to_matrix
    K = np.stack([np.asarray(cameras[v]["K"], np.float32).reshape(3, 3) for v in views])
    T = []
    for v in views:
        E = np.asarray(cameras[v]["extrinsic"], np.float64).reshape(4, 4)
        if cameras[v].get("kind", "static") == "wrist":
            T.append(np.stack([ee_pose_to_matrix(ONE_ARM.position(s), ONE_ARM.quaternion(s)) @ E
                               for s in states.astype(np.float64)]))
        else:
            T.append(np.repeat(E[None], n, 0))
    return K, np.stack(T).astype(np.float32)
