"""Camera extrinsics in the base frame: static cameras are calibrated; a wrist camera is the end-effector pose (measured
or predicted) times its hand-eye transform. One home for the live node, the offline evaluator and the converters."""
from __future__ import annotations

import numpy as np

from ..geometry.camera import ee_pose_to_matrix
from ..model.layout import StateLayout


def camera_extrinsics(cameras, ee_state_row, calibration: dict | None = None) -> list:
    """T_base_cam [4, 4] per camera (None for a wrist camera when no end-effector pose is known).

    ``calibration`` (camera name -> T_base_cam for static cameras, hand-eye T_ee_cam for wrist cameras) replaces the
    configured ``extrinsic``: the live node passes what it looked up in TF (``extrinsics: tf``). ``ee_state_row`` is
    a state of whole arms (StateLayout, measured or predicted, possibly the model's padded one); wrist cameras ride on
    arm 0, the arm of a one-arm robot."""
    out = []
    for c in cameras:
        T = calibration[c.name] if calibration is not None else c.extrinsic
        if c.kind == "static":
            out.append(T)
        elif ee_state_row is None:
            out.append(None)
        else:
            layout = StateLayout.from_state_dim(len(ee_state_row), "the EE state size (wrist camera extrinsics)")
            out.append(ee_pose_to_matrix(layout.position(ee_state_row), layout.quaternion(ee_state_row)) @ T)
    return out
