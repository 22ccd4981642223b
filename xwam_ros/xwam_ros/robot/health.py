"""Health of the policy node over a sliding window: diagnostics levels, the late stream, memory (no rclpy).

Per-stream liveness (rates, ages, rejected stamps) is the synchroniser's (``robot/sync.py``: ``status``); this
module only judges it.

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
from dataclasses import dataclass

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


def late_stream(statuses: dict, backwards: dict) -> tuple[str, str]:
    """(key, why) of the stream holding synchronisation back, from the synchroniser's own per-stream liveness
    (``ApproxSynchronizer.status``: {key: KeyStatus}): never received, else the oldest newest stamp.
    ``backwards``: {key: stamps rejected as older than the stream's newest within the diagnostics window}."""
    never = [k for k, s in statuses.items() if s.last_stamp_ns is None]
    if never:
        return never[0], "never received"
    key = min(statuses, key=lambda k: statuses[k].last_stamp_ns)
    s = statuses[key]
    newest = max(x.last_stamp_ns for x in statuses.values())
    why = f"newest stamp {s.age_s:.2f} s old, {(newest - s.last_stamp_ns) / 1e9:.3f} s behind the newest stream"
    if backwards.get(key):
        why += f"; its stamps jumped back {s.last_jump_s:.2f} s"
    return key, why


def sync_level(last_set_s: float | None, started_s: float, statuses: dict, backwards: dict, timeout_s: float,
               now_s: float) -> Verdict:
    """ERROR naming the late camera stream when no synchronised set arrived for ``timeout_s`` seconds."""
    since = now_s - (last_set_s if last_set_s is not None else started_s)
    if since <= timeout_s:
        return Verdict(OK, "synchronised sets arriving")
    key, why = late_stream(statuses, backwards)
    return Verdict(ERROR, f"no synchronised set for {since:.1f} s: {key} is late ({why})")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far, from /proc/<pid>/stat (OSError when it is gone)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def current_rss_mb() -> float:
    """Resident set size now (not the peak ru_maxrss), from /proc/self/statm: resident pages x page size."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
