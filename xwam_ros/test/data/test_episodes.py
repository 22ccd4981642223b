"""The episode dataset format and the clips the trainer cuts from it."""
import json

import numpy as np
import pytest

from xwam_ros.data.clips import EpisodeClips, cut_clip, dataset_arrays
from xwam_ros.data.convert import compute_stats
from xwam_ros.data.episodes import DatasetError, EpisodeDataset, read_episode, write_episode
from xwam_ros.model.actions import decode_ee_deltas
from xwam_ros.model.config import get_preset


@pytest.mark.slow  # sim_dataset: two robosuite episodes
def test_round_trip_and_actions_integrate_back_to_the_states(sim_dataset, tmp_path):
    data = EpisodeDataset(sim_dataset)
    ep = data[0]
    assert data.meta.view_names == ("agentview", "sideview", "eye_in_hand") and ep.success
    p = write_episode(tmp_path / "e.npz", ep)
    back = read_episode(p)
    assert np.array_equal(back.rgb, ep.rgb) and np.array_equal(back.states, ep.states)
    assert np.allclose(np.nan_to_num(back.depth), np.nan_to_num(ep.depth), atol=5e-4)  # millimetres
    # EE deltas accumulated from the first state retrace the recorded path (what the robot executes)
    poses = decode_ee_deltas(ep.actions, ep.states[0, :3], ep.states[0, 3:7], gripper_mode="absolute")
    assert np.abs(poses[:-1, :3] - ep.states[1:, :3]).max() < 1e-4
    assert set(np.unique(ep.actions[:, 6])) <= {-1.0, 1.0}  # gripper commands


@pytest.mark.slow  # sim_dataset: two robosuite episodes
def test_bad_files_are_named(sim_dataset, tmp_path):
    bad = tmp_path / "episode_000000.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="episode_000000.npz"):
        read_episode(bad)
    with pytest.raises(DatasetError, match="meta.json"):
        EpisodeDataset(tmp_path)
    ep = EpisodeDataset(sim_dataset)[0]
    ep.states[3, 0] = np.nan
    with pytest.raises(DatasetError, match="states contains NaN"):
        write_episode(tmp_path / "x.npz", ep)


@pytest.mark.slow  # sim_dataset: two robosuite episodes
def test_clips_pad_the_end_with_a_hold_and_match_the_model_layout(sim_dataset):
    cfg = get_preset("tiny")
    clips = EpisodeClips(sim_dataset, cfg)
    ep = clips.episode(0)
    c = clips[0]
    assert c.rgb.shape == (3, cfg.num_frames, 64, 64, 3) and c.actions.shape == (cfg.num_actions, 7)
    assert np.array_equal(c.states[0], ep.states[0])
    last = cut_clip(ep, ep.length - 5, cfg)
    assert np.all(last.actions[5:, :6] == 0) and np.all(last.actions[5:, 6] == ep.actions[-1, 6])
    assert np.array_equal(last.states[-1], ep.states[-1])
    with pytest.raises(DatasetError, match="views"):
        EpisodeClips(sim_dataset, get_preset("tiny", view_names=("a", "b", "c")))


@pytest.mark.slow  # sim_dataset: two robosuite episodes
def test_stats_are_quantiles_with_symmetric_actions(sim_dataset):
    stats = compute_stats(sim_dataset)
    acts, sts = dataset_arrays(sim_dataset)
    assert np.allclose(stats["action"]["high"], -np.asarray(stats["action"]["low"]))
    assert np.allclose(stats["state"]["low"], np.quantile(sts, 0.01, axis=0), atol=1e-6)
    assert json.loads((sim_dataset / "stats.json").read_text())["steps"] == len(acts)


def _depth_episode(depths_m: list, T: int = 20, hw: int = 32) -> "Episode":
    from xwam_ros.data.episodes import Episode
    V = len(depths_m)
    rng = np.random.default_rng(0)
    depth = np.stack([rng.uniform(lo, hi, (T, hw, hw)) for lo, hi in depths_m]).astype(np.float32)
    depth[0, :, 0, 0] = np.nan  # no reading: ignored
    return Episode(np.zeros((V, T, hw, hw, 3), np.uint8), depth, np.tile(np.eye(3), (V, 1, 1)),
                   np.tile(np.eye(4), (V, T, 1, 1)), np.zeros((T, 8), np.float32), np.zeros((T, 7), np.float32))


def test_measured_depth_ranges_bracket_each_views_depths(tmp_path):
    from xwam_ros.data.clips import measured_depth_ranges
    from xwam_ros.data.episodes import DatasetMeta
    EpisodeDataset.create(tmp_path, DatasetMeta(20.0, ("front", "wrist"), ("static", "wrist"), tuple("s" * 8),
                                                tuple("a" * 7)))
    for i in range(3):
        write_episode(EpisodeDataset.episode_path(tmp_path, i), _depth_episode([(0.6, 2.5), (0.05, 0.3)]))
    (front_near, front_far), (wrist_near, wrist_far) = measured_depth_ranges(tmp_path, range(3))
    assert 0.6 * 0.8 - 0.002 <= front_near < 0.6 and 2.5 < front_far <= 2.5 * 1.2 + 0.002
    assert 0.05 * 0.8 - 0.002 <= wrist_near < 0.05 and 0.3 < wrist_far <= 0.3 * 1.2 + 0.002
    write_episode(EpisodeDataset.episode_path(tmp_path, 3), _depth_episode([(0.6, 2.5), (0.05, 0.3)]))
    ep = _depth_episode([(0.6, 2.5), (0.05, 0.3)])
    ep.depth[1] = np.nan  # a view that never reads depth: no range can be measured
    write_episode(EpisodeDataset.episode_path(tmp_path, 4), ep)
    assert measured_depth_ranges(tmp_path, [4]) is None


def test_measured_depth_ranges_are_measured_again_when_an_episode_changes(tmp_path):
    from xwam_ros.data import clips
    from xwam_ros.data.episodes import DatasetMeta
    EpisodeDataset.create(tmp_path, DatasetMeta(20.0, ("front",), ("static",), tuple("s" * 8), tuple("a" * 7)))
    path = EpisodeDataset.episode_path(tmp_path, 0)
    write_episode(path, _depth_episode([(0.6, 2.5)]))
    first = clips.measured_depth_ranges(tmp_path, [0])
    assert clips.measured_depth_ranges(tmp_path, [0]) == first  # the second ask is served from memory
    write_episode(path, _depth_episode([(1.0, 4.0)]))  # re-recorded: a stale range would clip the new depths
    (near, far), = clips.measured_depth_ranges(tmp_path, [0])
    assert 0.8 - 0.002 <= near < 1.0 and 4.0 < far <= 4.8 + 0.002
