import numpy as np
import pytest

from xwam_ros.robot.safety import ChunkRejected, SafetyFilter, SafetyLimits


def _limits():
    return SafetyLimits(position_min=[-1, -1], position_max=[1, 1], max_velocity=[1.0, 1.0], max_step=[0.2, 0.2])


def test_limits_enforced():
    f = SafetyFilter(_limits())
    chunk = np.array([[0.5, 0.0], [0.6, 0.05], [3.0, 0.1]])
    out, rep = f.apply(chunk, dt=0.1, current=np.zeros(2))
    assert np.all(np.abs(np.diff(np.vstack([[0, 0], out]), axis=0)) <= 0.1 + 1e-12)  # v_max * dt
    assert np.all(out <= 1) and rep["rate_limited_steps"] >= 1 and rep["position_clamped_steps"] == 1


def test_nan_rejected_and_validation():
    f = SafetyFilter(_limits())
    with pytest.raises(ChunkRejected, match="NaN"):
        f.apply(np.array([[np.nan, 0.0]]), 0.1, np.zeros(2))
    with pytest.raises(ChunkRejected, match="do not match"):
        f.apply(np.zeros((2, 3)), 0.1, np.zeros(2))
    with pytest.raises(ValueError, match="position_max"):
        SafetyLimits([0], [1, 2], [1], [1]).validate()
    with pytest.raises(ValueError, match="below"):
        SafetyLimits([1], [0], [1], [1]).validate()


def test_staleness():
    f = SafetyFilter(_limits())
    assert f.check_stale(10.0, 10.2) is None
    assert "old" in f.check_stale(10.0, 11.0)


def test_saturated_gripper_is_not_a_limit_event_but_everything_else_is():
    lim = SafetyLimits(position_min=[-1, 0.0], position_max=[1, 0.04], max_velocity=[10.0, 10.0],
                       max_step=[0.5, 0.5], saturating=[1])
    f = SafetyFilter(lim)
    chunk = np.array([[0.1, 0.5], [0.2, 0.9], [0.3, -0.3]])  # the gripper is told past both ends of its range
    out, rep = f.apply(chunk, dt=0.1, current=np.array([0.0, 0.02]))
    assert np.allclose(out[:, 1], [0.04, 0.04, 0.0]) and np.allclose(out[:, 0], chunk[:, 0])
    assert rep["rate_limited_steps"] == 0 and rep["position_clamped_steps"] == 0 and rep["saturated_steps"] == 3
    out, rep = f.apply(np.array([[1.5, 0.02]]), dt=0.1, current=np.array([0.8, 0.02]))  # an arm joint past its range
    assert rep["position_clamped_steps"] == 1 and out[0, 0] == 1.0
    out, rep = f.apply(np.array([[0.9, 0.02]]), dt=0.1, current=np.array([0.0, 0.02]))  # a real rate limit
    assert rep["rate_limited_steps"] == 1 and out[0, 0] == 0.5
