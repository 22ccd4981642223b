"""The robosuite Panda as X-WAM sees it: seeded, calibrated RGB-D views, Cartesian targets, a working expert."""
import numpy as np
import pytest

from xwam_ros.geometry.camera import transform_points, unproject
from xwam_ros.sim.expert import LiftExpert
from xwam_ros.sim.robosuite_env import SimConfig, SimEnv


@pytest.fixture(scope="module")
def env():
    e = SimEnv(SimConfig(horizon=150), seed=0)
    yield e
    e.close()


@pytest.mark.slow  # a robosuite environment
def test_reset_is_seeded_and_views_are_calibrated(env):
    a, b, c = env.reset(seed=3), env.reset(seed=3), env.reset(seed=4)
    assert np.array_equal(a.rgb["agentview"], b.rgb["agentview"])
    assert not np.allclose(a.objects["cube"][:3], c.objects["cube"][:3])
    for v in ("agentview", "sideview", "eye_in_hand"):
        assert a.rgb[v].shape == (128, 128, 3) and a.rgb[v].dtype == np.uint8
        assert a.depth[v].shape == (128, 128) and np.all(np.isfinite(a.depth[v]))
        assert np.allclose(a.T_world_cam[v][3], [0, 0, 0, 1])
    # metric depth: the image centre of the top-down-ish agentview, back-projected, lies on the table (z = 0.8 m)
    pts = transform_points(a.T_world_cam["agentview"], unproject(a.depth["agentview"], a.K["agentview"]))
    table = pts.reshape(128, 128, 3)[100:128, 40:90].reshape(-1, 3)  # lower rows: the table in front of the robot
    assert np.median(table[:, 2]) == pytest.approx(0.8, abs=0.01)
    # the wrist camera's depth at its centre sees something within its 4 cm - 0.4 m range
    assert 0.03 < a.depth["eye_in_hand"][64, 64] < 0.5


@pytest.mark.slow  # a robosuite environment
def test_cartesian_targets_move_the_grip_site(env):
    f = env.reset(seed=1)
    target = env.hold_target()
    target[2] += 0.05
    for _ in range(30):
        f = env.step(target)
    assert f.state[2] == pytest.approx(target[2], abs=0.01)
    with pytest.raises(ValueError, match="7 finite"):
        env.step(np.full(7, np.nan))


@pytest.mark.slow  # a robosuite environment
def test_expert_lifts_the_cube(env):
    f = env.reset(seed=5)
    expert = LiftExpert(seed=5)
    while not f.success and not env.done:
        f = env.step(expert(f.state, f.objects))
    assert f.success and env.t < 120


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="task"):
        SimConfig(task="Door").validate()
    with pytest.raises(ValueError, match="render"):
        SimConfig(render="fancy").validate()


@pytest.mark.slow  # a robosuite environment
def test_stack_expert_stacks():
    from xwam_ros.sim.expert import make_expert
    env = SimEnv(SimConfig(task="Stack", horizon=250), seed=2)
    try:
        f = env.reset(seed=2)
        expert = make_expert("Stack", seed=2)
        while not f.success and not env.done:
            f = env.step(expert(f.state, f.objects))
        assert f.success, expert.phase
        assert f.objects["cubeA"][2] > f.objects["cubeB"][2] + 0.03  # A rests on B
    finally:
        env.close()
    with pytest.raises(ValueError, match="no scripted expert"):
        make_expert("Door")
