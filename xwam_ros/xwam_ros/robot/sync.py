"""Approximate-time synchronisation of N streams and a newest-only hand-off, without message_filters.

The synchroniser keeps a small bounded queue per stream and, on every arrival, looks for the newest complete set whose
stamps all lie within ``slop`` of each other. When it fires, everything up to the matched stamps is discarded, so a
slow consumer never sees a backlog and memory is bounded even when a camera drops out. Messages older than the last
matched set are rejected as out of order (and counted).
"""
from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field


@dataclass
class SyncStats:
    matched: int = 0
    dropped: int = 0  # fell out of a bounded queue or were superseded by a newer match
    out_of_order: int = 0
    last_spread_s: float = 0.0
    per_key_received: dict = field(default_factory=dict)


class ApproxSynchronizer:
    def __init__(self, keys, slop_s: float, queue_size: int = 4):
        if not keys:
            raise ValueError("ApproxSynchronizer needs at least one key")
        if slop_s < 0 or queue_size < 1:
            raise ValueError(f"slop must be >= 0 and queue_size >= 1 (got {slop_s}, {queue_size})")
        self.keys = tuple(keys)
        self.slop_ns = int(slop_s * 1e9)
        self._queues = {k: deque() for k in self.keys}
        self._queue_size = queue_size
        self._last_matched_ns = {k: None for k in self.keys}
        self._lock = threading.Lock()
        self.stats = SyncStats(per_key_received={k: 0 for k in self.keys})

    def add(self, key, stamp_ns: int, item):
        """Offer one message; returns {key: (stamp_ns, item)} when a synchronised set is complete, else None."""
        if key not in self._queues:
            raise KeyError(f"unknown sync key {key!r}; expected one of {self.keys}")
        with self._lock:
            self.stats.per_key_received[key] += 1
            q = self._queues[key]
            last = self._last_matched_ns[key]
            if (last is not None and stamp_ns <= last) or (q and stamp_ns < q[-1][0]):
                self.stats.out_of_order += 1
                return None
            q.append((int(stamp_ns), item))
            if len(q) > self._queue_size:
                q.popleft()
                self.stats.dropped += 1
            return self._try_match()

    def _try_match(self):
        if any(not q for q in self._queues.values()):
            return None
        best = None
        # queues are tiny (<= queue_size), so the product is cheap; prefer the newest set, then the tightest
        for combo in itertools.product(*(range(len(self._queues[k])) for k in self.keys)):
            stamps = [self._queues[k][i][0] for k, i in zip(self.keys, combo)]
            spread = max(stamps) - min(stamps)
            if spread <= self.slop_ns:
                score = (min(stamps), -spread)
                if best is None or score > best[0]:
                    best = (score, combo, spread)
        if best is None:
            return None
        _, combo, spread = best
        out = {}
        for k, i in zip(self.keys, combo):
            q = self._queues[k]
            out[k] = q[i]
            self.stats.dropped += i  # older entries are superseded
            for _ in range(i + 1):
                q.popleft()
            self._last_matched_ns[k] = out[k][0]
        self.stats.matched += 1
        self.stats.last_spread_s = spread / 1e9
        return out

    def reset(self) -> None:
        with self._lock:
            for q in self._queues.values():
                q.clear()
            self._last_matched_ns = {k: None for k in self.keys}


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
