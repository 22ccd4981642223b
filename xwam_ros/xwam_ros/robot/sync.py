"""Approximate-time synchronisation of N streams, per-stream liveness, and a newest-only hand-off.

The synchroniser keeps a small bounded queue per stream and, on every arrival, looks for the newest complete set whose
stamps all lie within ``slop`` of each other (newest = largest smallest stamp; ties go to the tightest set). When it
fires, everything up to the matched stamps is discarded, so a slow consumer never sees a backlog and memory is bounded
even when a camera drops out. Messages not newer than the last one of their stream (or than its last matched stamp)
are rejected as out of order and counted.

Why not ``message_filters.ApproximateTimeSynchronizer`` (bench/sync.py, docs/ros.md): its Python version fires the
first set it finds around the arriving message rather than the newest, leaves the older unmatched messages queued
(so later sets can be stale), takes a product over every candidate within slop of the arrival, has no out-of-order or
liveness bookkeeping, and imports rclpy, which the offline evaluator (``eval/replay.py``) does not need.

Why this is linear: between arrivals no complete set exists (a match removes everything up to its stamps and stamps
rise strictly per stream), so any new set contains the new message, and its smallest stamp lies in
``[stamp - slop, stamp]``. For each candidate minimum ``m`` there (newest first) the tightest set takes, per stream,
the first message at or after ``m``; it is valid when that is within ``m + slop`` for every stream. Cost per message:
O(streams^2 log queue) in the worst case (no set completes), independent of the product of queue lengths.
"""
from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

MAX_QUEUE_SIZE = 1000  # a queue this long means a misconfiguration (30 Hz x 1000 = 33 s of images in memory)
_RATE_WINDOW = 16  # stamps per stream kept for the rate estimate


@dataclass
class SyncStats:
    matched: int = 0
    dropped: int = 0  # fell out of a bounded queue or were superseded by a newer match
    out_of_order: int = 0
    last_spread_s: float = 0.0
    last_set_stamp_ns: int | None = None  # newest stamp of the last synchronised set ("no set for N s" alarms)
    per_key_received: dict = field(default_factory=dict)  # every message offered, accepted or not
    per_key_last_stamp_ns: dict = field(default_factory=dict)  # newest accepted stamp per stream (None: nothing yet)
    per_key_out_of_order: dict = field(default_factory=dict)  # rejected as not newer, per stream
    per_key_last_jump_ns: dict = field(default_factory=dict)  # how far back the last rejected stamp lay, per stream


@dataclass(frozen=True)
class KeyStatus:
    """Liveness of one stream, on the clock of the message stamps."""

    key: str
    received: int
    last_stamp_ns: int | None  # None: nothing accepted yet
    age_s: float | None  # now - last stamp; None when nothing arrived
    rate_hz: float | None  # from the last few stamps; None with fewer than two
    out_of_order: int = 0  # stamps not newer than the stream's newest, rejected
    last_jump_s: float = 0.0  # how far back the last rejected stamp lay


class ApproxSynchronizer:
    def __init__(self, keys, slop_s: float, queue_size: int = 4):
        if not keys:
            raise ValueError("ApproxSynchronizer needs at least one key")
        if slop_s < 0 or not 1 <= queue_size <= MAX_QUEUE_SIZE:
            raise ValueError(f"slop must be >= 0 and queue_size in [1, {MAX_QUEUE_SIZE}] "
                             f"(got {slop_s}, {queue_size})")
        self.keys = tuple(keys)
        if len(set(self.keys)) != len(self.keys):
            raise ValueError(f"duplicate sync keys in {self.keys}")
        self.slop_ns = int(slop_s * 1e9)
        self._queues = {k: deque() for k in self.keys}  # per key: (stamp_ns, item), stamps strictly rising
        self._queue_list = [self._queues[k] for k in self.keys]  # the same deques in key order (hot path)
        self._queue_size = queue_size
        self._last_matched_ns = {k: None for k in self.keys}
        self._recent = {k: deque(maxlen=_RATE_WINDOW) for k in self.keys}
        self._lock = threading.Lock()
        self.stats = SyncStats(per_key_received={k: 0 for k in self.keys},
                               per_key_last_stamp_ns={k: None for k in self.keys},
                               per_key_out_of_order={k: 0 for k in self.keys},
                               per_key_last_jump_ns={k: 0 for k in self.keys})

    def add(self, key, stamp_ns: int, item):
        """Offer one message; returns {key: (stamp_ns, item)} when a synchronised set is complete, else None."""
        q = self._queues.get(key)
        if q is None:
            raise KeyError(f"unknown sync key {key!r}; expected one of {self.keys}")
        stamp_ns = int(stamp_ns)
        with self._lock:
            self.stats.per_key_received[key] += 1
            last = self._last_matched_ns[key]
            newest = q[-1][0] if q else last
            if newest is not None and stamp_ns <= newest:
                self.stats.out_of_order += 1
                self.stats.per_key_out_of_order[key] += 1
                self.stats.per_key_last_jump_ns[key] = newest - stamp_ns
                return None
            q.append((stamp_ns, item))
            self.stats.per_key_last_stamp_ns[key] = stamp_ns
            self._recent[key].append(stamp_ns)
            if len(q) > self._queue_size:
                q.popleft()
                self.stats.dropped += 1
            return self._match_with(stamp_ns)

    def _match_with(self, stamp_ns: int):
        queues = self._queue_list
        if not all(queues):
            return None
        lo = stamp_ns - self.slop_ns
        minimums = set()  # candidate smallest stamps of the new set: everything queued in [stamp - slop, stamp]
        for q in queues:
            i = bisect_left(q, (lo,))  # (s,) sorts before (s, item): the first entry with stamp >= s
            while i < len(q) and q[i][0] <= stamp_ns:
                minimums.add(q[i][0])
                i += 1
        for m in sorted(minimums, reverse=True):
            hi = m + self.slop_ns
            picks = []
            for q in queues:
                i = bisect_left(q, (m,))
                if i == len(q) or q[i][0] > hi:
                    break
                picks.append(i)
            else:
                return self._take(picks, m)
        return None

    def _take(self, picks, smallest_ns: int):
        out = {}
        for k, i in zip(self.keys, picks):
            q = self._queues[k]
            out[k] = q[i]
            self.stats.dropped += i  # older entries are superseded
            for _ in range(i + 1):
                q.popleft()
            self._last_matched_ns[k] = out[k][0]
        self.stats.matched += 1
        newest = max(s for s, _ in out.values())
        self.stats.last_spread_s = (newest - smallest_ns) / 1e9
        self.stats.last_set_stamp_ns = newest
        return out

    def reset(self) -> None:
        """Forget queued messages, last matched and last seen stamps (sim time may restart); counters stay."""
        with self._lock:
            for q in self._queues.values():
                q.clear()
            for r in self._recent.values():
                r.clear()
            self._last_matched_ns = {k: None for k in self.keys}
            self.stats.per_key_last_stamp_ns = {k: None for k in self.keys}

    # -- liveness (what the node reports per camera) --
    def queue_lengths(self) -> dict:
        with self._lock:
            return {k: len(q) for k, q in self._queues.items()}

    def status(self, now_ns: int) -> dict:
        """{key: KeyStatus} at ``now_ns`` (same clock as the stamps, e.g. the node clock)."""
        with self._lock:
            out = {}
            for k in self.keys:
                last, recent = self.stats.per_key_last_stamp_ns[k], self._recent[k]
                rate = (len(recent) - 1) * 1e9 / (recent[-1] - recent[0]) \
                    if len(recent) > 1 and recent[-1] > recent[0] else None
                out[k] = KeyStatus(k, self.stats.per_key_received[k], last,
                                   None if last is None else (now_ns - last) / 1e9, rate,
                                   self.stats.per_key_out_of_order[k], self.stats.per_key_last_jump_ns[k] / 1e9)
            return out

    def late_keys(self, now_ns: int, max_age_s: float) -> list:
        """Streams with nothing accepted yet or whose newest stamp is older than ``max_age_s`` at ``now_ns``."""
        return [k for k, s in self.status(now_ns).items() if s.age_s is None or s.age_s > max_age_s]

    def out_of_step_keys(self, exclude=()) -> list:
        """Streams that arrive but cannot join a set (a camera whose clock is offset, or frames that never line up).

        Streams pair when any two of their last few accepted stamps lie within slop; the largest group of streams
        connected by pairs is in step and every other stream is out of step. With two equally large groups nobody
        can tell which is wrong, so all are named. ``exclude``: streams already known to be late (``late_keys``).
        """
        with self._lock:
            stamps = {k: list(self._recent[k]) for k in self.keys if self._recent[k] and k not in exclude}
        keys = list(stamps)
        group = {k: k for k in keys}  # union-find over the pairing graph (a handful of streams)

        def root(k):
            while group[k] != k:
                k = group[k]
            return k

        for i, k in enumerate(keys):
            for o in keys[i + 1:]:
                if root(k) != root(o) and _any_within(stamps[k], stamps[o], self.slop_ns):
                    group[root(o)] = root(k)
        sizes = {}
        for k in keys:
            sizes[root(k)] = sizes.get(root(k), 0) + 1
        if len(sizes) <= 1:
            return []
        biggest = max(sizes.values())
        winners = [r for r, n in sizes.items() if n == biggest]
        keep = winners[0] if len(winners) == 1 else None
        return [k for k in keys if root(k) != keep]


def _any_within(a: list, b: list, slop_ns: int) -> bool:
    """Whether two rising stamp lists hold a pair at most ``slop_ns`` apart (one merge pass)."""
    i = j = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= slop_ns:
            return True
        if a[i] < b[j]:
            i += 1
        else:
            j += 1
    return False


class LatestSlot:
    """Thread-safe single-item mailbox: a put overwrites whatever was not taken yet (newest-only)."""

    def __init__(self):
        self._item = None
        self._has = False
        self._cond = threading.Condition()
        self.overwritten = 0

    def put(self, item) -> None:
        with self._cond:
            if self._has:
                self.overwritten += 1
            self._item, self._has = item, True
            self._cond.notify_all()

    def take(self, timeout: float | None = None):
        """Return the newest item (clearing the slot), or None after ``timeout`` seconds."""
        with self._cond:
            if not self._has and not self._cond.wait_for(lambda: self._has, timeout=timeout):
                return None
            item, self._item, self._has = self._item, None, False
            return item

    def clear(self) -> None:
        with self._cond:
            self._item, self._has = None, False

    def serve(self, running, handle, on_error, poll_s: float = 0.2) -> None:
        """A worker loop: while ``running()``, take the newest item and ``handle(*item)``; an exception goes to
        ``on_error(exc)`` and the loop goes on (one bad item never stops the worker). ``put(None)`` wakes it to stop."""
        while running():
            item = self.take(timeout=poll_s)
            if item is None or not running():
                continue
            try:
                handle(*item)
            except Exception as exc:  # noqa: BLE001 - reported by on_error, the worker keeps serving
                on_error(exc)
