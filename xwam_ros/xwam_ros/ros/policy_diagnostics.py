"""The policy node's /diagnostics statuses from its status dict and the health verdicts of robot/health.py."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..robot.cadence import cadence_key_values
from ..robot.health import ERROR, OK, WARN


def status_msg(level: int, name: str, hardware_id: str, message: str, values: list) -> DiagnosticStatus:
    # DiagnosticStatus.level is a byte field: OK/WARN/ERROR are b'\x00'/b'\x01'/b'\x02'
    return DiagnosticStatus(level=bytes([level]), name=name, hardware_id=hardware_id, message=message, values=values)


def diagnostic_statuses(st: dict, verdict, sync, cfg, extra: dict) -> list:
    """inference (windowed level), cadence (per-stage timing, rate; informational, always OK), synchronisation
    (late stream), one status per camera (rates, ages)."""
    values = [KeyValue(key=f"latency_{k}_ms", value=f"{v * 1e3:.1f}" if v is not None else "n/a")
              for k, v in st["latency_median_s"].items()]
    values += [KeyValue(key=k, value=str(v)) for k, v in st["counters"].items()]
    values += [KeyValue(key=f"last_{st['window_s']:g}s_{k}", value=str(v)) for k, v in st["window_counts"].items()]
    values += [KeyValue(key=k, value=str(v)) for k, v in extra.items()]
    values += [KeyValue(key="rss_mb", value=f"{st['rss_mb']:.0f}"),
               KeyValue(key="device_mem_mb", value=f"{st['device_mem_mb']:.0f}"),
               KeyValue(key="enabled", value=str(st["enabled"])), KeyValue(key="last_error", value=st["last_error"])]
    out = [status_msg(verdict.level, "xwam_policy: inference", "xwam", verdict.message, values),
           cadence_status(st["cadence"]),
           status_msg(sync.level, "xwam_policy: synchronisation", "xwam", sync.message,
                      [KeyValue(key=k, value=str(v)) for k, v in st["sync"].items()])]
    return out + [camera_status(cam, st["streams"], cfg.sync_timeout) for cam in cfg.cameras]


def cadence_status(c: dict) -> DiagnosticStatus:
    """The action path's cadence (robot/cadence.py) as key-values; the message says whether it keeps up."""
    rate = "n/a" if c["achieved_hz"] is None else f"{c['achieved_hz']:.2f}"
    message = (f"{rate} Hz achieved vs {c['target_hz']:.2f} Hz needed; {c['over_budget']} of {c['queries']} chunks "
               f"over the {c['budget_ms']:.0f} ms budget")
    return status_msg(OK, "xwam_policy: cadence", "xwam", message,
                      [KeyValue(key=k, value=v) for k, v in cadence_key_values(c)])


def camera_status(cam, streams: dict, timeout_s: float) -> DiagnosticStatus:
    """ERROR when a stream never arrived or its newest stamp is older than ``timeout_s``; WARN on backwards stamps."""
    vals, level, notes = [], OK, []
    for kind in ("color", "depth"):
        r = streams[f"{cam.name}/{kind}"]
        vals += [KeyValue(key=f"{kind}_rate_hz", value="n/a" if r["rate_hz"] is None else f"{r['rate_hz']:.2f}"),
                 KeyValue(key=f"{kind}_age_s", value="n/a" if r["age_s"] is None else f"{r['age_s']:.3f}"),
                 KeyValue(key=f"{kind}_backwards_stamps", value=str(r["backwards_stamps"]))]
        if r["backwards_stamps"]:
            level = max(level, WARN)
            notes.append(f"{kind} stamps jumped back {r['last_backwards_jump_s']:.2f} s")
        if r["age_s"] is None or r["age_s"] > timeout_s:
            level = max(level, ERROR)
            notes.append(f"no {kind} frame" if r["age_s"] is None else f"{kind} {r['age_s']:.1f} s old")
    return status_msg(level, f"xwam_policy: camera {cam.name}", cam.frame_id, "; ".join(notes) or "ok", vals)
