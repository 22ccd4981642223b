import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from xwam_ros.robot.convert import (ImageConversionError, camera_info_to_K, depth_to_image_msg, depth_to_metres,
                                  image_to_rgb, rgb_to_image_msg)


def _rgb(h=4, w=5):
    return np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3)


def test_rgb_round_trip_and_bgr_and_padding():
    rgb = _rgb()
    msg = rgb_to_image_msg(rgb, Header(), Image)
    assert np.array_equal(image_to_rgb(msg), rgb)
    bgr = Image(height=4, width=5, encoding="bgr8", step=5 * 3 + 2)  # padded rows
    padded = np.zeros((4, 17), np.uint8)
    padded[:, :15] = rgb[..., ::-1].reshape(4, 15)
    bgr.data = padded.tobytes()
    assert np.array_equal(image_to_rgb(bgr), rgb)


def test_depth_encodings():
    d = np.array([[0.5, np.nan], [1.234, 0.0]], np.float32)
    m16 = depth_to_image_msg(d, Header(), Image, "16UC1")
    out16 = depth_to_metres(m16)
    assert np.isclose(out16[0, 0], 0.5) and np.isclose(out16[1, 0], 1.234) and np.isnan(out16[0, 1]) and np.isnan(out16[1, 1])
    out32 = depth_to_metres(depth_to_image_msg(d, Header(), Image, "32FC1"))
    assert np.isclose(out32[1, 0], 1.234) and np.isnan(out32[1, 1]) and np.isnan(out32[0, 1])


@pytest.mark.parametrize("mutate,match", [
    (lambda m: setattr(m, "encoding", "yuv422"), "unsupported colour encoding"),
    (lambda m: setattr(m, "height", 5), "expected height\\*step"),
    (lambda m: setattr(m, "width", 0), "empty image"),
])
def test_bad_colour_images(mutate, match):
    msg = rgb_to_image_msg(_rgb(), Header(), Image)
    mutate(msg)
    with pytest.raises(ImageConversionError, match=match):
        image_to_rgb(msg, "/cam/color/image_raw")


def test_bad_depth_and_camera_info():
    msg = depth_to_image_msg(np.ones((2, 2)), Header(), Image)
    msg.encoding = "rgb8"
    with pytest.raises(ImageConversionError, match="depth encoding"):
        depth_to_metres(msg)
    with pytest.raises(ImageConversionError, match="no camera_info"):
        camera_info_to_K(None)
    with pytest.raises(ImageConversionError, match="invalid intrinsics"):
        camera_info_to_K(CameraInfo())
    ci = CameraInfo()
    ci.k = [100.0, 0, 50, 0, 100.0, 40, 0, 0, 1]
    assert camera_info_to_K(ci)[0, 2] == 50


