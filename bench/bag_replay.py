"""Replay and evaluation throughput on a 3-camera 640x480 RGB-D bag written by this script (MCAP and sqlite3).

    .venv/bin/python bench/bag_replay.py [--seconds 10]
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "xwam_ros" / "test" / "eval"))
from common import table, write  # noqa: E402

from bagfactory import write_bag  # noqa: E402  (the test suite's known-geometry bag writer)
from xwam_ros.eval.replay import PolicyPredictor, evaluate_bag, load_setup, replay_observations  # noqa: E402
from xwam_ros.model.config import get_preset  # noqa: E402
from xwam_ros.model.policy import XWAMPolicy  # noqa: E402
from xwam_ros.ros.graph import share_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0, help="bag length at 30 fps")
    a = ap.parse_args()
    setup = load_setup(share_file("config", "policy.yaml"))
    cfg = get_preset("tiny", view_names=tuple(c.name for c in setup.cameras))
    policy = XWAMPolicy.from_config(cfg)
    rows = []
    tmp = Path(tempfile.mkdtemp())
    try:
        for storage in ("mcap", "sqlite3"):
            bag = tmp / storage
            t = time.perf_counter()
            write_bag(bag, storage=storage, seconds=a.seconds, fps=30.0, size=(480, 640), render_once=True)
            t_write = time.perf_counter() - t
            t = time.perf_counter()
            rep = replay_observations(bag, setup, (cfg.height, cfg.width), cfg.state_dim)
            t_replay = time.perf_counter() - t
            t = time.perf_counter()
            res = evaluate_bag(bag, setup, PolicyPredictor(policy, setup), tmp / f"out_{storage}", cfg, stride=10,
                               progress=False)
            t_eval = time.perf_counter() - t
            t = time.perf_counter()
            res_i = evaluate_bag(bag, setup, PolicyPredictor(policy, setup, imagine=True), tmp / f"outi_{storage}",
                                 cfg, stride=30, imagine=True, max_queries=3, progress=False)
            t_imag = time.perf_counter() - t
            size = sum(f.stat().st_size for f in bag.rglob("*") if f.is_file()) / 2**20
            rows.append({"storage": storage, "bag_MB": round(size), "observations": len(rep.steps),
                         "write_s": round(t_write, 1), "replay_obs_per_s": round(len(rep.steps) / t_replay, 1),
                         "eval_queries": res["summary"]["queries"],
                         "eval_queries_per_s": round(res["summary"]["queries"] / t_eval, 2),
                         "eval_with_imagination_s_per_query": round(t_imag / max(res_i["summary"]["queries"], 1), 2)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(table(rows, list(rows[0])))
    print(f"wrote {write('bag_replay', rows, {'bag': f'{a.seconds:.0f} s, 3 cameras 640x480 rgb8 + 16UC1 at 30 fps, joint states + EE pose at 20 Hz', 'model': 'tiny, 10/50 steps'})}")


if __name__ == "__main__":
    main()
