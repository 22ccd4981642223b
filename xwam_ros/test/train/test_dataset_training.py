"""The trainer on a real episode dataset (simulator demonstrations): held-out episodes, stats from the data."""
import numpy as np
import pytest

from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.train.config import TrainConfig
from xwam_ros.train.trainer import make_clips, train


@pytest.mark.slow  # sim_dataset + training
def test_training_on_sim_demos_lowers_the_loss_and_keeps_validation_episodes_out(sim_dataset, tmp_path):
    cfg = TrainConfig(data=str(sim_dataset), val_episodes=1, val_clips=2, val_every=30, batch_size=4, steps=30,
                      warmup=2, lr=3e-3, text_dropout=0.0, log_every=10, ckpt_every=30,
                      out_dir=str(tmp_path)).validate()
    res = train(cfg, log=lambda *_: None)
    losses = [h["loss"] for h in res["history"]]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert "val/action_mae" in res["history"][-1]
    clips, train_ids, val_ids = make_clips(cfg, res["policy"].config)
    assert {clips.index[i][0] for i in train_ids} == {0} and {clips.index[i][0] for i in val_ids} == {1}
    policy = XWAMPolicy.from_pretrained(tmp_path / "last")
    # what the dataset says about the robot travelled into the checkpoint
    assert policy.config.gripper_action == "absolute" and policy.config.action_dt == 0.05
    assert policy.normalizer.action_high[6] == 1.0  # gripper commands are +-1
