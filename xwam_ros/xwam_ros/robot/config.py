"""Parameters of the policy node: declared with descriptions in one table, read into one typed, validated dataclass.

``NODE_PARAMS`` is the single declaration table (default, description); ``PARAM_RANGES`` gives the numeric ranges the
ROS descriptors advertise; ``RUNTIME_PARAMS`` are the ones a running node may change (``ros2 param set``): they take
effect on the next chunk and cannot make motion unsafe mid-chunk. Every other parameter is read-only after start-up
(changing the checkpoint, device, cameras or topics needs a restart). ``NodeConfig`` is built from the same table.

The camera topic contract lives here too (RealSense-style defaults), so the camera source, the policy node, the
recorder and the docs agree, and swapping in real cameras is a YAML change.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass, replace

import numpy as np

from .safety import SafetyLimits


def realsense_topics(camera: str) -> dict:
    """realsense2_camera topic names for one camera namespace (aligned depth, 16UC1 millimetres)."""
    return {"color_topic": f"{camera}/color/image_raw",
            "depth_topic": f"{camera}/aligned_depth_to_color/image_raw",
            "info_topic": f"{camera}/color/camera_info",
            "frame_id": f"{camera}_color_optical_frame"}


# name: (default, description). Per-camera parameters are declared under cameras.<name>.* (see CAMERA_PARAMS).
NODE_PARAMS = {
    "checkpoint": ("", "Checkpoint directory (XWAMPolicy.from_pretrained). Empty: a random tiny model from "
                       "'seed' (demos and tests only)."),
    "preset": ("tiny", "Model preset used when 'checkpoint' is empty."),
    "seed": (0, "Seed of the random tiny model and of the per-query noise (query n uses seed + n)."),
    "device": ("auto", "torch device: 'auto' (cuda if available, else cpu), 'cpu', 'cuda', 'cuda:1', ..."),
    "dtype": ("float32", "Weights dtype: float32 or bfloat16 (bfloat16 is slower on CPUs without AVX-512 BF16)."),
    "inference_threads": (0, "torch CPU threads of the model; 0 = every core but one (at least one): the free core "
                             "runs the camera callbacks and the executor instead of queuing them behind the model."),
    "executor": ("events", "rclpy executor of the node's process: 'events' (rclpy's EventsExecutor: callbacks "
                           "from a C++ event queue; the camera path's p95 fell from 221-315 to 14 ms, "
                           "bench/ros_latency.py) or 'multi_threaded' (rclpy's MultiThreadedExecutor, 2 threads)."),
    "inference_process": (True, "Run the model in a child process of its own (the node process keeps the camera "
                                "callbacks, conversion and publishing, which then never wait for the model's Python "
                                "on the same interpreter lock). False: in the node's process."),
    "action_steps": (10, "Denoising calls for the action chunk (ANS asynchronous schedule; the paper uses 10)."),
    "video_steps": (50, "Denoising calls for the full imagined video (the paper uses 50)."),
    "imagine": (True, "After the action chunk, continue the same denoising to the full imagined 4D future and "
                      "publish it (point clouds, images, end-effector path)."),
    "imagine_every": (1, "Imagine after every N-th chunk only (imagination runs in its own thread and never "
                         "delays a chunk, but it shares the CPU/GPU with the action path)."),
    "imagine_always": (False, "Imagine even when nobody subscribes to an ~/imagined/* topic (recording, timing)."),
    "imagination_nice": (5, "CPU priority of the imagination thread below the action path (Linux nice, 0-19): "
                            "higher = chunks less slowed by imagining, imaginations slower on a busy CPU."),
    "instruction": ("", "Task instruction; the ~/instruction topic (std_msgs/String) overrides it at run time."),
    "camera_names": (["agentview", "sideview", "eye_in_hand"], "Cameras in the model's view order."),
    "joint_state_topic": ("joint_states", "sensor_msgs/JointState of the arm."),
    "joint_names": (["x", "y", "z", "roll", "pitch", "yaw", "gripper"], "Joints commanded in the trajectory."),
    "state_source": ("ee_pose", "'ee_pose': state = end-effector pose (ee_pose_topic) + gripper joint; "
                                "'joints': state = joint_names positions."),
    "ee_pose_topic": ("ee_pose", "geometry_msgs/PoseStamped of the end effector in the base frame."),
    "gripper_joint": ("gripper", "Joint whose position is the gripper state."),
    "ik": ("gantry", "How end-effector targets become controller targets: 'cartesian' (the controller takes x y z "
                     "roll pitch yaw gripper: a Cartesian controller, or the simulated Panda), 'gantry' (the same "
                     "for the procedural gantry's joints), 'servo' (a stamped pose stream on servo_topic for MoveIt "
                     "Servo), 'urdf' (joint targets from the arm's URDF by IK), or 'none' (~/ee_targets only)."),
    "base_frame": ("base_link", "Frame of published clouds, poses and markers."),
    "ee_frame": ("ee_link", "TF frame of the end effector (wrist cameras' hand-eye is looked up relative to it)."),
    "extrinsics": ("config", "Camera extrinsics: 'config' (cameras.<name>.extrinsic) or 'tf' (static cameras: "
                             "base_frame <- frame_id; wrist cameras: ee_frame <- frame_id, from /tf and /tf_static)."),
    "servo_topic": ("servo_node/pose_target_cmds", "ik=servo: geometry_msgs/PoseStamped target stream (MoveIt "
                                                   "Servo's pose command topic), published at control_rate."),
    "urdf_file": ("", "ik=urdf: URDF file of the arm; empty = the robot_description topic (std_msgs/String, "
                      "transient local)."),
    "robot_description_topic": ("robot_description", "ik=urdf with no urdf_file: the URDF topic (std_msgs/String, "
                                                     "transient local, as robot_state_publisher)."),
    "ik_tip_frame": ("", "ik=urdf: URDF link that the end-effector pose refers to (empty = ee_frame)."),
    "ik_tip_offset": ([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], "ik=urdf: ik_tip_frame -> the controlled point, "
                                                           "[x y z qw qx qy qz]."),
    "ik_base_pose": ([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], "ik=urdf: base_frame -> the URDF root, [x y z qw qx qy qz]."),
    "ik_gripper_open": (0.04, "ik=urdf: gripper_joint position for the model's 'open' command (-1)."),
    "ik_gripper_closed": (0.0, "ik=urdf: gripper_joint position for the model's 'closed' command (+1)."),
    "controller_topic": ("arm_controller/joint_trajectory", "joint_trajectory_controller input topic."),
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
# numeric ranges advertised in the ParameterDescriptors (inclusive); validate() checks them too
PARAM_RANGES = {
    "seed": (0, 2**31 - 1), "inference_threads": (0, 1024), "action_steps": (1, 1000), "video_steps": (1, 1000),
    "imagine_every": (1, 1000), "imagination_nice": (0, 19),
    "execute_steps": (1, 10000), "overlap_steps": (0, 1000), "control_rate": (0.1, 1000.0),
    "sync_slop": (1e-4, 1.0), "sync_queue_size": (1, 100), "min_valid_depth": (0.0, 1.0), "lead_time": (0.0, 5.0),
    "max_observation_age": (1e-3, 60.0), "max_inference_time": (1e-4, 600.0), "cloud_stride": (1, 64),
    "cloud_voxel": (0.0, 1.0), "sync_timeout": (0.1, 600.0), "diagnostics_window": (0.5, 3600.0),
}
# changeable on a running node (validated first; applied to the next chunk)
RUNTIME_PARAMS = {"enabled", "instruction", "imagine", "imagine_every", "imagine_always", "position_min",
                  "position_max", "max_velocity", "max_step", "max_observation_age", "max_inference_time",
                  "lead_time", "publish_observed_cloud", "cloud_stride", "cloud_voxel"}
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


def _param_type(default):
    return list if isinstance(default, list) else type(default)


# one typed field per declared parameter, plus the parsed cameras and safety limits
NodeConfig = make_dataclass(
    "NodeConfig",
    [(name, _param_type(d), field(default_factory=lambda d=d: list(d)) if isinstance(d, list) else field(default=d))
     for name, (d, _) in NODE_PARAMS.items()]
    + [("cameras", list, field(default_factory=list)), ("limits", SafetyLimits | None, field(default=None))],
    namespace={"__doc__": "The policy node's validated parameters (one field per NODE_PARAMS entry).",
               "__module__": __name__,  # picklable: the policy process (policy_process.py) gets its copy this way
               "values": property(lambda self: {f.name: getattr(self, f.name) for f in fields(self)
                                                if f.name in NODE_PARAMS}),
               "replace": lambda self, **kw: validate({**self.values, **kw}, self.cameras)})


class ParameterError(ValueError):
    """A node parameter is invalid; the message names it."""


def _check(cond, name, why):
    if not cond:
        raise ParameterError(f"parameter '{name}': {why}")


def validate(values: dict, cameras: list) -> NodeConfig:
    v = values
    for name, (lo, hi) in PARAM_RANGES.items():
        _check(lo <= v[name] <= hi, name, f"must be in [{lo}, {hi}], got {v[name]}")
    _check(v["execution_mode"] in ("chunk", "streaming"), "execution_mode", f"must be chunk|streaming, got "
                                                                           f"{v['execution_mode']!r}")
    _check(v["state_source"] in ("ee_pose", "joints"), "state_source", "must be ee_pose|joints")
    _check(v["ik"] in ("cartesian", "gantry", "servo", "urdf", "none"), "ik",
           f"must be cartesian|gantry|servo|urdf|none, got {v['ik']!r}")
    _check(v["extrinsics"] in ("config", "tf"), "extrinsics", f"must be config|tf, got {v['extrinsics']!r}")
    _check(bool(v["ee_frame"]) and bool(v["base_frame"]), "ee_frame", "ee_frame and base_frame must not be empty")
    if v["ik"] == "servo":
        _check(bool(v["servo_topic"]), "servo_topic", "must not be empty with ik=servo")
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
    _check(v["executor"] in ("events", "multi_threaded"), "executor",
           f"must be events|multi_threaded, got {v['executor']!r}")
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
    return NodeConfig(**{k: v[k] for k in NODE_PARAMS}, cameras=cameras, limits=limits)


def camera_config(name: str, p: dict) -> CameraConfig:
    """One camera from its parameter values (missing keys take the RealSense-style defaults)."""
    defaults = {**realsense_topics(name), "kind": "static", "extrinsic": [float(x) for x in np.eye(4).ravel()]}
    p = {**defaults, **{k: v for k, v in p.items() if v is not None}}
    ext = np.asarray(p["extrinsic"], np.float64)
    _check(ext.size == 16, f"cameras.{name}.extrinsic", f"has {ext.size} numbers, expected 16")
    return CameraConfig(name, p["color_topic"], p["depth_topic"], p["info_topic"], p["frame_id"], p["kind"],
                        ext.reshape(4, 4))
