"""Cadence of the action path: per-stage time, achieved query rate against the rate the robot needs, late chunks.

In the spirit of LeRobot's control-loop timing logs (how long each part of one step took, and whether the loop keeps
its rate); our steps are queries. A query passes these stages (seconds each, measured by the node):

- receive: newest stamp of the synchronised set -> its last message's subscription callback (transport, DDS,
  deserialisation, executor queue; the camera driver's own publishing is in here too)
- sync: that callback -> the set handed to the worker's slot (synchroniser, liveness bookkeeping)
- convert: worker start -> model observation (state, calibration, image conversion and resize, stale check)
- model: the policy call
- safety: gate (slow/stale chunk), target decoding (IK) and limits
- publish: sending the command and the informational outputs (clouds and imagination only hand off to threads)

The time a set waits in the newest-only slot until the worker is free is not overhead of any stage: newer sets
replace it, so it is at most one frame period (the age of the freshest frame when the model becomes free); it is in
``obs_to_action`` (and the node's ``latency_queued_ms``). The report is over a rolling window of the newest
``window`` queries; ``queries`` and ``over_budget`` count since start (or reset). No rclpy: pure, unit-tested.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

STAGES = ("receive", "sync", "convert", "model", "safety", "publish")
OVERHEAD_STAGES = ("receive", "sync", "convert", "safety", "publish")  # everything but the model


def expected_query_hz(control_rate: float, execution_mode: str, execute_steps: int, num_actions: int) -> float:
    """Queries per second the robot needs: one per committed ``execute_steps`` (streaming) or per whole chunk."""
    if control_rate <= 0:
        raise ValueError(f"control_rate must be positive, got {control_rate}")
    steps = execute_steps if execution_mode == "streaming" else num_actions
    if steps < 1:
        raise ValueError(f"a chunk must commit at least one action, got {steps}")
    return control_rate / steps


@dataclass(frozen=True)
class StageStats:
    mean_ms: float
    p95_ms: float
    worst_ms: float

    @staticmethod
    def of(seconds) -> "StageStats | None":
        if not len(seconds):
            return None
        ms = np.asarray(seconds, np.float64) * 1e3
        return StageStats(float(ms.mean()), float(np.percentile(ms, 95)), float(ms.max()))


@dataclass(frozen=True)
class CadenceReport:
    stages: dict  # stage -> StageStats (None before the first query)
    overhead: StageStats | None  # sum of OVERHEAD_STAGES per query
    obs_to_action: StageStats | None  # newest stamp -> command sent, slot wait included
    queries: int
    achieved_hz: float | None  # queries per second over the window (None with fewer than two)
    target_hz: float
    budget_ms: float  # a chunk whose obs_to_action exceeds this arrives after the robot needed it
    over_budget: int

    def as_dict(self) -> dict:
        """Plain JSON-able dict (~/status)."""
        def st(s):
            return None if s is None else {"mean_ms": round(s.mean_ms, 3), "p95_ms": round(s.p95_ms, 3),
                                           "worst_ms": round(s.worst_ms, 3)}
        return {"stages": {k: st(v) for k, v in self.stages.items()}, "overhead": st(self.overhead),
                "obs_to_action": st(self.obs_to_action), "queries": self.queries,
                "achieved_hz": None if self.achieved_hz is None else round(self.achieved_hz, 3),
                "target_hz": round(self.target_hz, 3), "budget_ms": round(self.budget_ms, 1),
                "over_budget": self.over_budget}

    def key_values(self) -> list[tuple[str, str]]:
        return cadence_key_values(self.as_dict())

    def summary(self) -> str:
        """One line per stage, LeRobot-log style, for the demo's summary."""
        return format_cadence(self.as_dict())


def _rows(d: dict):
    return (*d["stages"].items(), ("overhead", d["overhead"]), ("obs_to_action", d["obs_to_action"]))


def cadence_key_values(d: dict) -> list[tuple[str, str]]:
    """Flat (key, value) pairs of ``CadenceReport.as_dict()`` for diagnostic_msgs/KeyValue:
    cadence_<stage>_{mean,p95,worst}_ms per stage (and overhead, obs_to_action), cadence_queries,
    cadence_achieved_hz, cadence_target_hz, cadence_budget_ms, cadence_over_budget."""
    out = []
    for name, s in _rows(d):
        for field in ("mean_ms", "p95_ms", "worst_ms"):
            out.append((f"cadence_{name}_{field}", "n/a" if s is None else f"{s[field]:.2f}"))
    out += [("cadence_queries", str(d["queries"])),
            ("cadence_achieved_hz", "n/a" if d["achieved_hz"] is None else f"{d['achieved_hz']:.3f}"),
            ("cadence_target_hz", f"{d['target_hz']:.3f}"), ("cadence_budget_ms", f"{d['budget_ms']:.1f}"),
            ("cadence_over_budget", str(d["over_budget"]))]
    return out


def format_cadence(d: dict) -> str:
    """The text form of ``CadenceReport.as_dict()`` (also from a ~/status JSON received over DDS)."""
    lines = [f"{'stage':<14}{'mean ms':>10}{'p95 ms':>10}{'worst ms':>10}"]
    for name, s in _rows(d):
        if s is None:
            lines.append(f"{name:<14}{'n/a':>10}{'n/a':>10}{'n/a':>10}")
        else:
            lines.append(f"{name:<14}{s['mean_ms']:>10.1f}{s['p95_ms']:>10.1f}{s['worst_ms']:>10.1f}")
    rate = "n/a" if d["achieved_hz"] is None else f"{d['achieved_hz']:.2f}"
    lines.append(f"queries {d['queries']}, {rate} Hz achieved vs {d['target_hz']:.2f} Hz needed; "
                 f"{d['over_budget']} chunks over the {d['budget_ms']:.0f} ms budget")
    return "\n".join(lines)


class Cadence:
    """Rolling per-stage timings of the newest ``window`` queries. Thread-safe: the worker records while the
    diagnostics timer reports (a short lock around appends and copies, never around work)."""

    def __init__(self, target_hz: float, window: int = 100):
        if target_hz <= 0 or window < 2:
            raise ValueError(f"cadence needs target_hz > 0 and window >= 2 (got {target_hz}, {window})")
        self.window = window
        self.target_hz = float(target_hz)
        self._lock = threading.Lock()
        self.clear()

    @property
    def budget_s(self) -> float:
        return 1.0 / self.target_hz

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._stages = {k: deque(maxlen=self.window) for k in STAGES}
        self._overhead = deque(maxlen=self.window)
        self._total = deque(maxlen=self.window)
        self._times = deque(maxlen=self.window)
        self.queries = self.over_budget = 0

    def record(self, stages: dict, obs_to_action_s: float, t_s: float) -> None:
        """One query's stage durations (seconds, every stage of STAGES), its observation->command time and the time
        it finished (any monotonic clock; used for the achieved rate)."""
        missing = [k for k in STAGES if k not in stages]
        if missing:
            raise ValueError(f"cadence record lacks stages {missing}")
        values = {k: float(stages[k]) for k in STAGES}
        with self._lock:
            for k, v in values.items():
                self._stages[k].append(v)
            self._overhead.append(sum(values[k] for k in OVERHEAD_STAGES))
            self._total.append(float(obs_to_action_s))
            self._times.append(float(t_s))
            self.queries += 1
            if obs_to_action_s > self.budget_s:
                self.over_budget += 1

    def samples(self) -> dict:
        """{stage (and 'overhead', 'obs_to_action'): seconds of each query in the window}, e.g. for percentiles."""
        with self._lock:
            return {**{k: list(v) for k, v in self._stages.items()}, "overhead": list(self._overhead),
                    "obs_to_action": list(self._total)}

    def report(self) -> CadenceReport:
        with self._lock:
            samples = {k: list(v) for k, v in self._stages.items()}
            overhead, total, times = list(self._overhead), list(self._total), list(self._times)
            queries, over = self.queries, self.over_budget
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None
        return CadenceReport({k: StageStats.of(v) for k, v in samples.items()}, StageStats.of(overhead),
                             StageStats.of(total), queries, rate, self.target_hz, self.budget_s * 1e3, over)
