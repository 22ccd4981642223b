import pytest

from xwam_ros.sim.evaluate import TASK_HORIZON, ClosedLoopConfig


def test_the_horizon_follows_the_task_unless_given():
    assert ClosedLoopConfig().validate().horizon == TASK_HORIZON["Lift"] == 200
    assert ClosedLoopConfig(task="Stack").validate().horizon == 300  # the expert alone needs ~173 steps
    assert ClosedLoopConfig(task="Stack", horizon=120).validate().horizon == 120


def test_unknown_tasks_and_empty_horizons_are_refused():
    with pytest.raises(ValueError, match="task"):
        ClosedLoopConfig(task="Door").validate()
    with pytest.raises(ValueError, match="horizon"):
        ClosedLoopConfig(horizon=-5).validate()
