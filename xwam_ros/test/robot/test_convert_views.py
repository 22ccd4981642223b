"""Images reach the model without Python-level per-pixel work: views of the message buffer, one resize, and every
colour encoding equal to a plain channel reorder of the same pixels."""
from types import SimpleNamespace

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from xwam_ros.geometry.image import resize_colour
from xwam_ros.robot.convert import depth_to_image_msg, depth_to_metres, image_to_rgb, rgb_to_image_msg

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
ALPHA = RNG.integers(0, 256, (48, 64, 1), dtype=np.uint8)


def _msg(encoding, px):
    h, w = px.shape[:2]
    c = 1 if px.ndim == 2 else px.shape[2]
    m = Image(height=h, width=w, encoding=encoding, step=w * c)
    m.data = np.ascontiguousarray(px).tobytes()
    return m


@pytest.mark.parametrize("encoding,raw,expected", [
    ("rgb8", RGB, RGB),
    ("bgr8", RGB[..., ::-1], RGB),
    ("rgba8", np.concatenate([RGB, ALPHA], 2), RGB),
    ("bgra8", np.concatenate([RGB[..., ::-1], ALPHA], 2), RGB),
    ("mono8", RGB[..., 0], np.repeat(RGB[..., :1], 3, axis=2)),
])
def test_encodings_at_native_and_model_size(encoding, raw, expected):
    msg = _msg(encoding, raw)
    assert np.array_equal(image_to_rgb(msg), expected)
    # resizing the raw buffer first equals resizing the RGB image (area resize works per channel)
    want = resize_colour(np.ascontiguousarray(expected), (12, 16))
    got = image_to_rgb(msg, out_hw=(12, 16))
    assert got.shape == (12, 16, 3) and got.dtype == np.uint8 and np.array_equal(got, want)


def test_rgb8_at_native_size_is_a_view_of_the_message_buffer():
    msg = rgb_to_image_msg(RGB, Header(), Image)
    out = image_to_rgb(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))  # rclpy's array.array, no copy
    bag_msg = SimpleNamespace(height=48, width=64, step=192, encoding="rgb8", is_bigendian=0,
                              data=np.frombuffer(RGB.tobytes(), np.uint8).copy())  # rosbags: a uint8 ndarray
    out = image_to_rgb(bag_msg)
    assert np.shares_memory(out, bag_msg.data) and np.array_equal(out, RGB)


def test_depth_from_bag_ndarray_matches_rclpy_message():
    d = RNG.uniform(0.2, 4.0, (48, 64)).astype(np.float32)
    d[::7, ::5] = np.nan
    msg = depth_to_image_msg(d, Header(), Image, "16UC1")
    bag_msg = SimpleNamespace(height=48, width=64, step=128, encoding="16UC1", is_bigendian=0,
                              data=np.frombuffer(bytes(msg.data), np.uint8).copy())
    a, b = depth_to_metres(msg, out_hw=(24, 32)), depth_to_metres(bag_msg, out_hw=(24, 32))
    assert np.array_equal(a, b, equal_nan=True)
    mm = np.where(np.isfinite(d), np.round(d * 1000), 0).astype(np.uint16)[::2, ::2]  # nearest at exact 2x
    want = mm.astype(np.float32) * np.float32(0.001)
    want[mm == 0] = np.nan
    assert np.array_equal(a, want, equal_nan=True)
