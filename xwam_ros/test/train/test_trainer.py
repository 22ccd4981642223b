"""The trainer on real tiny models and the built-in procedural clips."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from xwam_ros.model.policy import Observation, XWAMPolicy
from xwam_ros.train.clips import ProceduralClips
from xwam_ros.train.config import TrainConfig
from xwam_ros.train.trainer import train

BASE = dict(num_clips=4, batch_size=4, steps=6, warmup=1, log_every=2, ckpt_every=3, lr=2e-3, text_dropout=0.25)


def _cfg(tmp, **kw):
    return TrainConfig(**{**BASE, "out_dir": str(tmp), **kw}).validate()


# Bounds of the overfit check, from a measured spread (scratch script: the body of this test with TrainConfig seed 0
# or 1, AMD EPYC, torch.set_num_threads(1); plus the Intel Xeon run of seed 0):
#   loss drop (first 10 / last 10 steps): seed 0: 12.0x, seed 1: 33.9x                      -> bound 5x
#   policy-path error / untrained error (policy seeds 0, 1):
#                                         seed 0: 0.19, 0.20 (AMD), 0.22 (Intel: 0.2063 / 0.92)
#                                         seed 1: 0.48, 0.50                                 -> bound 0.65
#   two threads (torch.set_num_threads(2)), seed 0: loss drop 20.3x, ratio 0.11, 0.11 (seed 1 not finished: the
#   shared machine ran at load ~13); the suite itself pins one thread (test/conftest.py)
# 350 steps at lr 1e-2 amplify kernel rounding, so the error moves with the CPU and the thread count (0.19 -> 0.22
# AMD -> Intel, 0.19 -> 0.11 one -> two threads); the ratio bound sits 30 % above the worst run (seed 1) and 3x
# above every run of the seed this test uses; the loss-drop bound 2.4x below the smallest drop. It fails when
# training is broken: with the action loss weighted 0 (mutation) the loss still drops 18x (video and state learn),
# but the ratio is 1.00.
MIN_LOSS_DROP = 5.0
MAX_ERR_RATIO = 0.65


@pytest.mark.slow
def test_tiny_model_overfits_one_clip_and_the_policy_path_reproduces_its_actions(tmp_path):
    """Issue 2's overfit check, through the real trainer: one clip, random ANS draws, the loss falls, and the
    10-call asynchronous policy path then returns that clip's actions far better than an untrained model."""
    cfg = _cfg(tmp_path, num_clips=1, steps=350, warmup=5, lr=1e-2, text_dropout=0.0, depth_loss=False,
               log_every=50, ckpt_every=350)
    res = train(cfg, log=lambda *_: None)
    losses = [h["loss"] for h in res["history"]]
    assert np.mean(losses[:10]) / np.mean(losses[-10:]) > MIN_LOSS_DROP
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 350 and {"video", "action", "state", "lr", "grad_norm", "it_per_s"} <= set(rows[-1])
    policy = XWAMPolicy.from_pretrained(tmp_path / "last")
    clip = ProceduralClips(policy.config, 1)[0]
    obs = Observation(clip.rgb[:, 0], clip.states[0], clip.instruction)
    norm = policy.normalizer.normalize_actions
    target = norm(clip.actions)[:, :7]
    untrained = XWAMPolicy.from_config(policy.config, seed=5, normalizer=policy.normalizer)
    for seed in (0, 1):
        err = np.abs(norm(policy.predict_action_chunk(obs, seed=seed).actions)[:, :7] - target).mean()
        base = np.abs(norm(untrained.predict_action_chunk(obs, seed=seed).actions)[:, :7] - target).mean()
        assert err < MAX_ERR_RATIO * base, (err, base)


@pytest.mark.slow  # trains twice; test_parts checks the cache in the fast tier
def test_resume_is_exact(tmp_path):
    full = train(_cfg(tmp_path / "full"), log=lambda *_: None)
    half_cfg = _cfg(tmp_path / "half")
    train(half_cfg, log=lambda *_: None, stop_after=3)  # preempted after 3 of 6 steps
    resumed = train(half_cfg, resume=True, log=lambda *_: None)
    a = load_file(str(tmp_path / "full" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "half" / "last" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"][3:]]


@pytest.mark.slow  # trains twice; test_parts checks the cache in the fast tier
def test_latent_cache_is_reused_across_runs(tmp_path):
    cache = tmp_path / "cache"
    r1 = train(_cfg(tmp_path / "a", steps=2, cache_dir=str(cache)), log=lambda *_: None)
    r2 = train(_cfg(tmp_path / "b", steps=2, cache_dir=str(cache)), log=lambda *_: None)
    # every training and validation clip is encoded once, up front, then never again
    assert r1["encoder_calls"] == 4 + 2 and r2["encoder_calls"] == 0


@pytest.mark.slow  # trains, then resumes into a failing save (~5 s)
def test_atomic_checkpoint_survives_a_crash_mid_write(tmp_path, monkeypatch):
    train(_cfg(tmp_path, steps=6, ckpt_every=3), log=lambda *_: None, stop_after=3)
    before = load_file(str(tmp_path / "last" / "model.safetensors"))
    import xwam_ros.train.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ck.torch, "save", boom)
    with pytest.raises(OSError):
        train(_cfg(tmp_path, steps=6, ckpt_every=3), resume=True, log=lambda *_: None)
    after = load_file(str(tmp_path / "last" / "model.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not list(tmp_path.glob(".tmp_step_*"))


def test_config_validation():
    with pytest.raises(ValueError, match="sampler"):
        TrainConfig(sampler="magic").validate()
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(steps=5, warmup=10).validate()
    with pytest.raises(ValueError, match="unknown fields"):
        TrainConfig.load(None, ["learning_rate=1"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_torchrun_matches_one_process(tmp_path):
    one = _cfg(tmp_path / "one", steps=3, ckpt_every=3)
    train(one, log=lambda *_: None)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "xwam_ros.train.trainer",
           *[f"{k}={v}" for k, v in {**BASE, "steps": 3, "ckpt_every": 3, "out_dir": str(tmp_path / "two")}.items()]]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    a = load_file(str(tmp_path / "one" / "last" / "model.safetensors"))
    b = load_file(str(tmp_path / "two" / "last" / "model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6), k
