"""ROS image <-> numpy conversion without cv_bridge (not installable here).

Works on any object with the sensor_msgs Image / CameraInfo fields, so rclpy messages and rosbags' dataclasses are
handled by the same code (live node and offline bag evaluation share it). Depth follows REP 118 / depth_image_proc:
16UC1 is millimetres with 0 = invalid, 32FC1 is metres with NaN/inf = invalid; both become float32 metres with NaN
for invalid pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..geometry.image import resize_colour
from ..geometry.image import resize_rgbd  # noqa: F401  (re-exported: the live and training paths share it)

# encoding -> (channels, OpenCV conversion to RGB or None when already RGB): cvtColor shuffles channels in one pass
_COLOR = {"rgb8": (3, None), "bgr8": (3, cv2.COLOR_BGR2RGB), "rgba8": (4, cv2.COLOR_RGBA2RGB),
          "bgra8": (4, cv2.COLOR_BGRA2RGB), "mono8": (1, cv2.COLOR_GRAY2RGB)}
_DEPTH = {"16UC1": np.dtype("<u2"), "mono16": np.dtype("<u2"), "32FC1": np.dtype("<f4")}


class ImageConversionError(ValueError):
    """An image or camera_info message cannot be converted; the message names what is wrong."""


def _bytes_view(data) -> np.ndarray:
    """The message's byte buffer as a flat uint8 array without copying: rclpy gives array.array('B') (buffer
    protocol), rosbags a uint8 ndarray."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(data, np.uint8)


def _buffer(msg, bytes_per_px: int, what: str) -> np.ndarray:
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageConversionError(f"{what}: empty image ({w}x{h})")
    if step < w * bytes_per_px:
        raise ImageConversionError(f"{what}: step {step} < width*{bytes_per_px} = {w * bytes_per_px}")
    data = _bytes_view(msg.data)
    if data.size != h * step:
        raise ImageConversionError(f"{what}: data has {data.size} bytes, expected height*step = {h * step}")
    return data.reshape(h, step)[:, : w * bytes_per_px]


def _resize(a: np.ndarray, out_hw, interpolation) -> np.ndarray:
    if out_hw is None or a.shape[:2] == tuple(out_hw):
        return a
    return cv2.resize(np.ascontiguousarray(a), (out_hw[1], out_hw[0]), interpolation=interpolation)


def image_to_rgb(msg, what: str = "image", out_hw=None) -> np.ndarray:
    """Colour image message -> uint8 [H, W, 3] RGB, optionally resized (area) to ``out_hw`` first.

    Resizing the raw buffer before reordering channels keeps the per-pixel work at the model's size (a 640x480
    frame costs ~1 ms instead of ~5 ms); the result is identical because area resizing is per channel.
    """
    enc = str(msg.encoding)
    if enc not in _COLOR:
        raise ImageConversionError(f"{what}: unsupported colour encoding {enc!r} (expected one of {sorted(_COLOR)})")
    channels, to_rgb = _COLOR[enc]
    px = _buffer(msg, channels, what).reshape(int(msg.height), int(msg.width), channels)  # a view of msg.data
    px = resize_colour(np.ascontiguousarray(px), tuple(out_hw)) if out_hw is not None else px
    if to_rgb is None:
        return np.ascontiguousarray(px)  # rgb8 at its own size: still the message's buffer, no copy
    return cv2.cvtColor(np.ascontiguousarray(px), to_rgb)


def depth_to_metres(msg, what: str = "depth", out_hw=None) -> np.ndarray:
    """Depth image message -> float32 [H, W] metres, NaN where invalid; optionally nearest-resized first (exact:
    nearest neighbour never blends, so resizing raw millimetres then converting equals converting then resizing)."""
    enc = str(msg.encoding)
    if enc not in _DEPTH:
        raise ImageConversionError(f"{what}: unsupported depth encoding {enc!r} (expected 16UC1 or 32FC1)")
    dt = _DEPTH[enc].newbyteorder(">" if msg.is_bigendian else "<")
    buf = _buffer(msg, dt.itemsize, what)
    raw = np.ascontiguousarray(buf).view(dt).reshape(int(msg.height), int(msg.width))
    if dt.byteorder == ">":
        raw = raw.astype(dt.newbyteorder("<"))
    raw = _resize(raw, out_hw, cv2.INTER_NEAREST)
    if dt.kind == "u":
        out = np.multiply(raw, np.float32(0.001), dtype=np.float32)  # one pass: millimetres -> metres
        out[raw == 0] = np.nan
    else:
        out = raw.astype(np.float32, copy=True)
        out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def camera_info_to_K(msg, what: str = "camera_info") -> np.ndarray:
    if msg is None:
        raise ImageConversionError(f"{what}: no camera_info received")
    k = np.asarray(msg.k, np.float64)
    if k.size != 9:
        raise ImageConversionError(f"{what}: k has {k.size} values, expected 9")
    K = k.reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or K[2, 2] != 1:
        raise ImageConversionError(f"{what}: invalid intrinsics fx={K[0, 0]}, fy={K[1, 1]}, k[8]={K[2, 2]}")
    return K


def _fill(msg, arr: np.ndarray, header, encoding: str, bytes_per_px: int):
    msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1] * bytes_per_px)
    msg.data = np.ascontiguousarray(arr).tobytes()  # bytes: the array setter path is ~1000x slower in rclpy
    return msg


def rgb_to_image_msg(rgb: np.ndarray, header, msg_cls):
    rgb = np.asarray(rgb, np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageConversionError(f"rgb array must be [H, W, 3] uint8, got {rgb.shape}")
    return _fill(msg_cls(), rgb, header, "rgb8", 3)


def depth_to_image_msg(depth_m: np.ndarray, header, msg_cls, encoding: str = "32FC1"):
    d = np.asarray(depth_m, np.float32)
    if encoding == "32FC1":
        return _fill(msg_cls(), d, header, encoding, 4)
    if encoding == "16UC1":
        mm = np.where(np.isfinite(d) & (d > 0), np.round(d * 1000.0), 0)
        return _fill(msg_cls(), np.clip(mm, 0, 65535).astype("<u2"), header, encoding, 2)
    raise ImageConversionError(f"cannot encode depth as {encoding!r}; use 32FC1 or 16UC1")


def camera_info_msg(K: np.ndarray, h: int, w: int, header, CameraInfo):
    """A plumb_bob CameraInfo (no distortion) for intrinsics ``K``; the message class is passed in (no ROS import)."""
    info = CameraInfo(header=header, height=h, width=w, distortion_model="plumb_bob")
    info.k = [float(x) for x in np.asarray(K).ravel()]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [K[0, 0], 0.0, K[0, 2], 0.0, 0.0, K[1, 1], K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
    return info
