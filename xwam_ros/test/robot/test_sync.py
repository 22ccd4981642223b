import itertools
import threading
import time
from collections import deque

import numpy as np
import pytest

from xwam_ros.robot.sync import ApproxSynchronizer, LatestSlot

KEYS = ("a/rgb", "a/depth", "b/rgb", "b/depth")
MS = 1_000_000


class BruteForce:
    """The reference: try every combination of queued messages, keep the newest (largest smallest stamp), then the
    tightest, then the first in product order; the same queue, out-of-order and discard rules."""

    def __init__(self, keys, slop_s, queue_size):
        self.keys, self.slop_ns, self.size = tuple(keys), int(slop_s * 1e9), queue_size
        self.q = {k: deque() for k in self.keys}
        self.last = {k: None for k in self.keys}
        self.dropped = self.out_of_order = 0

    def add(self, key, stamp, item):
        q, last = self.q[key], self.last[key]
        if (last is not None and stamp <= last) or (q and stamp <= q[-1][0]):
            self.out_of_order += 1
            return None
        q.append((stamp, item))
        if len(q) > self.size:
            q.popleft()
            self.dropped += 1
        best = None
        for combo in itertools.product(*(range(len(self.q[k])) for k in self.keys)):
            stamps = [self.q[k][i][0] for k, i in zip(self.keys, combo)]
            spread = max(stamps) - min(stamps)
            if spread <= self.slop_ns and (best is None or (min(stamps), -spread) > best[0]):
                best = ((min(stamps), -spread), combo)
        if best is None:
            return None
        out = {}
        for k, i in zip(self.keys, best[1]):
            out[k] = self.q[k][i]
            self.dropped += i
            for _ in range(i + 1):
                self.q[k].popleft()
            self.last[k] = out[k][0]
        return out

    def reset(self):
        for q in self.q.values():
            q.clear()
        self.last = {k: None for k in self.keys}


def random_stream(rng, keys, frames):
    """Cameras at ~30 Hz with jitter, per-stream clock offsets, dropped frames, duplicates, late and shuffled
    arrivals: [(key, stamp_ns)]."""
    offsets = {k: int(rng.integers(-20, 21)) * MS if rng.random() < 0.3 else 0 for k in keys}
    jitter_ms = int(rng.integers(0, 15))
    msgs = []
    for f in range(frames):
        for k in keys:
            if rng.random() < 0.15:
                continue  # dropped frame
            stamp = f * 33 * MS + offsets[k] + int(rng.integers(-jitter_ms, jitter_ms + 1)) * MS
            msgs.append((k, stamp))
            if rng.random() < 0.05:
                msgs.append((k, stamp))  # duplicate
    # local shuffling: arrival order differs from stamp order within a few messages
    keyed = sorted(range(len(msgs)), key=lambda i: i + rng.normal(0, 3))
    return [msgs[i] for i in keyed]


def test_same_sets_as_brute_force_on_random_streams():
    totals = {"matched": 0, "dropped": 0, "out_of_order": 0, "cases_with_sets": 0}
    for seed in range(60):
        rng = np.random.default_rng(seed)
        keys = [f"k{i}" for i in range(int(rng.integers(1, 6)))]
        slop = float(rng.choice([0.0, 0.003, 0.010, 0.020, 0.040]))
        size = int(rng.integers(1, 6)) if len(keys) < 5 else int(rng.integers(1, 4))
        fast, ref = ApproxSynchronizer(keys, slop, size), BruteForce(keys, slop, size)
        matched = 0
        for n, (k, stamp) in enumerate(random_stream(rng, keys, 60)):
            if rng.random() < 0.01:
                fast.reset()
                ref.reset()
            got, want = fast.add(k, stamp, n), ref.add(k, stamp, n)
            assert got == want, f"seed {seed}, message {n} ({k} @ {stamp / MS} ms): {got} != {want}"
            matched += got is not None
            assert all(v <= size for v in fast.queue_lengths().values())
        assert fast.stats.matched == matched and fast.stats.dropped == ref.dropped
        assert fast.stats.out_of_order == ref.out_of_order
        totals["matched"] += matched
        totals["dropped"] += ref.dropped
        totals["out_of_order"] += ref.out_of_order
        totals["cases_with_sets"] += matched > 0
    # the agreement is not vacuous: many sets, drops and rejections happened
    assert totals["matched"] > 500 and totals["dropped"] > 500 and totals["out_of_order"] > 100, totals
    assert totals["cases_with_sets"] > 40, totals


def test_jittered_streams_match_every_frame():
    rng = np.random.default_rng(0)
    sync = ApproxSynchronizer(KEYS, slop_s=0.010, queue_size=4)
    sets = []
    for frame in range(50):
        base = frame * 33 * MS
        for k in rng.permutation(KEYS):
            out = sync.add(k, base + int(rng.integers(-4, 5)) * MS, (k, frame))
            if out:
                sets.append(out)
    assert len(sets) == 50
    for s in sets:
        frames = {item[1] for _, item in s.values()}
        assert len(frames) == 1  # never mixes frames
        stamps = [st for st, _ in s.values()]
        assert max(stamps) - min(stamps) <= 10 * MS


def test_prefers_the_newest_set_and_discards_everything_before_it():
    sync = ApproxSynchronizer(("x", "y"), slop_s=0.005, queue_size=5)
    for t in (0, 33, 66):
        sync.add("x", t * MS, t)
    out = sync.add("y", 65 * MS, "y65")  # within slop of x@66 only -> newest set; x@0 and x@33 superseded
    assert out == {"x": (66 * MS, 66), "y": (65 * MS, "y65")}
    assert sync.stats.dropped == 2 and sync.queue_lengths() == {"x": 0, "y": 0}
    assert sync.stats.last_spread_s == pytest.approx(0.001)
    assert sync.stats.last_set_stamp_ns == 66 * MS


def test_dropped_camera_blocks_until_back_and_memory_stays_bounded():
    sync = ApproxSynchronizer(KEYS, slop_s=0.005, queue_size=3)
    for frame in range(100):  # camera b is dead
        for k in ("a/rgb", "a/depth"):
            assert sync.add(k, frame * 33 * MS, frame) is None
    assert max(sync.queue_lengths().values()) <= 3 and sync.stats.dropped == 2 * 97
    t = 100 * 33 * MS
    outs = [sync.add(k, t, 100) for k in KEYS]
    assert outs[-1] is not None and all(v[1] == 100 for v in outs[-1].values())


def test_offset_camera_never_matches_and_queues_stay_bounded():
    # worst case for a search: camera b 15 ms late with a 5 ms slop -> nothing ever completes
    sync = ApproxSynchronizer(KEYS, slop_s=0.005, queue_size=10)
    for frame in range(500):
        for k in KEYS:
            late = 15 * MS if k.startswith("b") else 0
            assert sync.add(k, frame * 33 * MS + late, frame) is None
        assert max(sync.queue_lengths().values()) <= 10
    assert sync.stats.matched == 0 and sync.stats.dropped == 4 * 490


def test_out_of_order_and_duplicates_rejected():
    sync = ApproxSynchronizer(("x", "y"), slop_s=0.001)
    sync.add("x", 10 * MS, 1)
    assert sync.add("x", 10 * MS, 1) is None  # same stamp twice on one stream
    assert sync.add("y", 10 * MS, 1) is not None
    assert sync.add("x", 5 * MS, 0) is None
    assert sync.stats.out_of_order == 2 and sync.stats.per_key_received == {"x": 3, "y": 1}


def test_liveness_names_the_dead_and_the_offset_camera():
    keys = tuple(f"{c}/{s}" for c in "abcd" for s in ("rgb", "depth"))
    sync = ApproxSynchronizer(keys, slop_s=0.005, queue_size=4)
    assert sync.late_keys(0, 1.0) == list(keys)  # nothing yet
    for frame in range(30):  # 1 s at 30 Hz: c stops after 0.5 s, b's clock is 15 ms late
        t = frame * 33 * MS
        for k in keys:
            if k.startswith("c") and frame >= 15:
                continue
            sync.add(k, t + (15 * MS if k.startswith("b") else 0), frame)
    now = 30 * 33 * MS
    st = sync.status(now)
    assert st["a/rgb"].received == 30 and st["c/rgb"].received == 15
    assert st["a/rgb"].rate_hz == pytest.approx(1e9 / (33 * MS))
    assert st["c/depth"].age_s == pytest.approx((30 - 14) * 0.033)
    late = sync.late_keys(now, max_age_s=0.2)
    assert late == ["c/rgb", "c/depth"]
    assert sync.out_of_step_keys(exclude=late) == ["b/rgb", "b/depth"]
    # two equal groups: either could be wrong, so both are named
    assert sync.out_of_step_keys(exclude=late + ["d/rgb", "d/depth"]) == ["a/rgb", "a/depth", "b/rgb", "b/depth"]
    sync.reset()
    assert sync.late_keys(now, 0.2) == list(keys) and sync.status(now)["a/rgb"].rate_hz is None


def test_healthy_streams_are_neither_late_nor_out_of_step():
    sync = ApproxSynchronizer(KEYS, slop_s=0.010, queue_size=3)
    for frame in range(10):
        for k in KEYS:
            sync.add(k, frame * 33 * MS + (2 * MS if k.endswith("depth") else 0), frame)
        sync.add("a/rgb", frame * 33 * MS + 20 * MS, "extra")  # an unmatched leftover keeps a/rgb queued
    assert sync.late_keys(10 * 33 * MS, 0.1) == [] and sync.out_of_step_keys() == []


def test_bad_args():
    with pytest.raises(ValueError):
        ApproxSynchronizer((), 0.1)
    with pytest.raises(ValueError, match="queue_size"):
        ApproxSynchronizer(("x",), 0.1, queue_size=10**6)
    with pytest.raises(ValueError, match="duplicate"):
        ApproxSynchronizer(("x", "x"), 0.1)
    with pytest.raises(KeyError, match="unknown sync key"):
        ApproxSynchronizer(("x",), 0.1).add("z", 0, None)


def test_latest_slot_keeps_newest_only():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.take(0.1) == 4 and slot.overwritten == 4 and slot.take(0.01) is None
    got = []
    th = threading.Thread(target=lambda: got.append(slot.take(2.0)))
    th.start()
    slot.put("x")
    th.join(2)
    assert got == ["x"]


def test_latest_slot_serve_survives_a_failing_item_and_stops():
    slot, seen, errors, running = LatestSlot(), [], [], [True]

    def handle(x):
        if x == "bad":
            raise ValueError("bad item")
        seen.append(x)

    th = threading.Thread(target=slot.serve, args=(lambda: running[0], handle, errors.append), kwargs={"poll_s": 0.05})
    th.start()
    slot.put(("bad",))
    assert _wait(lambda: errors)
    slot.put(("good",))  # the worker goes on after a failure
    assert _wait(lambda: seen == ["good"]) and str(errors[0]) == "bad item"
    running[0] = False
    slot.put(None)
    th.join(2)
    assert not th.is_alive()


def _wait(pred, timeout=5.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout and not pred():
        time.sleep(0.01)
    return bool(pred())
