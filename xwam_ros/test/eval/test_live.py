"""Recording over DDS, live replay with /clock, and offline == live observations."""
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from xwam_interfaces.msg import ActionChunk

from bagfactory import write_bag
from conftest import wait_for
from xwam_ros.data.bag_reader import iter_messages
from xwam_ros.data.bag_observations import replay_observations
from xwam_ros.robot.config_file import load_setup
from xwam_ros.ros.bag_player import play_bag
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.paths import resolve_checkpoint
from xwam_ros.ros.graph import ros_args, share_file
from xwam_ros.robot.observation import stamp_to_ns
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.ros.recorder import recorder_topics
from xwam_ros.ros.recording import BagRecorder

CONFIG = share_file("config", "gantry.yaml")


def _spin(ctx, nodes):
    ex = MultiThreadedExecutor(num_threads=2, context=ctx)
    for n in nodes:
        ex.add_node(n)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    return ex, th


def test_recorder_writes_what_was_published(tmp_path, ros_context):
    setup = load_setup(CONFIG)
    rec_node = Node("rec", context=ros_context)
    rec = BagRecorder(rec_node, tmp_path / "rec", recorder_topics(setup), "sqlite3")
    pub_node = Node("pub", context=ros_context)
    pub = pub_node.create_publisher(JointState, "/joint_states", 10)
    ex, th = _spin(ros_context, [rec_node, pub_node])
    time.sleep(0.8)
    for i in range(5):
        pub.publish(JointState(name=["x"], position=[float(i)]))
        time.sleep(0.05)
    time.sleep(0.5)
    ex.shutdown()
    th.join(2)
    rec.close()
    got = [m.position[0] for _, _, m in iter_messages(tmp_path / "rec", ["/joint_states"])]
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0]


@pytest.mark.slow
def test_the_node_on_a_live_replay_acts_as_the_offline_evaluator_predicts_and_follows_sim_time(tmp_path):
    """Live side: the policy node itself, fed by the bag player on /clock. Offline side: data/bag_observations from
    the same bag. Every chunk the node publishes must equal the policy run on the offline observation of the same
    stamp with the node's seed for that query, so the node's synchronisation, conversion and state assembly give
    what the evaluator gives (the arm holds still so the newest joint message is the same state on both sides)."""
    bag = tmp_path / "bag"
    write_bag(bag, seconds=3.0, fps=5.0, still=True)
    setup = load_setup(CONFIG)
    offline = replay_observations(bag, setup, (64, 64), 8)
    by_stamp = {s.built.stamp_ns: s for s in offline.steps}

    ctx = rclpy.Context()
    rclpy.init(args=ros_args(CONFIG, {"use_sim_time": True, "imagine": False, "max_observation_age": 0.5,
                                      "publish_observed_cloud": False}), context=ctx)
    # the shipped (trained) model: a random one barely reads its state (1e-7 per cm), so state errors would not show
    policy = XWAMPolicy.from_pretrained(resolve_checkpoint("builtin:lift_tiny"))
    assert policy.config.view_names == tuple(c.name for c in setup.cameras)
    node = PolicyNode(policy=policy, warm_up=False, context=ctx)
    chunks = []
    sub = Node("live_sub", context=ctx)
    sub.create_subscription(ActionChunk, "/xwam_policy/action_chunk", chunks.append, QoSProfile(depth=100))
    player = Node("player", context=ctx)
    ex, th = _spin(ctx, [node, sub, player])
    try:
        n = play_bag(bag, player, rate=1.0, clock=True, qos=QoSProfile(depth=100))
        assert wait_for(lambda: len(chunks) >= node.counters.get("queries", 0) >= 3, timeout=10)
        assert n > 100
        # bag stamps are ~1000 s after the epoch: only a node on /clock time accepts them as fresh
        assert node.counters.get("stale_dropped", 0) == 0
        for q, msg in enumerate(chunks):  # reliable, in order: chunk q came from query q, seed cfg.seed + q
            step = by_stamp[stamp_to_ns(msg.header.stamp)]
            expected = policy.predict_action_chunk(step.built.obs, seed=node.cfg.seed + q).actions
            live = np.asarray(msg.values, np.float32).reshape(msg.num_steps, msg.num_dims)
            np.testing.assert_allclose(live, expected, atol=1e-5, rtol=0)
    finally:
        ex.shutdown()
        th.join(3)
        for n_ in (player, sub, node):
            n_.destroy_node()
        rclpy.shutdown(context=ctx)
