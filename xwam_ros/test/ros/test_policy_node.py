"""The policy node over real DDS: dry run vs enabled, trajectory semantics, bad input, sync, clouds, parameters."""
import json
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory

from rig import ScenePublisher
from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.ros.graph import ros_args, share_file
from xwam_ros.robot.config import ParameterError
from xwam_ros.ros.pointcloud2 import read_xyzrgb
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.sim.procedural import default_boxes

CONFIG = share_file("config", "gantry.yaml")


@pytest.fixture(scope="module")
def policy():
    cfg = get_preset("tiny", view_names=("agentview", "sideview", "eye_in_hand"), action_steps=4, video_steps=8,
                     action_dt=0.05)
    return XWAMPolicy.from_config(cfg, seed=0)


class Harness:
    def __init__(self, policy, **overrides):
        self.ctx = rclpy.Context()
        params = {"imagine": False, "max_observation_age": 2.0, "max_inference_time": 10.0, **overrides}
        rclpy.init(args=ros_args(CONFIG, params), context=self.ctx)
        self.node = PolicyNode(policy=policy, warm_up=False, context=self.ctx)
        self.pub = ScenePublisher(self.ctx)
        self.listener = Node("listener", context=self.ctx)
        self.trajs, self.status, self.clouds, self.observed = [], [], [], []
        self.listener.create_subscription(JointTrajectory, "/arm_controller/joint_trajectory",
                                          lambda m: self.trajs.append((m, self.pub.now())), QoSProfile(depth=50))
        self.listener.create_subscription(String, "/xwam_policy/status", lambda m: self.status.append(json.loads(m.data)), 10)
        self.listener.create_subscription(PointCloud2, "/xwam_policy/imagined/points", self.clouds.append, QoSProfile(depth=50))
        self.listener.create_subscription(PointCloud2, "/xwam_policy/observed/points", self.observed.append,
                                          rclpy.qos.qos_profile_sensor_data)
        self.ex = MultiThreadedExecutor(num_threads=2, context=self.ctx)
        for n in (self.node, self.pub, self.listener):
            self.ex.add_node(n)
        self.th = threading.Thread(target=self.ex.spin, daemon=True)
        self.th.start()
        time.sleep(0.5)  # discovery

    def feed_until(self, pred, timeout=20.0, period=0.1, **kw):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.pub.publish(**kw)
            time.sleep(period)
            if pred():
                return True
        return pred()

    def counter(self, name):
        return self.node.counters.get(name, 0)

    def enable(self, on=True):
        cli = self.listener.create_client(SetBool, "/xwam_policy/enable")
        assert cli.wait_for_service(timeout_sec=5.0)
        fut = cli.call_async(SetBool.Request(data=on))
        t0 = time.monotonic()
        while not fut.done() and time.monotonic() - t0 < 5:
            time.sleep(0.05)
        assert fut.result().success

    def close(self):
        self.ex.shutdown(timeout_sec=2)
        self.th.join(timeout=5)
        for n in (self.listener, self.pub, self.node):
            n.destroy_node()
        rclpy.shutdown(context=self.ctx)


@pytest.fixture
def harness(policy, request):
    h = Harness(policy, **getattr(request, "param", {}))
    yield h
    h.close()


def test_dry_run_sends_nothing_then_enable_sends_safe_anchored_trajectories(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("queries") >= 2)
    assert h.trajs == [] and h.counter("dry_run_chunks") >= 1  # dry run: computed, never sent
    h.enable(True)
    assert h.feed_until(lambda: len(h.trajs) >= 1)
    msg, received = h.trajs[0]
    assert list(msg.joint_names) == ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    tfs = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    assert np.all(np.diff(tfs) > 0) and tfs[0] > 0
    assert stamp + tfs[0] > received - 0.2  # anchored to the observation; past points were dropped
    pos = np.array([list(p.positions) for p in msg.points])
    lim = h.node.cfg.limits
    assert np.all(pos >= np.array(lim.position_min) - 1e-9) and np.all(pos <= np.array(lim.position_max) + 1e-9)
    steps = np.abs(np.diff(pos, axis=0))
    assert np.all(steps <= np.array(lim.max_step) + 1e-9)
    # no jump from the measured state: the first sent point is (dropped points + 1) limited steps away at most
    first_index = h.node.policy.config.num_actions - len(msg.points)
    assert np.all(np.abs(pos[0] - h.pub.q) <= (first_index + 1) * np.array(lim.max_step) + 1e-6)
    n = len(h.trajs)
    h.enable(False)
    time.sleep(0.3)
    n = len(h.trajs)
    h.feed_until(lambda: False, timeout=1.5)
    assert len(h.trajs) == n  # disabled again: nothing more is sent


@pytest.mark.parametrize("kind,kw,match", [
    ("bad_input", {"encoding": "yuv422"}, "unsupported colour encoding"),
    ("bad_input", {"depth_fn": lambda d: np.full_like(d, np.nan)}, "valid"),
])
def test_bad_input_is_reported_and_node_keeps_running(harness, kind, kw, match):
    h = harness
    # the first report may be an unrelated start-up one (e.g. joint states not delivered yet): wait for ours
    assert h.feed_until(lambda: h.counter(kind) >= 1 and match in h.node.last_error, timeout=10, **kw)
    assert h.counter("queries") == 0
    assert h.feed_until(lambda: h.counter("queries") >= 1)  # good input again: it recovers


def test_missing_camera_info_and_wrong_size_info(harness):
    h = harness
    assert h.feed_until(lambda: "camera_info" in h.node.last_error, timeout=10, info=False)
    assert h.counter("bad_input") >= 1 and h.counter("queries") == 0


def test_stale_and_out_of_order_frames_never_query(harness):
    h = harness
    old = h.pub.now() - 10.0
    h.feed_until(lambda: False, timeout=1.5, t_s=old)
    assert h.counter("queries") == 0 and h.counter("stale_dropped") >= 1
    assert h.feed_until(lambda: h.counter("queries") >= 1)
    before = h.node.sync.stats.out_of_order
    h.pub.publish(t_s=h.pub.now() - 5.0)
    time.sleep(0.5)
    assert h.node.sync.stats.out_of_order > before


def test_sync_with_jitter_and_a_dropped_camera(harness):
    h = harness
    h.feed_until(lambda: False, timeout=1.5, cams=("agentview", "sideview"))
    assert h.counter("queries") == 0 and h.node.sync.stats.matched == 0
    rng = np.random.default_rng(0)
    assert h.feed_until(lambda: h.counter("queries") >= 2, jitter=None)
    ok = h.feed_until(lambda: h.node.sync.stats.matched >= 8, timeout=10,
                      **{"jitter": list(rng.uniform(-0.008, 0.008, 3))})
    assert ok and h.node.sync.stats.last_spread_s <= h.node.cfg.sync_slop


def test_observed_cloud_lies_on_the_known_scene(harness):
    h = harness
    assert h.feed_until(lambda: len(h.observed) >= 1)
    pts, cols = read_xyzrgb(h.observed[-1])
    assert len(pts) > 1000 and h.observed[-1].header.frame_id == "base_link"
    on_table = np.abs(pts[:, 2]) < 0.01
    in_box = np.zeros(len(pts), bool)
    for b in default_boxes():
        in_box |= np.all((pts >= b.lo - 0.01) & (pts <= b.hi + 0.01), axis=1)
    assert (on_table | in_box).mean() > 0.9
    red = np.all(cols == [220, 40, 40], axis=1)
    assert red.sum() > 10
    cube = default_boxes()[0]
    assert np.all((pts[red] >= cube.lo - 0.01) & (pts[red] <= cube.hi + 0.01))


@pytest.mark.parametrize("harness", [{"imagine": True}], indirect=True)
def test_imagination_publishes_one_future_stamped_cloud_per_step(harness):
    h = harness
    cfg = h.node.policy.config
    assert h.feed_until(lambda: len(h.clouds) >= cfg.num_frames - 1, timeout=30)
    stamps = [c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in h.clouds[: cfg.num_frames - 1]]
    assert np.allclose(np.diff(stamps), cfg.actions_per_frame * h.node.dt, atol=1e-6)  # future steps, 4 actions apart
    assert all(c.header.frame_id == "base_link" and c.point_step == 16 for c in h.clouds)


def test_parameter_validation(policy):
    for overrides, match in (({"execution_mode": "bogus"}, "execution_mode"),
                             ({"position_min": [0.0]}, "position_max"),
                             ({"cameras.agentview.extrinsic": [1.0] * 15}, "extrinsic"),
                             ({"cameras.sideview.kind": "ceiling"}, "kind")):
        ctx = rclpy.Context()
        rclpy.init(args=ros_args(CONFIG, overrides), context=ctx)
        try:
            with pytest.raises(ParameterError, match=match):
                PolicyNode(policy=policy, warm_up=False, context=ctx)
        finally:
            rclpy.shutdown(context=ctx)


@pytest.mark.parametrize("harness", [{"execution_mode": "streaming", "enabled": True, "execute_steps": 4}],
                         indirect=True)
def test_streaming_mode_replans_while_executing_without_jumps(harness):
    h = harness
    assert h.feed_until(lambda: len(h.trajs) >= 3, timeout=30)
    lim = np.array(h.node.cfg.limits.max_step)
    for msg, _ in h.trajs:
        tfs = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        pos = np.array([list(p.positions) for p in msg.points])
        assert np.all(np.diff(tfs) > 0)
        assert np.all(np.abs(np.diff(pos, axis=0)) <= 2 * lim + 1e-9)  # merged chunks join without a jump
    assert h.counter("skipped_while_executing") == 0  # streaming queries again before the chunk ends
