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


def test_paired_comparison_counts_discordant_seeds_and_gives_mcnemars_exact_p():
    """On 40 seeds: A fails 0-11 and 30-32, B fails 10-34: only A solved 12-29 and 33-34 (20 seeds), only B 0-9
    (10), neither 10-11 and 30-32 (5), both 35-39 (5). Exact McNemar p = 2 * P(X <= 10), X ~ Bin(30, 1/2)."""
    from math import comb

    from xwam_ros.sim.evaluate import paired_comparison
    seeds = range(40)
    got = paired_comparison(seeds, [*range(12), 30, 31, 32], range(10, 35))
    assert {k: got[k] for k in ("seeds", "both", "only_a", "only_b", "neither")} == \
        {"seeds": 40, "both": 5, "only_a": 20, "only_b": 10, "neither": 5}, got
    assert got["mcnemar_p"] == pytest.approx(2 * sum(comb(30, i) for i in range(11)) / 2**30, rel=1e-9)
    assert paired_comparison(seeds, [1], [1])["mcnemar_p"] == 1.0  # no discordant seed: no evidence either way
    with pytest.raises(ValueError, match="not among the compared seeds"):
        paired_comparison(range(5), [7], [])
