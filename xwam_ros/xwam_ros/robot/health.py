"""Health of the policy node over a sliding window: diagnostics levels, per-stream liveness, memory (no rclpy).

The node reports what happened in the last ``window_s`` seconds, not since start-up: a stale chunk two minutes ago
is history, not a warning. Levels follow diagnostic_msgs/DiagnosticStatus (OK 0, WARN 1, ERROR 2):

- ERROR while the newest outcome of the action path is an error (bad observation, rejected chunk, internal error),
  or while no synchronised camera set has arrived for ``sync_timeout_s``; it clears with the next good chunk.
- WARN when the window holds errors or warnings (stale drops, safety-limited chunks) but the path has recovered.
- OK otherwise.
"""
from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field

OK, WARN, ERROR = 0, 1, 2

ERROR_KINDS = ("bad_input", "rejected_chunk", "internal")  # outcomes of the action path that are failures
WARN_KINDS = ("stale_dropped", "safety_limited_chunks", "out_of_order")


class EventWindow:
    """Timestamps of named events, forgotten after ``window_s`` seconds."""

    def __init__(self, window_s: float):
        if window_s <= 0:
            raise ValueError(f"diagnostics window must be positive, got {window_s}")
        self.window_s = window_s
        self._events: dict[str, deque] = {}

    def add(self, kind: str, t_s: float) -> None:
        self._events.setdefault(kind, deque()).append(t_s)

    def count(self, kind: str, now_s: float) -> int:
        q = self._events.get(kind)
        if not q:
            return 0
        while q and q[0] < now_s - self.window_s:
            q.popleft()
        return len(q)

    def counts(self, now_s: float) -> dict:
        return {k: n for k in list(self._events) if (n := self.count(k, now_s))}

    def clear(self) -> None:
        self._events.clear()


@dataclass
class StreamStats:
    """One input stream (a camera's colour or depth topic): arrivals, newest stamp, stamps that went backwards."""
    arrivals: deque = field(default_factory=deque)  # receive times (s), within the window
    last_stamp_s: float | None = None
    last_received_s: float | None = None
    backwards: deque = field(default_factory=deque)  # receive times of stamps older than the previous one
    last_jump_s: float = 0.0  # size of the last backwards jump


class StreamMonitor:
    """Per-stream message rate, stamp age and backwards-jumping stamps over a sliding window."""

    def __init__(self, keys, window_s: float):
        self.window_s = window_s
        self.streams = {k: StreamStats() for k in keys}

    def add(self, key: str, stamp_s: float, received_s: float) -> None:
        s = self.streams[key]
        if s.last_stamp_s is not None and stamp_s < s.last_stamp_s:
            s.backwards.append(received_s)
            s.last_jump_s = s.last_stamp_s - stamp_s
        s.arrivals.append(received_s)
        s.last_stamp_s, s.last_received_s = stamp_s, received_s
        self._trim(s, received_s)

    def _trim(self, s: StreamStats, now_s: float) -> None:
        for q in (s.arrivals, s.backwards):
            while q and q[0] < now_s - self.window_s:
                q.popleft()

    def report(self, key: str, now_s: float) -> dict:
        """rate_hz over the window, age_s of the newest stamp, backwards stamps in the window."""
        s = self.streams[key]
        self._trim(s, now_s)
        return {"rate_hz": len(s.arrivals) / self.window_s,
                "age_s": None if s.last_stamp_s is None else now_s - s.last_stamp_s,
                "backwards_stamps": len(s.backwards), "last_backwards_jump_s": s.last_jump_s}

    def late(self, now_s: float) -> tuple[str, str]:
        """(key, why) of the stream holding synchronisation back: never received, or the oldest newest stamp."""
        never = [k for k, s in self.streams.items() if s.last_stamp_s is None]
        if never:
            return never[0], "never received"
        key = min(self.streams, key=lambda k: self.streams[k].last_stamp_s)
        s = self.streams[key]
        newest = max(x.last_stamp_s for x in self.streams.values())
        why = f"newest stamp {now_s - s.last_stamp_s:.2f} s old, {newest - s.last_stamp_s:.3f} s behind the newest stream"
        if self.report(key, now_s)["backwards_stamps"]:
            why += f"; its stamps jumped back {s.last_jump_s:.2f} s"
        return key, why

    def reset(self) -> None:
        self.streams = {k: StreamStats() for k in self.streams}


@dataclass
class Verdict:
    level: int
    message: str


def action_path_level(events: EventWindow, last_outcome: str, last_error: str, now_s: float) -> Verdict:
    """The inference status level from the window's events and the newest outcome ('ok' or an error kind)."""
    if last_outcome in ERROR_KINDS:
        return Verdict(ERROR, last_error)
    counts = events.counts(now_s)
    seen = [k for k in (*ERROR_KINDS, *WARN_KINDS) if counts.get(k)]
    if seen:
        return Verdict(WARN, f"in the last {events.window_s:g} s: " + ", ".join(f"{counts[k]} {k}" for k in seen))
    return Verdict(OK, "ok")


def sync_level(last_set_s: float | None, started_s: float, streams: StreamMonitor, timeout_s: float,
               now_s: float) -> Verdict:
    """ERROR naming the late camera stream when no synchronised set arrived for ``timeout_s`` seconds."""
    since = now_s - (last_set_s if last_set_s is not None else started_s)
    if since <= timeout_s:
        return Verdict(OK, "synchronised sets arriving")
    key, why = streams.late(now_s)
    return Verdict(ERROR, f"no synchronised set for {since:.1f} s: {key} is late ({why})")


def current_rss_mb() -> float:
    """Resident set size now (not the peak ru_maxrss), from /proc/self/statm: resident pages x page size."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
