"""Camera extrinsics in the base frame: static cameras are calibrated; a wrist camera is the end-effector pose (measured
or predicted) times its hand-eye transform. One home for the live node, the offline evaluator and the converters."""
from __future__ import annotations

import numpy as np

from ..geometry.camera import ee_pose_to_matrix


def camera_extrinsics(cameras, ee_state_row, calibration: dict | None = None) -> list:
    """T_base_cam [4, 4] per camera (None for a wrist camera when no end-effector pose is known).

    ``calibration`` (camera name -> T_base_cam for static cameras, hand-eye T_ee_cam for wrist cameras) replaces the
    configured ``extrinsic``: the live node passes what it looked up in TF (``extrinsics: tf``)."""
    out = []
    for c in cameras:
        T = calibration[c.name] if calibration is not None else c.extrinsic
        if c.kind == "static":
            out.append(T)
        elif ee_state_row is None:
            out.append(None)
        else:
            out.append(ee_pose_to_matrix(ee_state_row[:3], ee_state_row[3:7]) @ T)
    return out
