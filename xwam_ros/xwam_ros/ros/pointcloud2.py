"""PointCloud2 (x, y, z, rgb) packing and reading without sensor_msgs_py (not installable here).

Layout: x, y, z FLOAT32 at offsets 0/4/8 and rgb at 12 as a FLOAT32 whose bits are the packed uint32
(r << 16) | (g << 8) | b -- what RViz's RGB8 transformer and PCL consumers read. 16 bytes per point, unorganised.
"""
from __future__ import annotations

import numpy as np

FLOAT32 = 7
_DTYPE = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
_NP = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    c = np.asarray(colors, np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def make_xyzrgb_cloud(points: np.ndarray, colors: np.ndarray, header, msg_cls, field_cls):
    points = np.asarray(points, np.float32).reshape(-1, 3)
    colors = np.asarray(colors, np.uint8).reshape(-1, 3)
    if len(points) != len(colors):
        raise ValueError(f"{len(points)} points but {len(colors)} colours")
    keep = np.isfinite(points).all(axis=1)
    arr = np.empty(int(keep.sum()), _DTYPE)
    arr["x"], arr["y"], arr["z"] = points[keep].T
    arr["rgb"] = pack_rgb(colors[keep])
    msg = msg_cls()
    msg.header = header
    msg.height, msg.width = 1, len(arr)
    msg.fields = [field_cls(name=n, offset=o, datatype=FLOAT32, count=1) for n, o in
                  (("x", 0), ("y", 4), ("z", 8), ("rgb", 12))]
    msg.is_bigendian = False
    msg.point_step, msg.row_step = 16, 16 * len(arr)
    msg.is_dense = True
    msg.data = arr.tobytes()
    return msg


def read_xyzrgb(msg) -> tuple[np.ndarray, np.ndarray]:
    """Any PointCloud2 with x, y, z (+ rgb/rgba) fields -> (points [N, 3] float32, colours [N, 3] uint8)."""
    fields = {f.name: f for f in msg.fields}
    for name in ("x", "y", "z"):
        if name not in fields:
            raise ValueError(f"PointCloud2 has no {name!r} field (fields: {sorted(fields)})")
    order = ">" if msg.is_bigendian else "<"
    n = int(msg.width) * int(msg.height)
    spec = {"names": [], "formats": [], "offsets": [], "itemsize": int(msg.point_step)}
    for name in ("x", "y", "z", "rgb", "rgba"):
        if name in fields:
            f = fields[name]
            spec["names"].append(name)
            spec["formats"].append(order + _NP[int(f.datatype)])
            spec["offsets"].append(int(f.offset))
    raw = np.frombuffer(bytes(msg.data), np.uint8)
    if raw.size < n * int(msg.point_step):
        raise ValueError(f"PointCloud2 data has {raw.size} bytes, expected {n * int(msg.point_step)}")
    arr = np.frombuffer(raw[: n * int(msg.point_step)].tobytes(), np.dtype(spec), count=n)
    pts = np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float32)
    cname = "rgb" if "rgb" in fields else ("rgba" if "rgba" in fields else None)
    if cname is None:
        return pts, np.zeros((n, 3), np.uint8)
    packed = np.ascontiguousarray(arr[cname]).view(np.uint32)
    cols = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    return pts, cols
