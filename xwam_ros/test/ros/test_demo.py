"""The built-in default: the simulated Panda + the shipped policy through the ROS graph (policy.launch.py through
the launch API where launch is installed, else the in-process graph), for one episode; it reports the episode from
the policy's ~/status topic, records a readable MCAP of the imagined future and writes a PNG snapshot. The procedural
gantry config still runs the same demo path."""
import os
from collections import Counter

import cv2
import numpy as np
import pytest

from xwam_ros.data.bag_reader import bag_topics, iter_messages
from xwam_ros.ros.demo import run_demo
from xwam_ros.ros.graph import launch_available, share_file

# the launched nodes inherit this: one torch thread each, as test/conftest.py sets in-process (2 shared cores)
os.environ.setdefault("OMP_NUM_THREADS", "1")
pytestmark = pytest.mark.slow


def test_default_demo_runs_an_episode_of_the_simulated_robot(tmp_path):
    s = run_demo(duration=120, out_dir=tmp_path, episodes=1, log=lambda *_: None)
    assert s["graph"] == ("launch" if launch_available() else "in-process")  # policy.launch.py where installed
    assert len(s["episodes"]) == 1 and s["episodes"][0]["steps"] > 0
    c = s["counters"]
    assert c.get("trajectories_sent", 0) >= 1 and c.get("imaginations", 0) >= 1, c
    topics = bag_topics(s["bag"])
    n = Counter(t for t, _, _ in iter_messages(s["bag"], list(topics)))
    assert n["/xwam_policy/imagined/future"] >= 1 and n["/arm_controller/joint_trajectory"] >= 1
    # the arm reaches for the cube: Lift places it within +-5 cm of the table centre (0, 0), top at ~0.82-0.85 m;
    # the grip site starts ~20 cm above it and only a policy that goes for the cube comes down onto it
    xyz = np.array([m.position[:3] for _, _, m in iter_messages(s["bag"], ["/joint_states"])])
    assert xyz[0, 2] > 0.95, xyz[0]
    near = (np.linalg.norm(xyz[:, :2], axis=1) < 0.08) & (xyz[:, 2] < 0.87)
    assert near.any(), (xyz[::20].round(3).tolist(), s["episodes"])
    img = cv2.imread(s["png"])
    assert img is not None and img.shape[0] > 100 and img.std() > 1.0


def test_gantry_demo_writes_mcap_and_png(tmp_path):
    s = run_demo(duration=60, out_dir=tmp_path, config_file=share_file("config", "gantry.yaml"),
                 max_imaginations=1, log=lambda *_: None)
    assert s["counters"].get("imaginations", 0) >= 1, s["counters"]
    n = Counter(t for t, _, _ in iter_messages(s["bag"], list(bag_topics(s["bag"]))))
    assert n["/xwam_policy/imagined/future"] >= 1 and n["/xwam_policy/imagined/points"] >= 8
