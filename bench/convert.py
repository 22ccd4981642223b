"""Cost of turning one camera's 640x480 colour (rgb8 / bgr8) + aligned 16UC1 depth into model-size arrays
(robot.observation.convert_camera: buffer views, one resize, channel order, millimetres -> metres, validity check),
for rclpy messages (array.array buffers) and rosbags messages (uint8 ndarrays), at the presets' sizes.

    python bench/convert.py [--src DIR --label name]   -> table, merges into bench/results/convert.json

``--src`` times the xwam_ros package under DIR (how the "before" rows were made: ``--src /work/main/xwam_ros``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, table  # noqa: E402

SIZES = {"tiny 64x64": (64, 64), "mid 128x160": (128, 160), "xwam-5b 256x320": (256, 320)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", default=str(ROOT / "xwam_ros"))
    ap.add_argument("--label", default="ours")
    ap.add_argument("--reps", type=int, default=200)
    a = ap.parse_args()
    sys.path.insert(0, a.src)
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from xwam_ros.robot.convert import depth_to_image_msg, rgb_to_image_msg
    from xwam_ros.robot.observation import convert_camera

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    depth = rng.uniform(0.3, 3.0, (480, 640)).astype(np.float32)
    color_msg = rgb_to_image_msg(rgb, Header(), Image)
    depth_msg = depth_to_image_msg(depth, Header(), Image, "16UC1")
    info = CameraInfo(height=480, width=640, k=[500.0, 0, 320, 0, 500, 240, 0, 0, 1])

    def as_bag(m):  # rosbags' dataclasses carry the data as a uint8 ndarray
        return SimpleNamespace(header=m.header, height=m.height, width=m.width, step=m.step, encoding=m.encoding,
                               is_bigendian=m.is_bigendian, data=np.frombuffer(bytes(m.data), np.uint8).copy())

    bgr_msg = rgb_to_image_msg(rgb[..., ::-1], Header(), Image)
    bgr_msg.encoding = "bgr8"
    variants = {"rclpy rgb8": (color_msg, depth_msg), "rclpy bgr8": (bgr_msg, depth_msg),
                "rosbags rgb8": (as_bag(color_msg), as_bag(depth_msg))}
    rows = []
    for size_name, hw in SIZES.items():
        for vname, (cm, dm) in variants.items():
            times = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                convert_camera("cam", cm, dm, info, hw, 0.1)
                times.append(time.perf_counter() - t0)
            rows.append({"impl": a.label, "size": size_name, "messages": vname,
                         "ms_median": round(statistics.median(times) * 1e3, 3),
                         "ms_min": round(min(times) * 1e3, 3),
                         "ms_3_cameras_median": round(3 * statistics.median(times) * 1e3, 2)})
            print(table(rows[-1:], list(rows[-1])), flush=True)
    print("\n" + table(rows, list(rows[0])))
    out = RESULTS / "convert.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    merged = [r for r in old.get("results", []) if r["impl"] != a.label] + rows
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "machines": {**old.get("machines", {}), a.label: machine()},
                               "results": merged, "reps": a.reps}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
