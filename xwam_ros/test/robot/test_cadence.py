"""The cadence report (robot/cadence.py): per-stage mean/p95/worst over a rolling window, rate vs target, late chunks."""
import json

import numpy as np
import pytest

from xwam_ros.robot.cadence import OVERHEAD_STAGES, STAGES, Cadence, expected_query_hz, format_cadence


def _stages(**ms):
    return {k: ms.get(k, 1.0) * 1e-3 for k in STAGES}


def test_stage_statistics_overhead_and_window():
    c = Cadence(target_hz=2.0, window=4)
    for i in range(6):  # the first two fall out of the 4-query window
        c.record(_stages(model=100.0 * (i + 1), receive=float(i)), obs_to_action_s=0.1 * (i + 1), t_s=10.0 + i)
    r = c.report()
    model = [300.0, 400.0, 500.0, 600.0]
    assert r.stages["model"].mean_ms == pytest.approx(np.mean(model))
    assert r.stages["model"].p95_ms == pytest.approx(np.percentile(model, 95))
    assert r.stages["model"].worst_ms == pytest.approx(600.0)
    assert r.stages["receive"].worst_ms == pytest.approx(5.0)
    # overhead: every stage but the model, per query
    assert r.overhead.mean_ms == pytest.approx(np.mean([i + (len(OVERHEAD_STAGES) - 1) for i in range(2, 6)]))
    assert r.queries == 6
    assert r.achieved_hz == pytest.approx(1.0)  # one query per second over the window
    assert r.target_hz == 2.0 and r.budget_ms == pytest.approx(500.0)
    assert r.over_budget == 1  # only 0.6 s > 0.5 s


def test_empty_report_and_text_forms():
    c = Cadence(target_hz=1.0)
    r = c.report()
    assert r.queries == 0 and r.achieved_hz is None and all(v is None for v in r.stages.values())
    assert dict(r.key_values())["cadence_model_mean_ms"] == "n/a"
    c.record(_stages(model=250.0), obs_to_action_s=0.3, t_s=1.0)
    d = json.loads(json.dumps(c.report().as_dict()))  # JSON round trip (~/status)
    assert d["stages"]["model"]["mean_ms"] == pytest.approx(250.0) and d["queries"] == 1
    kv = dict(c.report().key_values())
    assert float(kv["cadence_model_p95_ms"]) == pytest.approx(250.0) and kv["cadence_queries"] == "1"
    assert {f"cadence_{s}_worst_ms" for s in STAGES} <= set(kv)
    text = format_cadence(d)
    assert "model" in text and "250.0" in text and "1.00 Hz needed" in text


def test_clear_and_bad_input():
    c = Cadence(target_hz=1.0)
    c.record(_stages(), 2.0, 0.0)
    c.clear()
    assert c.report().queries == 0 and c.report().over_budget == 0
    with pytest.raises(ValueError, match="lacks stages"):
        c.record({"model": 0.1}, 0.1, 0.0)
    with pytest.raises(ValueError):
        Cadence(target_hz=0.0)


def test_expected_query_rate():
    assert expected_query_hz(20.0, "streaming", 15, 32) == pytest.approx(20 / 15)
    assert expected_query_hz(20.0, "chunk", 15, 32) == pytest.approx(20 / 32)
    with pytest.raises(ValueError):
        expected_query_hz(0.0, "chunk", 1, 1)
