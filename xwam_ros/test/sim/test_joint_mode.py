"""The simulated Panda under joint-position control, driven through IK on example-robot-data's Panda URDF: the URDF's
kinematics match robosuite's, joint targets are tracked, and the shipped model closes the loop through joint names."""
import numpy as np
import pytest

pytest.importorskip("pinocchio", reason="pinocchio (pip 'pin') is not installed")

from xwam_ros.robot.ik import UrdfIK, urdf_from_package  # noqa: E402
from xwam_ros.robot.panda import LIFT_BASE_POSE, command_to_target, joint_state, panda_ik_config  # noqa: E402
from xwam_ros.sim.evaluate import ClosedLoopConfig, measured_joints, panda_ik_for, run_episode  # noqa: E402
from xwam_ros.sim.robosuite_env import SimConfig, SimEnv  # noqa: E402


@pytest.fixture(scope="module")
def env():
    e = SimEnv(SimConfig(horizon=200, control="joint"), seed=500_000)
    yield e
    e.close()


@pytest.fixture(scope="module")
def ik(env):
    return panda_ik_for(env)


@pytest.mark.slow  # a robosuite environment
def test_urdf_fk_matches_the_simulators_grip_site(env, ik):
    import mujoco
    env.reset(seed=1)
    np.testing.assert_allclose(env.base_pose(), LIFT_BASE_POSE, atol=1e-9)  # robot/panda.py's constant holds
    m, d = env.env.sim.model._model, env.env.sim.data._data
    site = m.site("gripper0_right_grip_site").id
    qpos = [m.jnt_qposadr[m.joint(f"robot0_joint{i}").id] for i in range(1, 8)]
    rng = np.random.default_rng(0)
    worst_p = worst_a = 0.0
    for _ in range(300):
        q = rng.uniform(ik.lower, ik.upper)
        d.qpos[qpos] = q
        mujoco.mj_forward(m, d)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, d.site_xmat[site])
        pose = ik.fk(q)
        worst_p = max(worst_p, np.linalg.norm(pose[:3] - d.site_xpos[site]))
        worst_a = max(worst_a, 2 * np.arccos(min(1.0, abs(float(pose[3:] @ quat)))))
    assert worst_p < 1e-4 and np.degrees(worst_a) < 0.01, (worst_p, np.degrees(worst_a))
    env.reset(seed=1)  # the qpos writes above are not a state any later test should start from


@pytest.mark.slow  # a robosuite environment
def test_joint_targets_are_tracked_and_state_agrees_with_fk(env, ik):
    f = env.reset(seed=2)
    np.testing.assert_allclose(ik.fk(env.joint_positions()), f.state[:7], atol=1e-5)  # /ee_pose == FK(/joint_states)
    target = env.hold_target()
    assert target.shape == (8,)
    target[[0, 3]] += [0.2, 0.15]
    for _ in range(30):
        f = env.step(target)
    np.testing.assert_allclose(env.joint_positions(), target[:7], atol=0.01)
    names, pos = joint_state(env.joint_positions(), env.finger_positions())
    assert names[:7] == ik.arm_joint_names and len(pos) == 9 and pos[7] == pytest.approx(pos[8], abs=2e-3)
    with pytest.raises(ValueError, match="joint target must be 8 finite"):
        env.step(np.zeros(7))


@pytest.mark.slow  # a robosuite environment
def test_ik_chunk_moves_the_grip_site_where_asked(env, ik):
    f = env.reset(seed=3)
    poses = np.repeat(np.append(f.state[:7], -1.0)[None], 20, axis=0)
    poses[:, 2] += np.linspace(0.005, 0.1, 20)  # up 10 cm in 20 steps
    poses[:, 0] += np.linspace(0.0025, 0.05, 20)  # and 5 cm forward
    q = ik.solve_chunk(poses, measured_joints(env, ik))
    for k in range(len(q)):
        f = env.step(np.asarray(command_to_target(q[k])))
    for _ in range(10):
        f = env.step(np.asarray(command_to_target(q[-1])))
    assert np.linalg.norm(f.state[:3] - poses[-1, :3]) < 0.005
    assert f.state[7] < -0.9  # still open


@pytest.mark.slow
def test_shipped_model_lifts_the_cube_through_joint_names(env, ik):
    from xwam_ros.model.policy import XWAMPolicy
    from xwam_ros.paths import resolve_checkpoint
    policy = XWAMPolicy.from_pretrained(resolve_checkpoint("builtin:lift_tiny"))
    cl = ClosedLoopConfig(episodes=2, control="joint")
    rows = [run_episode(env, policy, s, cl, ik) for s in (10_000, 10_001)]  # seeds the shipped model lifts in
    assert any(r["success"] for r in rows), rows                        # Cartesian mode (test_shipped_policy)
    assert all(r["ik_mean_s"] is not None for r in rows)
    with pytest.raises(ValueError, match="needs a UrdfIK"):
        run_episode(env, policy, 10_000, cl, None)


def test_config_names_the_control_field():
    with pytest.raises(ValueError, match="control"):
        SimConfig(control="torque").validate()
    with pytest.raises(ValueError, match="joint_kp"):
        SimConfig(control="joint", joint_kp=0).validate()
    assert UrdfIK(urdf_from_package(), panda_ik_config()).joint_names[-1] == "panda_finger_joint1"
