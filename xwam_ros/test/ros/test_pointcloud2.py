import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from xwam_ros.ros.pointcloud2 import make_xyzrgb_cloud, read_xyzrgb


def test_layout_and_round_trip_drops_nonfinite():
    pts = np.array([[1, 2, 3], [np.nan, 0, 0], [-1, 0.5, 2]], np.float32)
    cols = np.array([[255, 0, 0], [1, 2, 3], [10, 20, 30]], np.uint8)
    msg = make_xyzrgb_cloud(pts, cols, Header(frame_id="base"), PointCloud2, PointField)
    assert msg.point_step == 16 and msg.width == 2 and msg.height == 1 and msg.is_dense
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7)]
    raw = np.frombuffer(bytes(msg.data), np.uint32).reshape(2, 4)
    assert raw[0, 3] == (255 << 16)  # packed (r<<16)|(g<<8)|b
    p, c = read_xyzrgb(msg)
    assert np.array_equal(p, pts[[0, 2]]) and np.array_equal(c, cols[[0, 2]])


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


def test_missing_field():
    msg = PointCloud2(fields=[PointField(name="x", offset=0, datatype=7, count=1)])
    with pytest.raises(ValueError, match="'y'"):
        read_xyzrgb(msg)
