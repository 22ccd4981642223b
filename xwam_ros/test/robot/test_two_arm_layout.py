"""A two-arm model (state_dim 16, action_dim 14, the xwam-5b layout) end to end: each arm's pose and gripper are
built into the observation, normalised, fed through a real tiny model, and decoded into targets at that arm's own
offsets; one-arm paths (IK, Cartesian axes, simulated Panda) refuse a two-arm state instead of using its first arm."""
import numpy as np
import pytest
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from transforms3d.euler import euler2quat
from transforms3d.quaternions import qmult

from xwam_ros.model.actions import decode_ee_deltas, encode_ee_deltas
from xwam_ros.model.config import get_preset
from xwam_ros.model.layout import StateLayout
from xwam_ros.model.normalize import Normalizer
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.robot.cartesian import state_to_axes
from xwam_ros.robot.convert import camera_info_msg, depth_to_image_msg, rgb_to_image_msg
from xwam_ros.robot.observation import build_observation, ee_state
from xwam_ros.robot.targets import decode_targets

CFG = get_preset("tiny", state_dim=16, action_dim=14, action_steps=2, video_steps=2)
LAYOUT = StateLayout.of(CFG)
# arm 0 near the left, gripper open; arm 1 far right, higher, turned 90 deg about z, gripper half closed
ARMS = [((0.40, 0.25, 0.30), euler2quat(np.pi, 0, 0), -1.0), ((0.55, -0.30, 0.62), euler2quat(np.pi, 0, np.pi / 2), 0.5)]


def _pose(p, q):
    m = Pose()
    m.position.x, m.position.y, m.position.z = p
    m.orientation.w, m.orientation.x, m.orientation.y, m.orientation.z = q
    return m


def _synced():
    rng = np.random.default_rng(0)
    h, w = CFG.height, CFG.width
    K = np.array([[50.0, 0, w / 2], [0, 50.0, h / 2], [0, 0, 1]])
    synced, infos = {}, {}
    for v in CFG.view_names:
        hd = Header(frame_id=v)
        synced[f"{v}/color"] = (0, rgb_to_image_msg(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), hd, Image))
        synced[f"{v}/depth"] = (0, depth_to_image_msg(np.full((h, w), 0.8, np.float32), hd, Image))
        infos[v] = camera_info_msg(K, h, w, hd, CameraInfo)
    return synced, infos


def _observation():
    """The robot's two end-effector poses and grippers -> the model's observation (the live node's builder)."""
    state = LAYOUT.join([ee_state(_pose(p, q), g) for p, q, g in ARMS])
    synced, infos = _synced()
    built = build_observation(synced, infos, state, "hand over the cube", CFG.view_names, (CFG.height, CFG.width),
                              CFG.state_dim)
    return state, built.obs


def test_each_arm_lands_in_its_own_slots_of_the_observation():
    state, obs = _observation()
    for arm, (p, q, g) in enumerate(ARMS):
        np.testing.assert_allclose(LAYOUT.position(obs.state, arm), p, atol=1e-6)
        np.testing.assert_allclose(LAYOUT.quaternion(obs.state, arm), q, atol=1e-6)
        assert LAYOUT.gripper(obs.state, arm) == pytest.approx(g)


def test_normalisation_passes_every_arms_quaternion_and_round_trips():
    rng = np.random.default_rng(1)
    states = np.stack([LAYOUT.join([ee_state(_pose(np.add(p, rng.normal(0, 0.05, 3)), q), g + rng.normal(0, 0.1))
                                    for p, q, g in ARMS]) for _ in range(64)])
    actions = rng.normal(0, [0.01] * 7 + [0.03] * 7, (64, 14))  # arm 1 moves 3x faster
    norm = Normalizer.fit(actions, states, LAYOUT.quaternion_indices())
    state, _ = _observation()
    n = norm.normalize_states(state)
    for arm, (_, q, _) in enumerate(ARMS):
        np.testing.assert_allclose(LAYOUT.quaternion(n, arm), q, atol=1e-6)  # passed through, arm 1's too
    np.testing.assert_allclose(norm.denormalize_states(n), state, atol=1e-5)
    scale = norm.action_high
    assert LAYOUT.arm_action(scale, 1).min() > 2 * LAYOUT.arm_action(scale, 0).max()  # per-arm statistics


def test_targets_and_decoding_give_each_arm_its_own_chunk():
    state, _ = _observation()
    K = 6
    actions = np.zeros((K, 14))
    LAYOUT.arm_action(actions, 0)[:, 0] = 0.01  # arm 0: +x 1 cm/step, gripper closing 0.1/step
    LAYOUT.arm_action(actions, 0)[:, 6] = 0.1
    LAYOUT.arm_action(actions, 1)[:, 2] = -0.02  # arm 1: -z 2 cm/step, +0.1 rad/step about base z, opening
    LAYOUT.arm_action(actions, 1)[:, 5] = 0.1
    LAYOUT.arm_action(actions, 1)[:, 6] = -0.05
    targets, ee = decode_targets(actions, "ee_delta", state, np.zeros(7), "none")
    assert targets is None and ee.shape == (K, 16)
    steps = np.arange(1, K + 1)
    (p0, q0, g0), (p1, q1, g1) = ARMS
    np.testing.assert_allclose(LAYOUT.position(ee, 0), np.add(p0, np.outer(steps, [0.01, 0, 0])), atol=1e-6)
    np.testing.assert_allclose(LAYOUT.position(ee, 1), np.add(p1, np.outer(steps, [0, 0, -0.02])), atol=1e-6)
    np.testing.assert_allclose(LAYOUT.gripper(ee, 0), g0 + 0.1 * steps, atol=1e-6)
    np.testing.assert_allclose(LAYOUT.gripper(ee, 1), g1 - 0.05 * steps, atol=1e-6)
    for k in range(K):
        np.testing.assert_allclose(LAYOUT.quaternion(ee[k], 0), q0, atol=1e-6)  # arm 0 does not turn
        turned = qmult(euler2quat(0, 0, 0.1 * (k + 1)), q1)
        turned = -turned if turned[0] < 0 else turned
        np.testing.assert_allclose(LAYOUT.quaternion(ee[k], 1), turned, atol=1e-6)
    # encoding the decoded path gives the actions back, arm by arm
    path = np.vstack([state, ee])
    np.testing.assert_allclose(encode_ee_deltas(path)[:-1], actions, atol=1e-5)


@pytest.mark.slow
def test_a_real_two_arm_model_chunk_is_decoded_per_arm():
    state, obs = _observation()
    policy = XWAMPolicy.from_config(CFG, seed=0)
    res = policy.predict_action_chunk(obs, seed=0)
    assert res.actions.shape == (CFG.num_actions, 14)
    np.testing.assert_allclose(res.states[0], obs.state, atol=1e-5)  # state 0 survives normalisation both ways
    _, ee = decode_targets(res.actions, CFG.action_space, state, np.zeros(7), "none", CFG.gripper_action)
    for arm, (p, q, g) in enumerate(ARMS):
        ref = decode_ee_deltas(res.actions[:, 7 * arm:7 * arm + 7], p, q, g, CFG.gripper_action)
        np.testing.assert_allclose(LAYOUT.arm_state(ee, arm), ref, atol=1e-9)


def test_one_arm_paths_refuse_a_two_arm_state():
    state, _ = _observation()
    actions = np.zeros((4, 14))
    for ik in ("urdf", "gantry", "cartesian"):
        with pytest.raises(ValueError, match=rf"ik='{ik}' supports one arm .* 2 arms \(16 values\)"):
            decode_targets(actions, "ee_delta", state, np.zeros(7), ik)
    with pytest.raises(ValueError, match="Cartesian axes .* supports one arm"):
        state_to_axes(state)
    # a one-arm robot on the two-arm model drives arm 0 with arm 0's actions
    actions[:, 0] = 0.01
    actions[:, 7 + 1] = 0.5  # arm 1's motion must not leak into the one-arm robot
    q, ee = decode_targets(actions, "ee_delta", LAYOUT.arm_state(state, 0), np.zeros(7), "cartesian")
    np.testing.assert_allclose(ee[-1, :3], np.add(ARMS[0][0], [0.04, 0, 0]), atol=1e-6)
    assert q.shape == (4, 7)
