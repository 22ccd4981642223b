import pytest

from xwam_ros.eval import replay
from xwam_ros.robot import policy_loading
from xwam_ros.robot.config import ParameterError
from xwam_ros.ros import policy_node
from xwam_ros.paths import share_file


def test_node_and_offline_evaluator_build_the_policy_with_the_same_function():
    # the node's start_policy runs load_policy, in its inference process or in place (test_policy_process.py)
    assert policy_node.start_policy is policy_loading.start_policy
    assert replay.load_policy is policy_loading.load_policy


def test_configured_step_counts_replace_the_checkpoints_and_views_are_checked():
    setup = replay.load_setup(share_file("config", "policy.yaml"))
    p = policy_loading.load_policy(setup.replace(checkpoint="builtin:lift_tiny", action_steps=3, video_steps=7,
                                                 device="cpu"))
    assert (p.config.action_steps, p.config.video_steps) == (3, 7)
    one_camera = setup.replace(checkpoint="builtin:lift_tiny", device="cpu")
    one_camera.cameras = one_camera.cameras[:1]
    with pytest.raises(ParameterError, match="camera_names"):
        policy_loading.load_policy(one_camera)


def test_inference_threads_sets_the_torch_pool_and_zero_leaves_a_core_free(monkeypatch):
    import torch
    setup = replay.load_setup(share_file("config", "policy.yaml"))
    before = torch.get_num_threads()
    monkeypatch.setattr(policy_loading.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    try:
        policy_loading.load_policy(setup.replace(device="cpu", inference_threads=0))
        assert torch.get_num_threads() == 2  # three usable cores: one left to the camera path
        policy_loading.load_policy(setup.replace(device="cpu", inference_threads=1))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setattr(policy_loading.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert policy_loading.inference_threads(0) == 1  # never zero threads
