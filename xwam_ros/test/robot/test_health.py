import numpy as np

from xwam_ros.robot.health import ERROR, OK, WARN, EventWindow, action_path_level, current_rss_mb, sync_level
from xwam_ros.robot.sync import ApproxSynchronizer


def _vmrss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0


def test_rss_is_current_not_peak():
    assert abs(current_rss_mb() - _vmrss_mb()) < 8.0
    before = current_rss_mb()
    big = np.ones(300 * 2**20 // 8)  # 300 MB, touched
    during = current_rss_mb()
    del big
    after = current_rss_mb()
    assert during - before > 250 and during - after > 250  # the peak (ru_maxrss) would not come down


def test_levels_follow_the_window_and_the_newest_outcome():
    ev = EventWindow(10.0)
    assert action_path_level(ev, "ok", "", 0.0).level == OK
    ev.add("bad_input", 1.0)
    assert action_path_level(ev, "bad_input", "bad_input: x", 1.0) == type(action_path_level(ev, "ok", "", 1.0))(
        ERROR, "bad_input: x")
    v = action_path_level(ev, "ok", "", 2.0)  # recovered: a warning while the error is in the window
    assert v.level == WARN and "1 bad_input" in v.message
    assert action_path_level(ev, "ok", "", 11.5).level == OK  # forgotten after the window
    ev.add("stale_dropped", 12.0)
    assert action_path_level(ev, "ok", "", 12.0).level == WARN


def test_sync_error_names_the_late_stream():
    """The verdict judges the synchroniser's own per-stream liveness (no second monitor)."""
    keys = ["a/color", "a/depth", "b/color", "b/depth"]
    sync = ApproxSynchronizer(keys, slop_s=0.02, queue_size=4)
    ns = lambda t: int(round(t * 1e9))  # noqa: E731
    v = sync_level(None, 0.0, sync.status(ns(2.0)), {}, 1.0, 2.0)
    assert v.level == ERROR and "a/color is late (never received)" in v.message
    for t in np.arange(0.0, 3.0, 0.1):
        for k in keys:
            sync.add(k, ns(t - (0.05 if k == "b/depth" else 0.0)), None)
    assert sync_level(2.5, 0.0, sync.status(ns(3.0)), {}, 1.0, 3.0).level == OK
    v = sync_level(1.0, 0.0, sync.status(ns(3.0)), {}, 1.0, 3.0)
    assert v.level == ERROR and "b/depth is late" in v.message
    for t in np.arange(3.0, 3.5, 0.1):  # a/color's clock jumps back 5 s: its frames are rejected, the rest go on
        for k in keys:
            sync.add(k, ns(t - (5.0 if k == "a/color" else 0.0)), None)
    st = sync.status(ns(3.5))
    assert st["a/color"].out_of_order == 5 and abs(st["a/color"].last_jump_s - (2.9 - (3.4 - 5.0))) < 1e-6
    v = sync_level(1.0, 0.0, st, {"a/color": 5}, 1.0, 3.5)
    assert "a/color is late" in v.message and "jumped back 4.50 s" in v.message
    assert "jumped back" not in sync_level(1.0, 0.0, st, {}, 1.0, 3.5).message  # outside the window: history
    assert abs(st["b/color"].rate_hz - 10.0) < 1e-6 and abs(st["b/color"].age_s - 0.1) < 1e-6
