"""Cost of packing and reading the XYZRGB PointCloud2 the policy node publishes: 3 views x 640 x 480 pixels, 22%
without depth, i.e. ~717k points (11.5 MB). Times ``make_xyzrgb_cloud`` (array -> message) and ``read_xyzrgb``
(message -> arrays) of xwam_ros.ros.pointcloud2 (sensor_msgs_py.point_cloud2 inside), median of --reps runs, and
checks the round trip.

    python bench/pointcloud.py [--impl path/to/pointcloud2.py --label name]  -> table, merges into
    bench/results/pointcloud.json

``--impl`` times another module with the same two functions under ``--label`` (how the "before" row was made:
``git show 1e6e7a7:xwam_ros/xwam_ros/ros/pointcloud2.py > /tmp/old_pc2.py``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "xwam_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, table  # noqa: E402


def cloud(views=3, h=480, w=640, missing=0.22, seed=0):
    rng = np.random.default_rng(seed)
    n = views * h * w
    pts = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    pts[rng.random(n) < missing] = np.nan  # pixels without depth, as unprojection leaves them
    return pts, rng.integers(0, 256, (n, 3), dtype=np.uint8)


def timed(fn, reps):
    out, times = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl")
    ap.add_argument("--label")
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    if a.impl:
        spec = importlib.util.spec_from_file_location("pc2_impl", a.impl)
        module = importlib.util.module_from_spec(spec)
        sys.modules["pc2_impl"] = module
        spec.loader.exec_module(module)
        label = a.label or Path(a.impl).stem
    else:
        from xwam_ros.ros import pointcloud2 as module
        label = a.label or "sensor_msgs_py"
    from sensor_msgs.msg import PointCloud2, PointField
    from std_msgs.msg import Header

    pts, cols = cloud()
    header = Header(frame_id="base_link")
    msg, t_make = timed(lambda: module.make_xyzrgb_cloud(pts, cols, header, PointCloud2, PointField), a.reps)
    (p, c), t_read = timed(lambda: module.read_xyzrgb(msg), a.reps)
    keep = np.isfinite(pts).all(axis=1)
    assert np.array_equal(p, pts[keep]) and np.array_equal(c, cols[keep]), "round trip changed the cloud"
    rows = [{"impl": label, "points_in": len(pts), "points_out": int(msg.width), "bytes": len(msg.data),
             "make_ms_median": round(statistics.median(t_make) * 1e3, 2), "make_ms_min": round(min(t_make) * 1e3, 2),
             "read_ms_median": round(statistics.median(t_read) * 1e3, 2), "read_ms_min": round(min(t_read) * 1e3, 2)}]
    print(table(rows, list(rows[0])))
    out = RESULTS / "pointcloud.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    merged = [r for r in old.get("results", []) if r["impl"] != label] + rows
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "machines": {**old.get("machines", {}), label: machine()},
                               "results": merged, "reps": a.reps}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
