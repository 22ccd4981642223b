"""robot/image_cdr.py against two independent serialisers: rclpy's (what the node receives from Fast DDS) and
rosbags' (also big-endian CDR); the pixels are a view of the bytes; broken bytes fail naming the field."""
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from xwam_ros.data.bag_reader import make_typestore
from xwam_ros.robot.convert import depth_to_image_msg, depth_to_metres, image_to_rgb, rgb_to_image_msg
from xwam_ros.robot.image_cdr import CdrError, image_from_cdr


def _fields(m):
    return (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id, m.height, m.width, m.encoding,
            m.is_bigendian, m.step, bytes(memoryview(m.data)))


@pytest.mark.parametrize("frame_id", ["", "c", "cam", "camera_color_optical_frame"])  # every string alignment
@pytest.mark.parametrize("kind", ["rgb8", "16UC1", "32FC1"])
def test_equals_rclpy_deserialisation(frame_id, kind):
    rng = np.random.default_rng(0)
    header = Header(stamp=Time(sec=-3 if frame_id == "c" else 1712345678, nanosec=999_999_999), frame_id=frame_id)
    if kind == "rgb8":
        msg = rgb_to_image_msg(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), header, Image)
    else:
        msg = depth_to_image_msg(rng.uniform(0.1, 3.0, (5, 7)), header, Image, kind)
    raw = serialize_message(msg)
    got = image_from_cdr(raw)
    assert _fields(got) == _fields(msg)
    assert got.data.base is not None and not got.data.flags.writeable  # a view of the received bytes
    if kind == "rgb8":
        np.testing.assert_array_equal(image_to_rgb(got), image_to_rgb(msg))
    else:
        np.testing.assert_array_equal(depth_to_metres(got), depth_to_metres(msg))


@pytest.mark.parametrize("little_endian", [True, False])
def test_equals_rosbags_in_both_byte_orders(little_endian):
    ts = make_typestore()
    Img, Hdr, T = (ts.types[n] for n in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                         "builtin_interfaces/msg/Time"))
    data = np.arange(2 * 3 * 2, dtype=np.uint8)
    msg = Img(header=Hdr(stamp=T(sec=7, nanosec=8), frame_id="wrist"), height=2, width=3, encoding="mono16",
              is_bigendian=1, step=6, data=data)
    raw = bytes(ts.serialize_cdr(msg, "sensor_msgs/msg/Image", little_endian=little_endian))
    got = image_from_cdr(raw)
    assert (got.header.stamp.sec, got.header.stamp.nanosec, got.header.frame_id) == (7, 8, "wrist")
    assert (got.height, got.width, got.encoding, got.is_bigendian, got.step) == (2, 3, "mono16", 1, 6)
    np.testing.assert_array_equal(got.data, data)


def test_broken_bytes_fail_naming_the_field():
    raw = serialize_message(rgb_to_image_msg(np.zeros((4, 4, 3), np.uint8), Header(frame_id="cam"), Image))
    with pytest.raises(CdrError, match="truncated at data"):
        image_from_cdr(raw[:-5])
    with pytest.raises(CdrError, match="truncated at header.frame_id"):
        image_from_cdr(raw[:14])
    with pytest.raises(CdrError, match="shorter than the encapsulation"):
        image_from_cdr(raw[:2])
    with pytest.raises(CdrError, match="unsupported encapsulation"):
        image_from_cdr(b"\x00\x07" + raw[2:])  # XCDR2 or garbage
    bad = bytearray(raw)
    bad[19] = ord("x")  # frame_id's NUL (length 4 at body offset 8 = raw[12:16], chars "cam\0" at raw[16:20])
    with pytest.raises(CdrError, match="frame_id is not a NUL-terminated"):
        image_from_cdr(bytes(bad))
