"""IK through the Panda URDF (``ik: urdf``): accuracy and solve time.

    .venv/bin/python bench/ik.py

* round trip: random joint configurations inside the limits -> FK pose -> IK seeded 0.15 rad (σ) away from the
  answer (the measured joints lag the target by less in practice) -> FK again; worst and 99th-percentile errors;
* chunk: 32-step chunks along smooth random joint paths (the shape of a policy chunk), solved as the node does
  (step 0 from the measured joints, each next step from the one before); time per chunk.
Single thread; no timed assertion anywhere (the numbers go to bench/results/ik.json with the machine).
"""
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from xwam_ros.robot.ik import IKError, UrdfIK, urdf_from_package  # noqa: E402
from xwam_ros.robot.panda import panda_ik_config  # noqa: E402

HOME = np.array([0.0, 0.196, 0.0, -2.618, 0.0, 2.942, 0.785])


def errors(a, b):
    return np.linalg.norm(a[:3] - b[:3]), np.degrees(2 * np.arccos(min(1.0, abs(float(a[3:7] @ b[3:7])))))


def round_trip(ik, n, rng):
    pos, ang, times, failed = [], [], [], 0
    for _ in range(n):
        q_true = rng.uniform(ik.lower + 0.1, ik.upper - 0.1)
        seed = np.clip(q_true + rng.normal(0, 0.15, 7), ik.lower, ik.upper)
        target = ik.fk(q_true)
        t = time.perf_counter()
        try:
            q = ik.solve(target, seed)
        except IKError:
            failed += 1
            continue
        times.append(time.perf_counter() - t)
        dp, da = errors(ik.fk(q), target)
        pos.append(dp)
        ang.append(da)
    return {"poses": n, "failed": failed, "worst_mm": round(max(pos) * 1e3, 4),
            "p99_mm": round(float(np.percentile(pos, 99)) * 1e3, 4), "worst_deg": round(max(ang), 4),
            "p99_deg": round(float(np.percentile(ang, 99)), 4), "solve_ms_mean": round(np.mean(times) * 1e3, 3)}


def chunks(ik, n, rng):
    times, worst = [], 0.0
    for _ in range(n):
        q0 = np.clip(HOME + rng.normal(0, 0.3, 7), ik.lower + 0.2, ik.upper - 0.2)
        path = q0 + np.cumsum(rng.normal(0, 0.01, (32, 7)), axis=0)
        poses = np.array([[*ik.fk(q), 0.0] for q in path])
        t = time.perf_counter()
        q = ik.solve_chunk(poses, np.append(q0, 0.02))
        times.append(time.perf_counter() - t)
        worst = max(worst, max(errors(ik.fk(qk), p)[0] for qk, p in zip(q, poses)))
    return {"chunks": n, "steps": 32, "chunk_ms_mean": round(np.mean(times) * 1e3, 2),
            "chunk_ms_p95": round(float(np.percentile(times, 95)) * 1e3, 2), "worst_mm": round(worst * 1e3, 4)}


def main() -> int:
    ik = UrdfIK(urdf_from_package(), panda_ik_config())
    rng = np.random.default_rng(0)
    rt, ch = round_trip(ik, 500, rng), chunks(ik, 50, rng)
    print("round trip FK(IK(pose)), seeds 0.15 rad away\n" + common.table([rt], list(rt)))
    print("\n32-step chunks, each step seeded from the previous\n" + common.table([ch], list(ch)))
    out = common.write("ik", [{"test": "round_trip", **rt}, {"test": "chunk", **ch}])
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
