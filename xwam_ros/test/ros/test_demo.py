"""The built-in default writes a readable MCAP of the imagined future and a PNG snapshot."""
from collections import Counter

import cv2

from xwam_ros.eval.bag_reader import bag_topics, iter_messages
from xwam_ros.ros.demo import run_demo


def test_demo_writes_mcap_and_png(tmp_path):
    s = run_demo(duration=60, out_dir=tmp_path, max_imaginations=1, log=lambda *_: None)
    assert s["counters"]["imaginations"] >= 1 and s["counters"]["trajectories_sent"] >= 1
    topics = bag_topics(s["bag"])
    n = Counter(t for t, _, _ in iter_messages(s["bag"], list(topics)))
    assert n["/xwam_policy/imagined/future"] >= 1 and n["/xwam_policy/imagined/points"] >= 8
    img = cv2.imread(s["png"])
    assert img is not None and img.shape[0] > 100 and img.std() > 1.0
