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


def test_wilson_interval_of_a_success_rate():
    """Values of the Wilson score interval (Wilson 1927): 85/100 -> 0.767-0.907, 0/20 -> 0-0.161, 20/20 -> 0.839-1."""
    from xwam_ros.sim.evaluate import wilson_interval
    for (k, n), (low, high) in {(85, 100): (0.7672, 0.9069), (0, 20): (0.0, 0.1611), (20, 20): (0.8389, 1.0)}.items():
        got = wilson_interval(k, n)
        assert got[0] == pytest.approx(low, abs=1e-3) and got[1] == pytest.approx(high, abs=1e-3), (k, n, got)


def test_every_sim_eval_option_has_help_and_its_default():
    import contextlib
    import io

    from xwam_ros.sim.evaluate import eval_main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        eval_main(["--help"])
    text = " ".join(out.getvalue().split())
    for name in ClosedLoopConfig.__dataclass_fields__:
        assert f"--{name.replace('_', '-')}" in text
    assert text.count("(default:") == len(ClosedLoopConfig.__dataclass_fields__)
