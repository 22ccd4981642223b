import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField
from sensor_msgs_py import point_cloud2
from std_msgs.msg import Header

from xwam_ros.ros.pointcloud2 import make_xyzrgb_cloud, pack_rgb, read_xyzrgb, unpack_rgb


def test_layout_and_round_trip_drops_nonfinite():
    pts = np.array([[1, 2, 3], [np.nan, 0, 0], [-1, 0.5, 2], [0, np.inf, 1], [0, 0, -np.inf]], np.float32)
    cols = np.array([[255, 0, 0], [1, 2, 3], [10, 20, 30], [4, 5, 6], [7, 8, 9]], np.uint8)
    msg = make_xyzrgb_cloud(pts, cols, Header(frame_id="base"))
    assert msg.header.frame_id == "base"
    assert msg.point_step == 16 and msg.row_step == 32 and msg.width == 2 and msg.height == 1 and msg.is_dense
    assert not msg.is_bigendian
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [("x", 0, 7), ("y", 4, 7), ("z", 8, 7),
                                                                   ("rgb", 12, 7)]
    raw = np.frombuffer(bytes(msg.data), np.uint32).reshape(2, 4)
    assert raw[0, 3] == (255 << 16) and raw[1, 3] == (10 << 16) | (20 << 8) | 30  # packed (r<<16)|(g<<8)|b
    p, c = read_xyzrgb(msg)
    assert np.array_equal(p, pts[[0, 2]]) and np.array_equal(c, cols[[0, 2]])


def test_every_colour_and_float_survives_serialisation():
    # what a subscriber gets: every 24-bit colour value class and extreme floats, through rclpy's serialiser
    rng = np.random.default_rng(0)
    n = 5000
    pts = (rng.standard_normal((n, 3)) * np.array([1e-30, 1.0, 1e30])).astype(np.float32)
    cols = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    cols[:4] = [[0, 0, 0], [255, 255, 255], [128, 0, 255], [0, 255, 1]]
    msg = deserialize_message(serialize_message(make_xyzrgb_cloud(pts, cols, Header())), PointCloud2)
    p, c = read_xyzrgb(msg)
    assert np.array_equal(p, pts) and np.array_equal(c, cols)
    # and a consumer using sensor_msgs_py directly reads the same fields
    arr = point_cloud2.read_points(msg, field_names=["x", "y", "z", "rgb"])
    assert np.array_equal(arr["z"], pts[:, 2]) and np.array_equal(arr["rgb"].view(np.uint32), pack_rgb(cols))


def test_pack_unpack_inverse():
    cols = np.array([[1, 2, 3], [255, 254, 253]], np.uint8)
    assert pack_rgb(cols).tolist() == [0x010203, 0xFFFEFD]
    assert np.array_equal(unpack_rgb(pack_rgb(cols)), cols)


def test_reads_pcl_padded_layout():
    n = 3
    buf = np.zeros((n, 8), np.float32)
    buf[:, :3] = np.arange(9).reshape(3, 3)
    buf[:, 4] = np.array([(1 << 16) | (2 << 8) | 3] * n, np.uint32).view(np.float32)
    fields = [PointField(name=k, offset=o, datatype=7, count=1) for k, o in (("x", 0), ("y", 4), ("z", 8), ("rgb", 16))]
    msg = PointCloud2(height=1, width=n, fields=fields, point_step=32, row_step=32 * n, is_dense=True)
    msg.data = buf.tobytes()
    p, c = read_xyzrgb(msg)
    assert np.array_equal(p, buf[:, :3]) and np.all(c == [1, 2, 3])


def test_reads_uint32_rgba_and_colourless_organised_clouds():
    # a depth camera driver's organised 2 x 2 cloud with a UINT32 rgba field, then the same without colour
    rec = np.zeros(4, np.dtype({"names": ["x", "y", "z", "rgba"], "formats": ["<f4", "<f4", "<f4", "<u4"],
                                "offsets": [0, 4, 8, 12], "itemsize": 16}))
    rec["x"], rec["rgba"] = [1, 2, 3, 4], 0xFF0A141E  # alpha in the top byte is ignored
    fields = [PointField(name=k, offset=o, datatype=d, count=1)
              for k, o, d in (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgba", 12, 6))]
    msg = PointCloud2(height=2, width=2, fields=fields, point_step=16, row_step=32, is_dense=True)
    msg.data = rec.tobytes()
    p, c = read_xyzrgb(msg)
    assert p[:, 0].tolist() == [1, 2, 3, 4] and np.all(c == [10, 20, 30])
    msg.fields = fields[:3]
    p, c = read_xyzrgb(msg)
    assert p.shape == (4, 3) and not c.any()


def test_bad_clouds_name_the_problem():
    msg = PointCloud2(fields=[PointField(name="x", offset=0, datatype=7, count=1)])
    with pytest.raises(ValueError, match="'y'"):
        read_xyzrgb(msg)
    good = make_xyzrgb_cloud(np.ones((3, 3)), np.ones((3, 3)), Header())
    good.data = bytes(good.data)[:20]
    with pytest.raises(ValueError, match="20 bytes, expected 48"):
        read_xyzrgb(good)
    good = make_xyzrgb_cloud(np.ones((3, 3)), np.ones((3, 3)), Header())
    good.fields[3].datatype = PointField.FLOAT64
    with pytest.raises(ValueError, match="4-byte packed colour"):
        read_xyzrgb(good)
    with pytest.raises(ValueError, match="3 points but 2 colours"):
        make_xyzrgb_cloud(np.ones((3, 3)), np.ones((2, 3)), Header())


def test_editing_one_clouds_fields_leaves_later_clouds_intact():
    # a subscriber (or test) that edits a cloud's fields in place must not change the next published cloud: shared
    # PointField objects made every later make_xyzrgb_cloud fail in the policy node of the same process
    first = make_xyzrgb_cloud(np.ones((2, 3)), np.ones((2, 3)), Header())
    first.fields[3].datatype = PointField.FLOAT64
    first.fields[0].name = "q"
    later = make_xyzrgb_cloud(np.ones((2, 3)), np.full((2, 3), 7), Header())
    assert [(f.name, f.datatype) for f in later.fields] == [("x", 7), ("y", 7), ("z", 7), ("rgb", 7)]
    assert np.array_equal(read_xyzrgb(later)[1], np.full((2, 3), 7))
