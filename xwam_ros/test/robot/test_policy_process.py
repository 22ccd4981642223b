"""The policy in its own process answers like the policy in this one, reports failures and survives its child."""
import numpy as np
import pytest

from xwam_ros.model.policy import Observation, XWAMPolicy
from xwam_ros.paths import share_file
from xwam_ros.robot import policy_loading
from xwam_ros.robot.config_file import load_setup
from xwam_ros.robot.policy_process import PolicyProcess, PolicyProcessError

pytestmark = pytest.mark.slow  # each child imports torch and loads the model (seconds)


def _setup(**kw):
    return load_setup(share_file("config", "policy.yaml"), {"device": "cpu", "checkpoint": "builtin:lift_tiny", **kw})


def _obs(mc, seed=0):
    rng = np.random.default_rng(seed)
    return Observation(rng.integers(0, 256, (mc.num_views, mc.height, mc.width, 3), dtype=np.uint8),
                       rng.normal(0, 0.1, mc.state_dim).astype(np.float32), "lift the cube")


@pytest.fixture(scope="module")
def process():
    p = policy_loading.start_policy(_setup())  # inference_process defaults to true
    assert isinstance(p, PolicyProcess)
    yield p
    p.close()


def test_start_policy_follows_inference_process():
    assert isinstance(policy_loading.start_policy(_setup(inference_process=False)), XWAMPolicy)


def test_same_chunk_and_imagination_as_in_this_process(process):
    local = policy_loading.load_policy(_setup())
    assert process.config == local.config
    obs = _obs(local.config)
    remote, here = process.predict_action_chunk(obs, seed=5), local.predict_action_chunk(obs, seed=5)
    np.testing.assert_allclose(remote.actions, here.actions, atol=1e-4)
    np.testing.assert_allclose(remote.states, here.states, atol=1e-4)
    imag_remote, imag_here = process.continue_imagination(remote), local.continue_imagination(here)
    np.testing.assert_allclose(imag_remote.depth, imag_here.depth, rtol=1e-3, atol=1e-3)
    assert np.abs(imag_remote.rgb.astype(int) - imag_here.rgb).max() <= 2  # uint8 rounding of equal floats
    assert process.for_imagination() is process


def test_errors_in_the_child_reach_the_caller_and_the_child_goes_on(process):
    mc = process.config
    with pytest.raises(ValueError, match="rgb must be uint8"):
        process.predict_action_chunk(Observation(np.zeros((1, 2, 3, 3), np.uint8), np.zeros(mc.state_dim)), 0)
    assert process.predict_action_chunk(_obs(mc), seed=1).actions.shape == (mc.num_actions, mc.action_dim)


def test_only_the_newest_results_stay_imaginable(process):
    mc = process.config
    first = process.predict_action_chunk(_obs(mc), seed=2)
    for s in range(4):
        process.predict_action_chunk(_obs(mc), seed=s)
    with pytest.raises(ValueError, match="no longer kept"):
        process.continue_imagination(first)


def test_a_dead_child_is_reported_then_replaced():
    p = PolicyProcess(_setup())
    try:
        mc = p.config
        old = p.predict_action_chunk(_obs(mc), seed=0)
        pid = p.pid
        p.process.kill()
        p.process.join()
        with pytest.raises(PolicyProcessError, match="inference process"):
            p.predict_action_chunk(_obs(mc), seed=0)
        res = p.predict_action_chunk(_obs(mc), seed=0)  # a new child
        assert p.restarts == 1 and p.pid != pid
        np.testing.assert_allclose(res.actions, old.actions, atol=1e-4)
        with pytest.raises(ValueError, match="running inference process"):
            p.continue_imagination(old)  # its state died with the old child
        assert p.continue_imagination(res).rgb.shape[:2] == (mc.num_views, mc.num_frames)
    finally:
        p.close()
    assert p.process is None


def test_a_bad_checkpoint_fails_the_start_with_the_childs_error(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(Exception, match="config.json"):
        PolicyProcess(_setup(checkpoint=str(tmp_path)))
    cams = _setup()
    cams.cameras = cams.cameras[:1]
    with pytest.raises(ValueError, match="camera_names"):
        PolicyProcess(cams)
