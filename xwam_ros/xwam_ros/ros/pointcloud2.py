"""XYZRGB PointCloud2 packing and reading through ``sensor_msgs_py.point_cloud2`` (structured numpy arrays).

Layout we publish: x, y, z FLOAT32 at offsets 0/4/8 and rgb at 12 as a FLOAT32 whose bits are the packed uint32
(r << 16) | (g << 8) | b -- what RViz's RGB8 transformer and PCL consumers read. 16 bytes per point, unorganised,
non-finite points dropped (so ``is_dense``). Reading accepts any layout with x, y, z (+ rgb or rgba) fields, e.g. PCL's
padded 32-byte points. bench/pointcloud.py times both directions at 3 x 640 x 480 points against the hand-written
packer this replaced (numbers in docs/ros.md).
"""
from __future__ import annotations

import numpy as np
from sensor_msgs.msg import PointField
from sensor_msgs_py import point_cloud2

_XYZRGB_LAYOUT = (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))


def xyzrgb_fields() -> list:
    """Fresh PointField objects of our layout. Every message gets its own: create_cloud stores the list's objects
    in the message, so shared ones would let anyone editing one message's fields corrupt every later cloud."""
    return [PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1) for n, o in _XYZRGB_LAYOUT]


_XYZRGB_DTYPE = point_cloud2.dtype_from_fields(xyzrgb_fields())
_PACKED_COLOUR_TYPES = (PointField.INT32, PointField.UINT32, PointField.FLOAT32)  # 4 bytes holding 0x00RRGGBB


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """[N, 3] uint8 -> [N] uint32 (r << 16) | (g << 8) | b."""
    c = np.asarray(colors, np.uint8)
    out = c[:, 0].astype(np.uint32)  # in place from here: three full-size temporaries cost more than the packing
    out <<= 8
    out |= c[:, 1]
    out <<= 8
    out |= c[:, 2]
    return out


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """[N] uint32 (r << 16) | (g << 8) | b -> [N, 3] uint8."""
    rgba = np.ascontiguousarray(packed, np.dtype("<u4")).view(np.uint8).reshape(-1, 4)  # little endian: b, g, r, 0
    return rgba[:, 2::-1].copy()


def finite_rows(points: np.ndarray) -> np.ndarray:
    """Indices of the [N, 3] rows with three finite coordinates (column by column: numpy's row-wise .all(axis=1)
    over three values is ~20x slower at 1M points)."""
    keep = np.isfinite(points[:, 0])
    keep &= np.isfinite(points[:, 1])
    keep &= np.isfinite(points[:, 2])
    return np.flatnonzero(keep)


def make_xyzrgb_cloud(points: np.ndarray, colors: np.ndarray, header, msg_cls=None, field_cls=None):
    """[N, 3] points + [N, 3] uint8 colours -> sensor_msgs/PointCloud2 (non-finite points dropped).

    ``msg_cls`` / ``field_cls`` are ignored: sensor_msgs_py builds the message; they remain only so that callers
    written before it (``make_xyzrgb_cloud(p, c, header, PointCloud2, PointField)``) keep working.
    """
    points = np.asarray(points, np.float32).reshape(-1, 3)
    colors = np.asarray(colors, np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    idx = finite_rows(points)
    if len(idx) < len(points):  # np.take with indices: boolean row masks are ~10x slower here
        points, colors = np.take(points, idx, axis=0), np.take(colors, idx, axis=0)
    # one float32 [N, 4] block viewed as the x, y, z, rgb record (same bytes as _XYZRGB_DTYPE)
    block = np.empty((len(points), 4), np.float32)
    block[:, :3] = points
    block[:, 3] = pack_rgb(colors).view(np.float32)  # same-dtype copy: the colour bits pass unchanged
    msg = point_cloud2.create_cloud(header, xyzrgb_fields(), block.view(_XYZRGB_DTYPE).reshape(-1))
    msg.is_dense = True
    return msg


def read_xyzrgb(msg) -> tuple[np.ndarray, np.ndarray]:
    """Any PointCloud2 with x, y, z (+ rgb/rgba) fields -> (points [N, 3] float32, colours [N, 3] uint8)."""
    fields = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z"):
        if name not in fields:
            raise ValueError(f"PointCloud2 has no {name!r} field (fields: {sorted(fields)})")
    n = int(msg.width) * int(msg.height)
    if len(msg.data) < n * int(msg.point_step):
        raise ValueError(f"PointCloud2 data has {len(msg.data)} bytes, expected {n * int(msg.point_step)} "
                         f"({msg.width} x {msg.height} points of {msg.point_step} bytes)")
    cname = "rgb" if "rgb" in fields else ("rgba" if "rgba" in fields else None)
    if cname is not None and fields[cname].datatype not in _PACKED_COLOUR_TYPES:
        raise ValueError(f"PointCloud2 field {cname!r} must be a 4-byte packed colour "
                         f"(datatype {fields[cname].datatype})")
    names = ["x", "y", "z"] + ([cname] if cname else [])
    arr = point_cloud2.read_points(msg, field_names=names)  # a view of msg.data, no copy yet
    pts = np.empty((len(arr), 3), np.float32)
    for i, name in enumerate("xyz"):
        pts[:, i] = arr[name]
    if cname is None:
        return pts, np.zeros((len(arr), 3), np.uint8)
    return pts, unpack_rgb(np.ascontiguousarray(arr[cname]).view(np.uint32))
