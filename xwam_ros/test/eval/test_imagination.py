"""Per-step imagination metrics and the static-world baseline (eval/imagination.py)."""
import dataclasses

import numpy as np
import pytest

from xwam_ros.data.episodes import EpisodeDataset
from xwam_ros.eval.imagination import METRICS, Prediction, imagination_per_step, step_metrics
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.paths import resolve_checkpoint

K = np.array([[40.0, 0, 16], [0, 40.0, 16], [0, 0, 1]])


def scene(depth_m=1.0, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    depth = np.full((2, 32, 32), depth_m, np.float32) + rng.uniform(0, 0.2, (2, 32, 32)).astype(np.float32)
    return Prediction(rgb, depth, np.stack([np.eye(4), np.eye(4)]))


def test_a_perfect_prediction_scores_perfectly_and_a_scaled_depth_scores_its_error():
    real = scene()
    same = step_metrics(real, real, [K, K], [0], 0.05, 5.0)
    assert same["psnr"] == float("inf") and same["abs_rel"] == 0 and same["delta1"] == 1 and same["chamfer_m"] == 0
    far = step_metrics(dataclasses.replace(real, depth=real.depth * 1.1), real, [K, K], [0], 0.05, 5.0)
    assert far["abs_rel"] == pytest.approx(0.1, abs=1e-6) and far["delta1"] == 1.0  # 1.1 < 1.25
    assert 0.01 < far["chamfer_m"] < 0.25  # points ~10 cm further along the rays at ~1.1 m
    # PSNR only on the static views: a wrong wrist view (index 1) does not change it
    wrist_wrong = dataclasses.replace(real, rgb=np.concatenate([real.rgb[:1], 255 - real.rgb[1:]]))
    assert step_metrics(wrist_wrong, real, [K, K], [0], 0.05, 5.0)["psnr"] == float("inf")


def test_workspace_chamfer_ignores_errors_outside_the_box():
    real = scene()  # points at 1.0-1.2 m along +z of the identity camera pose
    real.depth[:, :, :16] += 2.0  # the left half of every view is background at 3.0-3.2 m, outside the box
    back = real.depth.copy()
    back[:, :, :16] += 0.5  # a prediction wrong only there
    wrong_outside = dataclasses.replace(real, depth=back)
    box = ((-1.0, -1.0, 0.9), (1.0, 1.0, 1.3))
    m = step_metrics(wrong_outside, real, [K, K], [0], 0.05, 5.0, workspace=box)
    assert m["chamfer_m"] > 0.1 and m["chamfer_workspace_m"] == 0  # the right halves match exactly
    wrong_inside = dataclasses.replace(real, depth=real.depth * 1.1)
    assert step_metrics(wrong_inside, real, [K, K], [0], 0.05, 5.0, workspace=box)["chamfer_workspace_m"] > 0.01
    assert "chamfer_workspace_m" not in step_metrics(real, real, [K, K], [0], 0.05, 5.0)


@pytest.mark.slow
def test_per_step_table_scores_the_model_and_a_baseline_that_is_perfect_on_a_frozen_world(sim_dataset, tmp_path):
    policy = XWAMPolicy.from_pretrained(resolve_checkpoint("builtin:lift_tiny"))
    data = EpisodeDataset(sim_dataset)
    table = imagination_per_step(policy, data, [0], clips_per_episode=1)
    cfg = policy.config
    assert [r["step"] for r in table] == list(range(1, cfg.num_frames))
    assert np.allclose([r["t_s"] for r in table], [f * cfg.actions_per_frame * cfg.action_dt
                                                    for f in range(1, cfg.num_frames)])
    for r in table:
        assert all(np.isfinite(r[f"{m}_{who}"]) for m in METRICS for who in ("model", "autoencoder"))
        assert set(r["model_better"]) == set(METRICS)
        # the round trip of the real frames keeps the scene: far closer to it than the untrained-level 10 dB
        assert r["psnr_autoencoder"] > 14 and r["abs_rel_autoencoder"] < 1.0
    # freeze the world (every step shows frame 0): the baseline is then exactly right, the model is not
    ep = data[0]
    frozen = dataclasses.replace(ep, rgb=np.repeat(ep.rgb[:, :1], ep.length, 1),
                                 depth=np.repeat(ep.depth[:, :1], ep.length, 1),
                                 T_base_cam=np.repeat(ep.T_base_cam[:, :1], ep.length, 1))

    class Frozen:  # the same dataset interface, one frozen episode
        meta = data.meta

        def __getitem__(self, i):
            return frozen

    table = imagination_per_step(policy, Frozen(), [0], clips_per_episode=1)
    for r in table:
        assert r["psnr_static"] == float("inf") and r["abs_rel_static"] == 0 and r["chamfer_m_static"] == 0
        assert not r["model_better"]["chamfer_m"] and r["chamfer_m_model"] > 0
