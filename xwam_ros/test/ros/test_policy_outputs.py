"""The policy node's robot-facing modes over real DDS: camera extrinsics from TF, the MoveIt Servo pose stream, and
joint targets through the arm's URDF (pinocchio IK)."""
import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, String
from tf2_msgs.msg import TFMessage
from transforms3d.euler import quat2euler

from rig import CONFIG, Harness, stamp_of, wait_for
from xwam_ros.model.config import get_preset
from xwam_ros.model.normalize import Normalizer
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.robot.config import ParameterError
from xwam_ros.ros.graph import ros_args
from xwam_ros.ros.pointcloud2 import read_xyzrgb
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.ros.tf_listener import TF_QOS, TF_STATIC_QOS, make_transform_stamped
from xwam_ros.sim.procedural import default_boxes, default_cameras, fk

VIEWS = ("agentview", "sideview", "eye_in_hand")


# a node with a warmed-up model per test, over DDS: 1-4 s each (60 s for the module on an idle 2-core CPU), so none
# is in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy():
    cfg = get_preset("tiny", view_names=VIEWS, action_steps=4, video_steps=8, action_dt=0.05)
    return XWAMPolicy.from_config(cfg, seed=0)


@pytest.fixture(scope="module")
def gentle(policy):
    """The same random network with actions scaled down 1e4 times: chunks of a few millimetres, like a trained
    policy near its data (the raw random network asks for metres)."""
    cfg = policy.config
    norm = Normalizer(-np.full(cfg.action_dim, 1e-4), np.full(cfg.action_dim, 1e-4), -np.ones(cfg.state_dim),
                      np.ones(cfg.state_dim))
    return XWAMPolicy(policy.transformer, policy.codec, policy.text_encoder, norm, cfg)


# --- extrinsics from TF ---------------------------------------------------------------------------------------------
def _publish_tf(h):
    static = h.listener.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
    dynamic = h.listener.create_publisher(TFMessage, "/tf", TF_QOS)
    stamp = stamp_of(h.pub.now())
    cams = default_cameras()
    static.publish(TFMessage(transforms=[make_transform_stamped("base_link", f"{n}_color_optical_frame", T, stamp)
                                         for n, (kind, T) in cams.items() if kind == "static"]))
    dynamic.publish(TFMessage(transforms=[
        make_transform_stamped("base_link", "ee_link", fk(h.pub.q), stamp),
        make_transform_stamped("ee_link", "eye_in_hand_color_optical_frame", cams["eye_in_hand"][1], stamp)]))
    return static, dynamic


def test_extrinsics_from_tf_missing_tf_is_an_error_without_motion_then_clouds_land_on_the_scene(policy):
    # the config's extrinsics are wrong on purpose: with extrinsics=tf they must not be used
    wrong = [1.0, 0.0, 0.0, 5.0, 0.0, 1.0, 0.0, 5.0, 0.0, 0.0, 1.0, 5.0, 0.0, 0.0, 0.0, 1.0]
    h = Harness(policy, extrinsics="tf", enabled=True, **{f"cameras.{v}.extrinsic": wrong for v in VIEWS})
    try:
        assert h.feed_until(lambda: "no transform base_link <- agentview_color_optical_frame" in h.node.last_error,
                            timeout=10)
        assert h.counter("queries") == 0 and h.trajs == [] and h.targets == []
        _pubs = _publish_tf(h)
        n = len(h.observed)
        assert h.feed_until(lambda: len(h.observed) > n and len(h.trajs) >= 1)
        pts, _ = read_xyzrgb(h.observed[-1])
        on_table = np.abs(pts[:, 2]) < 0.01
        in_box = np.zeros(len(pts), bool)
        for b in default_boxes():
            in_box |= np.all((pts >= b.lo - 0.01) & (pts <= b.hi + 0.01), axis=1)
        assert len(pts) > 1000 and (on_table | in_box).mean() > 0.9  # TF's extrinsics, not the config's
        del _pubs
    finally:
        h.close()


# --- MoveIt Servo pose stream ---------------------------------------------------------------------------------------
def test_servo_streams_limited_stamped_poses_only_when_enabled(gentle):
    h = Harness(gentle, ik="servo")
    poses = []
    h.listener.create_subscription(PoseStamped, "/servo_node/pose_target_cmds", poses.append, QoSProfile(depth=200))
    try:
        assert h.feed_until(lambda: h.counter("queries") >= 2)
        assert poses == [] and h.trajs == [] and h.targets == []  # dry run: no stream, nothing toward the robot
        resp = h.enable(True)
        assert "/servo_node/pose_target_cmds" in resp.message or "servo_node/pose_target_cmds" in resp.message
        assert h.feed_until(lambda: len(poses) >= 30, timeout=30)
        stamps = np.array([p.header.stamp.sec + p.header.stamp.nanosec * 1e-9 for p in poses])
        assert np.all(np.diff(stamps) > 0) and all(p.header.frame_id == "base_link" for p in poses)
        assert 0.02 < np.median(np.diff(stamps)) < 0.1  # at control_rate (20 Hz)
        lim = h.node.cfg.limits
        xyz = np.array([[p.pose.position.x, p.pose.position.y, p.pose.position.z] for p in poses])
        assert np.all(xyz >= np.array(lim.position_min[:3]) - 1e-6) and np.all(xyz <= np.array(lim.position_max[:3]) + 1e-6)
        # consecutive samples move at most max_step per control period (the plan is the safety-limited one)
        dt = np.diff(stamps)[:, None] / h.node.dt
        assert np.all(np.abs(np.diff(xyz, axis=0)) <= np.array(lim.max_step[:3]) * np.maximum(dt, 1) + 1e-6)
        rpy = np.array([quat2euler([p.pose.orientation.w, p.pose.orientation.x, p.pose.orientation.y,
                                    p.pose.orientation.z]) for p in poses])
        assert np.all(np.isfinite(rpy)) and h.trajs == []
        h.enable(False)
        n = len(poses)
        q = h.counter("queries")
        assert h.feed_until(lambda: h.counter("queries") >= q + 2)
        assert len(poses) <= n + 1  # disabled: the stream stops (one tick may have been in flight)
    finally:
        h.close()


# --- joint targets through the URDF ---------------------------------------------------------------------------------
PANDA_Q0 = np.array([0.0, 0.196, 0.0, -2.617, 0.0, 2.94, 0.785])  # robosuite's Panda start pose


def _panda_params(**kw):
    from xwam_ros.robot.panda import COMMAND_JOINTS, GRIP_SITE_OFFSET, POSITION_MAX, POSITION_MIN
    return {"ik": "urdf", "joint_names": list(COMMAND_JOINTS), "gripper_joint": COMMAND_JOINTS[-1],
            "ik_tip_frame": "panda_hand", "ik_tip_offset": list(GRIP_SITE_OFFSET),
            "position_min": POSITION_MIN + [0.0], "position_max": POSITION_MAX + [0.04],
            "max_velocity": [2.0] * 7 + [0.5], "max_step": [0.1] * 7 + [0.04], **kw}


class PandaState:
    """/joint_states and /ee_pose of a Panda standing still at PANDA_Q0 (the pose from the URDF's own FK)."""

    def __init__(self, h):
        from xwam_ros.robot.ik import UrdfIK, urdf_from_package
        from xwam_ros.robot.panda import GRIP_SITE_OFFSET, panda_ik_config
        self.urdf = urdf_from_package()
        cfg = panda_ik_config(base_pose=[0, 0, 0, 1, 0, 0, 0], tip_offset=list(GRIP_SITE_OFFSET))
        self.ee = UrdfIK(self.urdf, cfg).fk(PANDA_Q0)
        self.h = h
        self.js = h.listener.create_publisher(JointState, "/joint_states", 10)
        self.pose = h.listener.create_publisher(PoseStamped, "/ee_pose", 10)

    def publish(self):
        from xwam_ros.robot.panda import joint_state
        stamp = stamp_of(self.h.pub.now())
        names, pos = joint_state(PANDA_Q0, [0.04, -0.04])
        self.js.publish(JointState(header=Header(stamp=stamp), name=names, position=pos))
        m = PoseStamped(header=Header(stamp=stamp, frame_id="base_link"))
        p = self.ee
        m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(x) for x in p[:3])
        o = m.pose.orientation
        o.w, o.x, o.y, o.z = (float(x) for x in p[3:7])
        self.pose.publish(m)


def _feed(h, panda, pred, timeout=30.0):
    def tick():
        panda.publish()
        return pred()
    return h.feed_until(tick, timeout=timeout, state=False)


def test_urdf_ik_sends_the_arms_own_joints_from_robot_description(gentle):
    h = Harness(gentle, enabled=True, **_panda_params())
    try:
        panda = PandaState(h)
        assert _feed(h, panda, lambda: "no URDF yet" in h.node.last_error, timeout=15)
        assert h.trajs == []
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        desc = h.listener.create_publisher(String, "/robot_description", latched)
        desc.publish(String(data=panda.urdf))
        assert _feed(h, panda, lambda: len(h.trajs) >= 1)
        msg = h.trajs[0][0]
        from xwam_ros.robot.panda import COMMAND_JOINTS
        assert list(msg.joint_names) == list(COMMAND_JOINTS)
        pos = np.array([list(p.positions) for p in msg.points])
        # a few-millimetre chunk from a standing arm: FK of every target stays within a few cm of the start
        from xwam_ros.robot.ik import UrdfIK
        ee = np.array([h.node.ik_solver.fk(q) for q in pos])
        assert np.all(np.linalg.norm(ee[:, :3] - panda.ee[:3], axis=1) < 0.05)
        assert isinstance(h.node.ik_solver, UrdfIK)
    finally:
        h.close()


def test_urdf_ik_failure_rejects_the_chunk_and_bad_ik_parameters_refuse_to_start(policy, tmp_path):
    from xwam_ros.robot.ik import urdf_from_package
    urdf = tmp_path / "panda.urdf"
    urdf.write_text(urdf_from_package())
    # the raw random network asks for metres-long moves: unreachable for a Panda
    h = Harness(policy, enabled=True, **_panda_params(urdf_file=str(urdf)))
    try:
        panda = PandaState(h)
        assert _feed(h, panda, lambda: h.counter("rejected_chunk") >= 2 and "IK failed" in h.node.last_error)
        assert h.trajs == [] and h.counter("trajectories_sent") == 0
    finally:
        h.close()
    import rclpy
    for overrides, match in (({"ik_tip_frame": "no_such_link"}, "no_such_link"),
                             ({"urdf_file": str(tmp_path / "missing.urdf")}, "urdf_file")):
        ctx = rclpy.Context()
        rclpy.init(args=ros_args(CONFIG, {**_panda_params(urdf_file=str(urdf)), **overrides}), context=ctx)
        try:
            with pytest.raises(ParameterError, match=match):
                PolicyNode(policy=policy, warm_up=False, context=ctx)
        finally:
            rclpy.shutdown(context=ctx)
