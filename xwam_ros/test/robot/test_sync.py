import threading

import numpy as np
import pytest

from xwam_ros.robot.sync import ApproxSynchronizer, LatestSlot

KEYS = ("a/rgb", "a/depth", "b/rgb", "b/depth")
MS = 1_000_000


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


def test_dropped_camera_blocks_until_back_and_memory_stays_bounded():
    sync = ApproxSynchronizer(KEYS, slop_s=0.005, queue_size=3)
    for frame in range(100):  # camera b is dead
        for k in ("a/rgb", "a/depth"):
            assert sync.add(k, frame * 33 * MS, frame) is None
    assert all(len(q) <= 3 for q in sync._queues.values())
    t = 100 * 33 * MS
    outs = [sync.add(k, t, 100) for k in KEYS]
    assert outs[-1] is not None and all(v[1] == 100 for v in outs[-1].values())


def test_out_of_order_rejected():
    sync = ApproxSynchronizer(("x", "y"), slop_s=0.001)
    sync.add("x", 10 * MS, 1)
    assert sync.add("y", 10 * MS, 1) is not None
    assert sync.add("x", 5 * MS, 0) is None
    assert sync.stats.out_of_order == 1


def test_bad_args():
    with pytest.raises(ValueError):
        ApproxSynchronizer((), 0.1)
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
