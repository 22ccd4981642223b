"""UrdfIK against the Panda URDF (example-robot-data): round trips, continuity, limits and every rejection reason."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pinocchio (pip 'pin') is not installed")

from xwam_ros.robot.ik import GripperMap, IKConfig, IKError, UrdfIK, urdf_from_package  # noqa: E402
from xwam_ros.robot.panda import ARM_JOINTS, panda_ik_config  # noqa: E402
from xwam_ros.robot.safety import ChunkRejected  # noqa: E402
from xwam_ros.robot.targets import decode_targets  # noqa: E402

HOME = np.array([0.0, 0.196, 0.0, -2.618, 0.0, 2.942, 0.785])  # robosuite's Panda home


@pytest.fixture(scope="module")
def ik():
    return UrdfIK(urdf_from_package(), panda_ik_config())


def pose_error(a, b):
    """(position error m, rotation error rad) between two [xyz, wxyz] poses."""
    return np.linalg.norm(a[:3] - b[:3]), 2 * np.arccos(min(1.0, abs(float(np.dot(a[3:7], b[3:7])))))


def chunk_from_joints(ik, qs, grip=-1.0):
    return np.array([[*ik.fk(q), grip] for q in qs])


def test_round_trip_random_reachable_poses(ik):
    rng = np.random.default_rng(0)
    lo, hi = ik.lower + 0.1, ik.upper - 0.1
    worst = [0.0, 0.0]
    for _ in range(200):
        q_true = rng.uniform(lo, hi)
        seed = np.clip(q_true + rng.normal(0, 0.15, 7), ik.lower, ik.upper)  # measured joints near the answer
        target = ik.fk(q_true)
        q = ik.solve(target, seed)
        assert np.all(q >= ik.lower) and np.all(q <= ik.upper)
        dp, da = pose_error(ik.fk(q), target)
        worst = [max(worst[0], dp), max(worst[1], da)]
    assert worst[0] < 1e-3 and np.degrees(worst[1]) < 0.5, worst


def test_chunk_is_continuous_and_in_joint_order(ik):
    rng = np.random.default_rng(1)
    for _ in range(10):
        q0 = np.clip(HOME + rng.normal(0, 0.3, 7), ik.lower + 0.2, ik.upper - 0.2)
        path = q0 + np.cumsum(rng.normal(0, 0.01, (32, 7)), axis=0)  # a smooth 32-step joint path
        poses = chunk_from_joints(ik, path, grip=1.0)
        q = ik.solve_chunk(poses, np.append(q0, 0.04))
        assert q.shape == (32, 8) and ik.joint_names == [*ARM_JOINTS, "panda_finger_joint1"]
        steps = np.abs(np.diff(np.vstack([q0, q[:, :7]]), axis=0))
        assert steps.max() < 0.1, f"a branch flip: joint step {steps.max():.3f} rad"
        for k in range(32):
            dp, da = pose_error(ik.fk(q[k]), poses[k])
            assert dp < 1e-3 and np.degrees(da) < 0.5
        np.testing.assert_allclose(q[:, 7], 0.0)  # gripper +1 = closed = finger at 0


def test_unreachable_step_rejects_whole_chunk(ik):
    poses = chunk_from_joints(ik, [HOME] * 8)
    poses[5, :3] += [1.5, 0.0, 0.0]  # 1.5 m further out: beyond the Panda's ~0.85 m reach
    with pytest.raises(IKError, match=r"step 5 of 8: (unreachable|singular|joint limit)") as e:
        ik.solve_chunk(poses, HOME)
    assert isinstance(e.value, ChunkRejected)


def test_joint_limit_blocks_a_pose_only_reachable_beyond_it(ik):
    # joint 4 (the elbow) bent the other way, past its upper limit of -0.07 rad, keeping the others at home
    beyond = HOME.copy()
    beyond[3] = 0.8
    target = ik.fk(beyond)
    with pytest.raises(IKError, match="joint limit"):
        ik.solve(target, HOME)


def test_branch_flip_is_rejected(ik):
    poses = chunk_from_joints(ik, [HOME] * 6)
    flipped = HOME.copy()
    flipped[6] -= 1.5  # the same hand position turned 86 deg about the approach axis: one wrist joint moves 1.5 rad
    poses[3, :7] = ik.fk(flipped)
    with pytest.raises(IKError, match="step 3 of 6: discontinuity, joint panda_joint7"):
        ik.solve_chunk(poses, HOME)


def test_solutions_respect_joint_limits_near_them(ik):
    rng = np.random.default_rng(2)
    q_true = HOME.copy()
    q_true[5] = ik.upper[5] - 0.01  # wrist near its upper limit
    for _ in range(20):
        seed = np.clip(q_true + rng.normal(0, 0.1, 7), ik.lower, ik.upper)
        q = ik.solve(ik.fk(q_true), seed)
        assert np.all(q >= ik.lower) and np.all(q <= ik.upper)


def test_bad_inputs_name_the_problem(ik):
    with pytest.raises(IKError, match=r"\[K, 8\]"):
        ik.solve_chunk(np.zeros((4, 7)), HOME)
    with pytest.raises(IKError, match="NaN"):
        ik.solve_chunk(np.full((2, 8), np.nan), HOME)
    with pytest.raises(ValueError, match="expected 7 arm joints"):
        ik.fk(np.zeros(3))
    outside = HOME.copy()
    outside[3] = 0.5
    with pytest.raises(IKError, match=r"seed \(the measured joints\) is outside .*panda_joint4"):
        ik.solve_chunk(chunk_from_joints(ik, [HOME]), outside)


def test_config_is_validated():
    urdf = urdf_from_package()
    with pytest.raises(ValueError, match="not joints of the URDF"):
        UrdfIK(urdf, panda_ik_config(joint_names=["panda_joint1", "elbow"]))
    with pytest.raises(ValueError, match="tip_frame 'nope'"):
        UrdfIK(urdf, panda_ik_config(tip_frame="nope"))
    with pytest.raises(ValueError, match="unit quaternion"):
        panda_ik_config(base_pose=[0, 0, 0, 2, 0, 0, 0])
    with pytest.raises(ValueError, match="could not be parsed"):
        UrdfIK("<robot", panda_ik_config())
    with pytest.raises(ValueError, match="unknown keys"):
        IKConfig.from_dict({"joint_names": ARM_JOINTS, "tip_frame": "panda_hand", "tip": 1})
    g = GripperMap("f", open_position=0.04, closed_position=0.0).validate()
    np.testing.assert_allclose(g.to_joint(np.array([-1.0, 0.0, 1.0])), [0.04, 0.02, 0.0])
    np.testing.assert_allclose(g.to_command(g.to_joint(np.array([-0.5, 0.3]))), [-0.5, 0.3])


def test_base_pose_moves_the_frame():
    urdf = urdf_from_package()
    at_origin = UrdfIK(urdf, panda_ik_config(base_pose=[0, 0, 0, 1, 0, 0, 0]))
    lift = UrdfIK(urdf, panda_ik_config())
    np.testing.assert_allclose(lift.fk(HOME)[:3] - at_origin.fk(HOME)[:3], [-0.56, 0.0, 0.912], atol=1e-12)


def test_decode_targets_urdf_returns_trajectory_joints(ik):
    state = np.array([*ik.fk(HOME), -1.0], np.float32)
    actions = np.zeros((16, 7), np.float32)
    actions[:, 0] = 0.002  # 2 mm per step along x
    q, ee = decode_targets(actions, "ee", state, np.append(HOME, 0.04), "urdf", solver=ik)
    assert q.shape == (16, 8) and ee.shape == (16, 8)
    for k in (0, 15):
        dp, da = pose_error(ik.fk(q[k]), ee[k])
        assert dp < 1e-3 and np.degrees(da) < 0.5
    with pytest.raises(ValueError, match="needs a UrdfIK"):
        decode_targets(actions, "ee", state, np.append(HOME, 0.04), "urdf")


def test_node_parameters_of_the_joint_config_build_the_panda_ik():
    import yaml
    from xwam_ros.paths import share_file
    from xwam_ros.robot.ik import ik_config_from_params
    from xwam_ros.robot.panda import POSITION_MAX, POSITION_MIN
    p = yaml.safe_load(share_file("config", "panda_joint.yaml").read_text())["/**"]["ros__parameters"]
    cfg = ik_config_from_params(p)
    assert cfg == panda_ik_config()  # the YAML says what robot/panda.py measured
    assert p["position_min"][:7] == POSITION_MIN and p["position_max"][:7] == POSITION_MAX
    with pytest.raises(ValueError, match="must be the last"):
        ik_config_from_params({**p, "joint_names": ["panda_finger_joint1", *ARM_JOINTS]})
