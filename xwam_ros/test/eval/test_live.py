"""Recording over DDS, live replay with /clock, and offline == live observations."""
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image, JointState

from bagfactory import write_bag
from xwam_ros.data.bag_reader import iter_messages
from xwam_ros.data.bag_observations import replay_observations
from xwam_ros.robot.config_file import load_setup
from xwam_ros.ros.bag_player import play_bag
from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.ros.graph import ros_args, share_file
from xwam_ros.robot.observation import ObservationError, build_observation, stamp_to_ns
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.ros.recorder import recorder_topics
from xwam_ros.ros.recording import BagRecorder
from xwam_ros.robot.sync import ApproxSynchronizer

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
def test_live_player_gives_the_same_observations_and_the_node_follows_sim_time(tmp_path):
    bag = tmp_path / "bag"
    write_bag(bag, seconds=3.0, fps=5.0)
    setup = load_setup(CONFIG)
    offline = replay_observations(bag, setup, (64, 64), 8)
    by_stamp = {s.built.stamp_ns: s for s in offline.steps}

    ctx = rclpy.Context()
    rclpy.init(args=ros_args(CONFIG, {"use_sim_time": True, "imagine": False, "max_observation_age": 0.5}),
               context=ctx)
    cfg = get_preset("tiny", view_names=tuple(c.name for c in setup.cameras), action_steps=2, video_steps=4)
    node = PolicyNode(policy=XWAMPolicy.from_config(cfg), warm_up=False, context=ctx)
    live_obs, infos, js, ee = [], {}, {}, {}
    sub = Node("live_sub", context=ctx)
    keys = [f"{c.name}/{k}" for c in setup.cameras for k in ("color", "depth")]
    sync = ApproxSynchronizer(keys, setup.sync_slop, setup.sync_queue_size)
    rel = QoSProfile(depth=100)

    def on_image(key, msg):
        out = sync.add(key, stamp_to_ns(msg.header.stamp), msg)
        if out is not None:
            try:
                b = build_observation(out, infos, offline.steps[0].state, "", [c.name for c in setup.cameras],
                                      (64, 64), 8)
                live_obs.append(b)
            except ObservationError:
                pass
    for c in setup.cameras:
        sub.create_subscription(Image, c.color_topic, lambda m, k=f"{c.name}/color": on_image(k, m), rel)
        sub.create_subscription(Image, c.depth_topic, lambda m, k=f"{c.name}/depth": on_image(k, m), rel)
        sub.create_subscription(CameraInfo, c.info_topic, lambda m, n=c.name: infos.__setitem__(n, m), rel)
    player = Node("player", context=ctx)
    ex, th = _spin(ctx, [node, sub, player])
    try:
        n = play_bag(bag, player, rate=1.0, clock=True, qos=rel)
        time.sleep(1.0)
        assert n > 100 and len(live_obs) >= 10
        for b in live_obs:
            ref = by_stamp[b.stamp_ns].built
            assert np.array_equal(b.obs.rgb, ref.obs.rgb)
            assert np.array_equal(b.obs.depth, ref.obs.depth, equal_nan=True)
        # bag stamps are ~1000 s after the epoch: only a node on /clock time accepts them as fresh
        assert node.counters.get("queries", 0) >= 1 and node.counters.get("stale_dropped", 0) == 0
    finally:
        ex.shutdown()
        th.join(3)
        for n_ in (player, sub, node):
            n_.destroy_node()
        rclpy.shutdown(context=ctx)
