"""Parameters of the policy node: declared with descriptions in one table, read into a validated dataclass.

The camera topic contract lives here too (RealSense-style defaults), so the camera source, the policy node, the
recorder and the docs agree, and swapping in real cameras is a YAML change.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .safety import SafetyLimits


def realsense_topics(camera: str) -> dict:
    """realsense2_camera topic names for one camera namespace (aligned depth, 16UC1 millimetres)."""
    return {"color_topic": f"/{camera}/color/image_raw",
            "depth_topic": f"/{camera}/aligned_depth_to_color/image_raw",
            "info_topic": f"/{camera}/color/camera_info",
            "frame_id": f"{camera}_color_optical_frame"}


# name: (default, description). Per-camera parameters are declared under cameras.<name>.* (see CAMERA_PARAMS).
NODE_PARAMS = {
    "checkpoint": ("", "Checkpoint directory (XWAMPolicy.from_pretrained). Empty: a random tiny model from "
                       "'seed' (demos and tests only)."),
    "preset": ("tiny", "Model preset used when 'checkpoint' is empty."),
    "seed": (0, "Seed of the random tiny model and of the per-query noise (query n uses seed + n)."),
    "device": ("auto", "torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ..."),
    "dtype": ("float32", "Weights dtype: float32 or bfloat16 (bfloat16 is slower on CPUs without AVX-512 BF16)."),
    "action_steps": (10, "Denoising calls for the action chunk (ANS asynchronous schedule; the paper uses 10)."),
    "video_steps": (50, "Denoising calls for the full imagined video (the paper uses 50)."),
    "imagine": (True, "After the action chunk, continue the same denoising to the full imagined 4D future and "
                      "publish it (point clouds, images, end-effector path)."),
    "imagine_every": (1, "Imagine after every N-th query only: imagination holds the worker, so on a slow CPU "
                         "imagining every query delays the next action chunk."),
    "instruction": ("", "Task instruction; the ~/instruction topic (std_msgs/String) overrides it at run time."),
    "camera_names": (["agentview", "sideview", "eye_in_hand"], "Cameras in the model's view order."),
    "joint_state_topic": ("/joint_states", "sensor_msgs/JointState of the arm."),
    "joint_names": (["x", "y", "z", "roll", "pitch", "yaw", "gripper"], "Joints commanded in the trajectory."),
    "state_source": ("ee_pose", "'ee_pose': state = end-effector pose (ee_pose_topic) + gripper joint; "
                                "'joints': state = joint_names positions."),
    "ee_pose_topic": ("/ee_pose", "geometry_msgs/PoseStamped of the end effector in the base frame."),
    "gripper_joint": ("gripper", "Joint whose position is the gripper state."),
    "ik": ("gantry", "How end-effector targets become controller targets: 'cartesian' (the controller takes x y z "
                     "roll pitch yaw gripper: a Cartesian controller, or the simulated Panda), 'gantry' (the same "
                     "for the procedural gantry's joints), or 'none' (publish poses only)."),
    "base_frame": ("base_link", "Frame of published clouds, poses and markers."),
    "controller_topic": ("/arm_controller/joint_trajectory", "joint_trajectory_controller input topic."),
    "execution_mode": ("chunk", "'chunk': execute the whole chunk, then query again (the paper's benchmarks); "
                                "'streaming': receding horizon, next chunk computed while the current runs and "
                                "merged without a jump (the paper's real robot)."),
    "execute_steps": (15, "Streaming mode: actions of each chunk to commit before replanning (paper: 15)."),
    "overlap_steps": (4, "Streaming mode: actions over which a new chunk is cross-faded into the old one."),
    "control_rate": (20.0, "Hz between consecutive actions (the model's action spacing)."),
    "sync_slop": (0.02, "Maximum stamp spread (s) of a synchronised multi-camera RGB-D set."),
    "sync_queue_size": (3, "Per-topic queue of the synchroniser (small: newest data wins)."),
    "min_valid_depth": (0.05, "Minimum fraction of valid depth pixels per camera."),
    "enabled": (False, "Send motion at start-up. False = dry run (compute and publish imagination, no motion)."),
    "lead_time": (0.05, "Seconds of transport/controller latency: trajectory points due sooner are dropped."),
    "max_observation_age": (0.5, "Observations older than this (s) when inference starts never produce motion."),
    "max_inference_time": (5.0, "A chunk whose inference took longer (s) is not executed."),
    "position_min": ([-0.6, -0.6, 0.0, -3.2, -3.2, -3.2, 0.0], "Lower joint limits (one per joint)."),
    "position_max": ([0.6, 0.6, 0.8, 3.2, 3.2, 3.2, 0.04], "Upper joint limits."),
    "max_velocity": ([0.25, 0.25, 0.25, 1.0, 1.0, 1.0, 0.1], "Joint velocity limits (units/s)."),
    "max_step": ([0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 0.01], "Largest change per action step, per joint."),
    "cloud_stride": (1, "Pixel stride when building clouds (2 = quarter of the points)."),
    "cloud_voxel": (0.0, "Voxel size (m) for downsampling published clouds; 0 = off."),
    "publish_observed_cloud": (True, "Publish the fused observed cloud on ~/observed/points."),
    "image_qos": ("sensor_data", "QoS of the image and camera_info subscriptions: 'sensor_data' (best effort, depth "
                                 "5: matches every driver) or 'reliable' (reliable, depth 5)."),
    "sync_timeout": (2.0, "Seconds without a synchronised camera set before /diagnostics reports an ERROR naming "
                          "the late camera stream."),
    "diagnostics_window": (10.0, "Seconds of history behind the /diagnostics levels, event counts and per-camera "
                                 "rates (older events are forgotten)."),
}
CAMERA_PARAMS = {
    "color_topic": "Colour image topic (rgb8/bgr8/rgba8/bgra8/mono8).",
    "depth_topic": "Depth aligned to colour: 16UC1 millimetres or 32FC1 metres.",
    "info_topic": "camera_info of the colour stream (intrinsics).",
    "frame_id": "Optical frame of the camera.",
    "kind": "'static' (extrinsic = T_base_cam) or 'wrist' (extrinsic = T_ee_cam, hand-eye).",
    "extrinsic": "Row-major 4x4 transform (16 numbers): T_base_cam for static cameras, T_ee_cam for wrist cameras.",
}


@dataclass
class CameraConfig:
    name: str
    color_topic: str
    depth_topic: str
    info_topic: str
    frame_id: str
    kind: str
    extrinsic: np.ndarray


@dataclass
class NodeConfig:
    values: dict
    cameras: list = field(default_factory=list)
    limits: SafetyLimits | None = None

    def __getattr__(self, name):
        try:
            return self.__dict__["values"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class ParameterError(ValueError):
    """A node parameter is invalid; the message names it."""


def _check(cond, name, why):
    if not cond:
        raise ParameterError(f"parameter '{name}': {why}")


def validate(values: dict, cameras: list) -> NodeConfig:
    v = values
    _check(v["execution_mode"] in ("chunk", "streaming"), "execution_mode", f"must be chunk|streaming, got "
                                                                           f"{v['execution_mode']!r}")
    _check(v["state_source"] in ("ee_pose", "joints"), "state_source", "must be ee_pose|joints")
    _check(v["ik"] in ("cartesian", "gantry", "none"), "ik", "must be cartesian|gantry|none")
    _check(v["dtype"] in ("float32", "bfloat16"), "dtype", "must be float32|bfloat16")
    _check(1 <= v["action_steps"] <= v["video_steps"], "action_steps", "must be in [1, video_steps]")
    _check(v["control_rate"] > 0, "control_rate", "must be positive")
    _check(v["imagine_every"] >= 1, "imagine_every", "must be >= 1")
    _check(v["sync_slop"] > 0, "sync_slop", "must be positive")
    _check(v["sync_queue_size"] >= 1, "sync_queue_size", "must be >= 1")
    _check(0 <= v["min_valid_depth"] <= 1, "min_valid_depth", "must be in [0, 1]")
    _check(v["execute_steps"] >= 1 and v["overlap_steps"] >= 0, "execute_steps", "must be >= 1 (overlap >= 0)")
    _check(len(v["joint_names"]) > 0, "joint_names", "must not be empty")
    _check(len(cameras) > 0, "camera_names", "at least one camera is needed")
    _check(v["image_qos"] in ("sensor_data", "reliable"), "image_qos", f"must be sensor_data|reliable, got "
                                                                       f"{v['image_qos']!r}")
    _check(v["sync_timeout"] > 0, "sync_timeout", "must be positive")
    _check(v["diagnostics_window"] > 0, "diagnostics_window", "must be positive")
    if v["ik"] in ("cartesian", "gantry"):
        _check(len(v["joint_names"]) == 7, "joint_names", f"ik={v['ik']} needs 7 axes (x y z roll pitch yaw gripper)")
    for cam in cameras:
        _check(cam.kind in ("static", "wrist"), f"cameras.{cam.name}.kind", f"must be static|wrist, got {cam.kind!r}")
        _check(cam.extrinsic.shape == (4, 4) and np.allclose(cam.extrinsic[3], [0, 0, 0, 1]),
               f"cameras.{cam.name}.extrinsic", "must be 16 numbers of a rigid 4x4 transform")
        R = cam.extrinsic[:3, :3]
        _check(np.allclose(R @ R.T, np.eye(3), atol=1e-4), f"cameras.{cam.name}.extrinsic", "rotation not orthonormal")
        for t in ("color_topic", "depth_topic", "info_topic"):
            _check(bool(getattr(cam, t)), f"cameras.{cam.name}.{t}", "must not be empty")
    try:
        saturating = [i for i, n in enumerate(v["joint_names"]) if n == v["gripper_joint"]]
        limits = SafetyLimits(list(v["position_min"]), list(v["position_max"]), list(v["max_velocity"]),
                              list(v["max_step"]), v["max_observation_age"], v["max_inference_time"], saturating)
        limits.validate(len(v["joint_names"]))
    except ValueError as exc:
        raise ParameterError(str(exc)) from exc
    return NodeConfig(values=v, cameras=cameras, limits=limits)


def declare_and_read(node) -> NodeConfig:
    """Declare every parameter (with its description) on an rclpy node, read and validate them."""
    from rcl_interfaces.msg import ParameterDescriptor

    values = {}
    for name, (default, desc) in NODE_PARAMS.items():
        values[name] = node.declare_parameter(name, default, ParameterDescriptor(description=desc)).value
    cameras = []
    for cam in values["camera_names"]:
        defaults = realsense_topics(cam)
        p = {}
        for key, desc in CAMERA_PARAMS.items():
            default = defaults.get(key, "static" if key == "kind" else None)
            if key == "extrinsic":
                default = [float(x) for x in np.eye(4).ravel()]
            p[key] = node.declare_parameter(f"cameras.{cam}.{key}", default,
                                            ParameterDescriptor(description=desc)).value
        ext = np.asarray(p["extrinsic"], np.float64)
        _check(ext.size == 16, f"cameras.{cam}.extrinsic", f"has {ext.size} numbers, expected 16")
        cameras.append(CameraConfig(cam, p["color_topic"], p["depth_topic"], p["info_topic"], p["frame_id"],
                                    p["kind"], ext.reshape(4, 4)))
    return validate(values, cameras)
