"""The action path's cadence report (robot/cadence.py) as an independent client sees it over DDS: /diagnostics
key-values and the ~/status JSON."""
import numpy as np
import pytest

from rig import Harness, wait_for
from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.robot.cadence import STAGES


@pytest.fixture(scope="module")
def policy():
    cfg = get_preset("tiny", view_names=("agentview", "sideview", "eye_in_hand"), action_steps=4, video_steps=8,
                     action_dt=0.05)
    return XWAMPolicy.from_config(cfg, seed=0)


def _values(status) -> dict:
    return {kv.key: kv.value for kv in status.values}


def test_cadence_reaches_a_client_in_diagnostics_and_status(policy):
    # every query must reach the cadence: a chunk rejected as stale never does (CI once saw a 2.3 s first query
    # under load against the harness's 2 s limit), and staleness is test_policy_node's subject, not this one's
    h = Harness(policy, max_observation_age=10.0)
    try:
        assert h.feed_until(lambda: h.counter("queries") >= 3)
        # feeding stopped: the newest status has every query of the run in its cadence, and so does /diagnostics
        done = lambda: bool(h.status) and h.status[-1]["cadence"]["queries"] == h.status[-1]["counters"]["queries"] \
            == h.counter("queries")  # noqa: E731
        assert wait_for(lambda: done() and len(h.chunks) >= h.status[-1]["counters"]["queries"], timeout=15)
        st = h.status[-1]
        c, queries = st["cadence"], st["counters"]["queries"]
        assert queries >= 3 and c["over_budget"] <= queries
        for name in STAGES:
            s = c["stages"][name]
            assert s is not None and 0.0 <= s["mean_ms"] <= s["worst_ms"] and s["p95_ms"] <= s["worst_ms"] + 1e-6, name
        # the model stage is the time of each policy call, the same value every ActionChunk carries
        model_ms = np.mean([m.model_latency for m in h.chunks[:queries]]) * 1e3
        assert c["stages"]["model"]["mean_ms"] > 0
        assert c["stages"]["model"]["mean_ms"] == pytest.approx(model_ms, rel=1e-3, abs=0.01)
        overhead = sum(c["stages"][k]["mean_ms"] for k in STAGES if k != "model")
        assert c["overhead"]["mean_ms"] == pytest.approx(overhead, abs=0.01)
        assert c["obs_to_action"]["mean_ms"] >= c["stages"]["model"]["mean_ms"]  # the model is part of it
        # gantry.yaml: chunk mode at 20 Hz, the tiny model's chunk of num_actions actions
        assert c["target_hz"] == pytest.approx(20.0 / policy.config.num_actions, rel=1e-3)
        assert c["budget_ms"] == pytest.approx(1e3 / c["target_hz"], rel=1e-3)
        assert c["achieved_hz"] is not None and c["achieved_hz"] > 0
        # /diagnostics: the same report as key-values of its own status
        def diag_done():
            d = h.diag("xwam_policy: cadence")
            return d is not None and _values(d).get("cadence_queries") == str(queries)
        assert wait_for(diag_done, timeout=5)
        vals = _values(h.diag("xwam_policy: cadence"))
        assert {f"cadence_{k}_{f}" for k in STAGES for f in ("mean_ms", "p95_ms", "worst_ms")} <= set(vals)
        assert float(vals["cadence_model_mean_ms"]) == pytest.approx(c["stages"]["model"]["mean_ms"], abs=0.01)
        assert float(vals["cadence_target_hz"]) == pytest.approx(c["target_hz"], abs=1e-3)
        assert int(vals["cadence_over_budget"]) == c["over_budget"]
        assert "Hz achieved" in h.diag("xwam_policy: cadence").message
    finally:
        h.close()
