"""Demonstrations convert both ways: episode <-> bag (lossless) and episode <-> official X-WAM layout."""
import numpy as np
import pytest

from xwam_ros.data.bags import bag_to_episode, episode_to_bag
from xwam_ros.data.convert import bags_to_dataset, dataset_to_official, official_to_dataset
from xwam_ros.data.episodes import DatasetError, EpisodeDataset
from xwam_ros.data.official import import_official, official_episodes
from xwam_ros.data.bag_reader import BagError
from xwam_ros.robot.config_file import load_setup
from xwam_ros.ros.graph import share_file


@pytest.fixture(scope="module")
def setup():
    return load_setup(share_file("config", "policy.yaml"))


@pytest.mark.slow
def test_episode_to_bag_and_back_is_lossless(sim_dataset, setup, tmp_path):
    data = EpisodeDataset(sim_dataset)
    ep = data[0]
    bag = episode_to_bag(ep, data.meta, tmp_path / "ep", setup)
    out = bags_to_dataset([bag, tmp_path / "missing.mcap"], share_file("config", "policy.yaml"), tmp_path / "ds",
                          "absolute", data.meta.fps, log=lambda *_: None)
    back = EpisodeDataset(out)
    assert len(back) == 1  # the missing bag is skipped, the good one kept
    b = back[0]
    assert b.length == ep.length and b.instruction == ep.instruction
    assert np.array_equal(b.rgb, ep.rgb) and np.array_equal(b.states, ep.states)
    assert np.array_equal(np.isnan(b.depth), np.isnan(ep.depth))
    assert np.nanmax(np.abs(b.depth - ep.depth)) < 1e-6
    assert np.array_equal(b.K, ep.K) and np.abs(b.T_base_cam - ep.T_base_cam).max() < 1e-5
    assert np.abs(b.actions - ep.actions).max() < 1e-6


@pytest.mark.slow  # sim_dataset: two robosuite episodes
def test_bag_without_the_controller_topic_is_named(sim_dataset, setup, tmp_path):
    from rosbags.rosbag2 import Reader, Writer
    data = EpisodeDataset(sim_dataset)
    bag = episode_to_bag(data[0], data.meta, tmp_path / "full", setup)
    # copy without the controller commands: absolute gripper actions are then impossible, deltas still work
    with Reader(bag) as r, Writer(tmp_path / "nocmd", version=9) as w:
        conns = {}
        for c in r.connections:
            if c.topic != setup.controller_topic:
                conns[c.id] = w.add_connection(c.topic, c.msgtype, typestore=None, msgdef=c.msgdef.data,
                                               rihs01=c.digest)
        for c, t, raw in r.messages():
            if c.id in conns:
                w.write(conns[c.id], t, raw)
    with pytest.raises(BagError, match="joint_trajectory"):
        bag_to_episode(tmp_path / "nocmd", setup, "absolute")
    assert bag_to_episode(tmp_path / "nocmd", setup, "delta").length == data[0].length


@pytest.mark.slow
def test_official_layout_round_trip(sim_dataset, tmp_path):
    data = EpisodeDataset(sim_dataset)
    root = dataset_to_official(sim_dataset, tmp_path / "official", near=0.1, far=3.0, log=lambda *_: None)
    assert (root / "metadata.json").is_file() and len(official_episodes(root)) == len(data)
    out = official_to_dataset(root, tmp_path / "ds", list(data.meta.view_names), 0.1, 3.0, data.meta.fps,
                              log=lambda *_: None)
    ep, back = data[1], EpisodeDataset(out)[1]
    assert np.array_equal(back.rgb, ep.rgb)  # crf 0: H.264 RGB is lossless
    assert np.abs(back.states - ep.states).max() < 1e-6 and np.abs(back.actions - ep.actions).max() < 1e-6
    inside = np.isfinite(ep.depth) & (ep.depth > 0.1) & (ep.depth < 3.0)
    inv = lambda d: 1.0 / d  # noqa: E731 -- 8-bit inverse depth: one grey level is (1/near - 1/far) / 255
    assert np.abs(inv(back.depth[inside]) - inv(ep.depth[inside])).max() <= (10 - 1 / 3) / 255 + 1e-4


@pytest.mark.slow
def test_official_layout_without_calibration_needs_cameras(sim_dataset, tmp_path):
    import json
    root = dataset_to_official(sim_dataset, tmp_path / "o", near=0.1, far=3.0, log=lambda *_: None)
    f = official_episodes(root)[0]
    doc = json.loads(f.read_text())
    doc.pop("xwam_ros")
    f.write_text(json.dumps(doc))
    views = list(EpisodeDataset(sim_dataset).meta.view_names)
    with pytest.raises(DatasetError, match="calibration"):
        import_official(f, root, views, 0.1, 3.0)
    cams = {v: {"K": np.eye(3).tolist(), "extrinsic": np.eye(4).tolist(), "kind": "static"} for v in views}
    assert import_official(f, root, views, 0.1, 3.0, cams).length == doc["num_frames"]
