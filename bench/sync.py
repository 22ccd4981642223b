"""Cost per message of approximate-time synchronisation: ours (xwam_ros.robot.sync) vs message_filters.

Streams: C cameras x (color, depth) at 30 Hz, messages of one frame arriving in random order. "healthy": every
camera on time, +-3 ms jitter, slop 20 ms (the default config). "offset": camera 0 is 15 ms late, beyond a 5 ms slop,
so no set ever completes (the worst case: every arrival searches the full queues). Each case feeds up to 300 frames
or 3 s of work, whichever ends first, and reports the mean cost per message, sets matched and the longest queue
seen. message_filters.ApproximateTimeSynchronizer is fed through SimpleFilter inputs with real Header stamps.

    python bench/sync.py [--impl path/to/sync.py --label name]   -> table, merges into bench/results/sync.json

``--impl`` times another ApproxSynchronizer implementation under ``--label`` (how the "before" rows were made:
``git show 1e6e7a7:xwam_ros/xwam_ros/robot/sync.py > /tmp/old_sync.py``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "xwam_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, table  # noqa: E402

MS = 1_000_000
PERIOD_NS = 33_333_333
CASES = [  # name, cameras, queue, slop_s
    ("healthy", 3, 3, 0.020), ("healthy", 3, 10, 0.020),
    ("offset", 3, 3, 0.005), ("offset", 3, 5, 0.005), ("offset", 4, 4, 0.005), ("offset", 3, 10, 0.005),
    ("offset", 4, 10, 0.005),
]


def streams(kind: str, cameras: int, frames: int, seed: int = 0):
    """[(key index, stamp_ns)] in arrival order."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(frames):
        base = 10**12 + f * PERIOD_NS
        msgs = []
        for c in range(cameras):
            late = 15 * MS if (kind == "offset" and c == 0) else 0
            jitter = 3 * MS if kind == "healthy" else 1 * MS
            cam = base + late + int(rng.integers(-jitter, jitter + 1))
            msgs += [(2 * c, cam), (2 * c + 1, cam + int(rng.integers(0, 200_000)))]
        out += [msgs[i] for i in rng.permutation(len(msgs))]
    return out


def ours_factory(module):
    def make(keys, slop, queue):
        s = module.ApproxSynchronizer(keys, slop, queue)

        def add(i, stamp_ns):
            return s.add(keys[i], stamp_ns, None)

        if hasattr(s, "queue_lengths"):
            return add, lambda: max(s.queue_lengths().values())
        return add, lambda: max(len(q) for q in s._queues.values())  # the old implementation had no accessor
    return make


def message_filters_factory():
    from builtin_interfaces.msg import Time
    from message_filters import ApproximateTimeSynchronizer, SimpleFilter
    from std_msgs.msg import Header

    class Stamped:  # what message_filters reads: msg.header.stamp
        __slots__ = ("header",)

        def __init__(self, stamp_ns):
            self.header = Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9))

    def make(keys, slop, queue):
        fs = [SimpleFilter() for _ in keys]
        s = ApproximateTimeSynchronizer(fs, queue, slop)
        got = []
        s.registerCallback(lambda *msgs: got.append(msgs))

        def add(i, msg):
            n = len(got)
            fs[i].signalMessage(msg)
            return got[-1] if len(got) > n else None

        return add, lambda: max(len(q) for q in s.queues), Stamped
    return make


def run_case(make, kind, cameras, queue, slop, wrap=None, frames=300, budget_s=3.0):
    keys = [f"cam{c}/{k}" for c in range(cameras) for k in ("color", "depth")]
    built = make(keys, slop, queue)
    add, longest = built[0], built[1]
    msgs = [(i, built[2](s) if len(built) > 2 else s) for i, s in streams(kind, cameras, frames)]
    matched, fed, worst_q, t_total = 0, 0, 0, 0.0
    for i, payload in msgs:
        t0 = time.perf_counter()
        out = add(i, payload)
        t_total += time.perf_counter() - t0
        fed += 1
        matched += out is not None
        worst_q = max(worst_q, longest())
        if t_total > budget_s:
            break
    return {"case": kind, "cameras": cameras, "queue": queue, "slop_ms": slop * 1e3, "messages": fed,
            "us_per_msg": round(t_total / fed * 1e6, 2), "matched": matched,
            "frames_fed": fed // (2 * cameras), "longest_queue": worst_q,
            "budget_hit": fed < len(msgs)}  # stopped after budget_s: queues may not have filled (a lower bound)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", help="a sync.py to time instead of xwam_ros.robot.sync")
    ap.add_argument("--label", default=None)
    ap.add_argument("--skip-message-filters", action="store_true")
    a = ap.parse_args()
    if a.impl:
        spec = importlib.util.spec_from_file_location("sync_impl", a.impl)
        module = importlib.util.module_from_spec(spec)
        sys.modules["sync_impl"] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
        impls = {a.label or Path(a.impl).stem: ours_factory(module)}
    else:
        from xwam_ros.robot import sync as module
        impls = {a.label or "ours": ours_factory(module)}
        if not a.skip_message_filters:
            impls["message_filters"] = message_filters_factory()
    rows = []
    for name, make in impls.items():
        for kind, cameras, queue, slop in CASES:
            rows.append({"impl": name, **run_case(make, kind, cameras, queue, slop)})
            print(table(rows[-1:], list(rows[-1])), flush=True)
    print("\n" + table(rows, list(rows[0])))
    out = RESULTS / "sync.json"
    old = json.loads(out.read_text()) if out.exists() else {}
    merged = [r for r in old.get("results", []) if r["impl"] not in impls] + rows
    runs = {**old.get("machines", {}), **{name: machine() for name in impls}}
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "machines": runs, "results": merged,
                               "target": "offset, 4 cameras, queue 10: <= 100 us per message"}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
