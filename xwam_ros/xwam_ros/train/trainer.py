"""The X-WAM trainer: one command, single process or ``torchrun`` (DDP: gloo on CPU, nccl on GPU).

    xwam-ros train --config config/train_tiny.yaml [key=value ...] [--resume]
    torchrun --nproc_per_node 2 -m xwam_ros.train.trainer --config config/train_tiny.yaml

Only the DiT trains; the VAE and text encoder are frozen and their outputs cached (latents per clip, embeddings per
instruction). Every random draw of a sample (timesteps, noise, text dropout) comes from a generator seeded by
(seed, step, global sample index), so any number of processes sees the same per-sample randomness as one.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..model.config import get_preset
from ..model.layout import StateLayout
from ..model.loss import TrainBatch, training_loss
from ..model.noise import TimestepSample, sample_timesteps
from ..model.normalize import Normalizer
from ..model.policy import XWAMPolicy
from .distributed import device_for, global_denominator, init_distributed, mean_over_ranks, wrap_model
from .latent_cache import LatentCache, make_batch
from .optim import build_optimizer
from .checkpoint import load_trainer_state, save_training_checkpoint
from .clips import ProceduralClips
from .config import TrainConfig
from .validate import validate


# --- data -----------------------------------------------------------------------------------------------------------
def fit_normalizer(clips) -> Normalizer:
    acts = np.concatenate([clips[i].actions for i in range(len(clips))])
    sts = np.concatenate([clips[i].states for i in range(len(clips))])
    quaternions = StateLayout.from_state_dim(sts.shape[1], "the clips' state width").quaternion_indices()
    return Normalizer.fit(acts, sts, passthrough_state_dims=quaternions)


def make_clips(cfg: TrainConfig, model_cfg):
    """(clip source, training clip ids, validation clip ids). Validation never sees a training episode."""
    if cfg.data == "procedural":
        clips = ProceduralClips(model_cfg, cfg.num_clips + cfg.val_clips, seed=cfg.seed)
        return clips, list(range(cfg.num_clips)), list(range(cfg.num_clips, cfg.num_clips + cfg.val_clips))
    from ..data.clips import EpisodeClips
    clips = EpisodeClips(cfg.data, model_cfg, stride=cfg.clip_stride or None)
    n = len(clips.episode_ids)
    if cfg.val_episodes >= n:
        raise ValueError(f"val_episodes={cfg.val_episodes} leaves no training episode ({n} in {cfg.data})")
    train_ids = clips.clips_of(range(n - cfg.val_episodes))
    held = clips.clips_of(range(n - cfg.val_episodes, n))
    # spread the validation clips over the held-out episodes and over time within them
    val_ids = [held[int(k)] for k in np.linspace(0, len(held) - 1, min(cfg.val_clips, len(held)))] if held else []
    return clips, train_ids, val_ids


def fit_stats(cfg: TrainConfig, clips, train_ids) -> Normalizer:
    """q01/q99 statistics of the training data (every step of every training episode for datasets)."""
    if cfg.data == "procedural":
        return fit_normalizer([clips[i] for i in train_ids])
    from ..data.clips import dataset_normalizer
    n = len(clips.episode_ids) - cfg.val_episodes
    return dataset_normalizer(cfg.data, range(n), clips.cfg.action_dim, clips.cfg.state_dim)[0]


def sample_draws(cfg: TrainConfig, batch: TrainBatch, step: int, global_indices) -> dict:
    """Per-sample timesteps, noise and text dropout from generators keyed by (seed, step, global index)."""
    ts, nv, na, ns, drop = [], [], [], [], []
    for gi in global_indices:
        g = torch.Generator().manual_seed(hash((cfg.seed, step, int(gi))) % (2 ** 62))
        t = sample_timesteps(cfg.sampler, 1, g, p_clean=cfg.p_clean)
        ts.append(t)
        nv.append(torch.randn(batch.video_latents.shape[1:], generator=g))
        na.append(torch.randn(batch.actions.shape[1:], generator=g))
        ns.append(torch.randn(batch.states.shape[1:], generator=g))
        drop.append(bool(torch.rand(1, generator=g) < cfg.text_dropout))
    return {"timesteps": TimestepSample(torch.cat([t.sigma_video for t in ts]),
                                        torch.cat([t.sigma_action for t in ts]),
                                        torch.cat([t.clean_action for t in ts])),
            "noise": (torch.stack(nv), torch.stack(na), torch.stack(ns)), "text_drop": torch.tensor(drop)}


def dataset_overrides(cfg: TrainConfig) -> dict:
    """What the dataset itself says about the robot: control rate, camera kinds, action conventions, and each
    camera's depth range as measured on the training episodes."""
    if cfg.data == "procedural":
        return {}
    from ..data.clips import measured_depth_ranges
    from ..data.episodes import EpisodeDataset
    data = EpisodeDataset(cfg.data)
    m = data.meta
    out = {"action_dt": 1.0 / m.fps, "view_names": tuple(m.view_names), "view_kinds": tuple(m.view_kinds),
           "action_space": m.action_space, "gripper_action": m.gripper_action}
    ranges = measured_depth_ranges(cfg.data, range(max(1, len(data) - cfg.val_episodes)))
    return {**out, "depth_ranges": ranges} if ranges else out


def model_config(cfg: TrainConfig):
    """The model config a training run builds: the preset, what the dataset says, then ``cfg.model``."""
    return get_preset(cfg.preset, **{**dataset_overrides(cfg), **cfg.model})


def build_policy(cfg: TrainConfig, clips_cfg=None) -> XWAMPolicy:
    if cfg.init_from and not cfg.init_from.startswith(("official:", "wan:")):
        return XWAMPolicy.from_pretrained(cfg.init_from)
    mcfg = model_config(cfg)
    policy = XWAMPolicy.from_config(mcfg, seed=cfg.seed)
    if cfg.vae:  # e.g. the recipe's reconstruction-trained tiny VAE, or a Wan2.2 VAE in diffusers layout
        from ..model.vae import LatentCodec
        policy.codec = LatentCodec.from_pretrained(cfg.vae).check_matches(mcfg).eval()
    if cfg.init_from.startswith("official:"):
        from ..model.loading import load_official_xwam
        policy.transformer = load_official_xwam(cfg.init_from[9:], mcfg)[0]
    elif cfg.init_from.startswith("wan:"):
        from ..model.loading import load_wan22_base
        policy.transformer = load_wan22_base(cfg.init_from[4:], mcfg)
    return policy


# --- the loop -------------------------------------------------------------------------------------------------------
def train(cfg: TrainConfig, resume: bool = False, log=print, stop_after: int | None = None) -> dict:
    """Train to ``cfg.steps`` (or stop after ``stop_after`` steps, checkpointed, as a preempted job would)."""
    cfg.validate()
    rank, world = init_distributed()
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {world} processes")
    torch.manual_seed(cfg.seed)
    device = device_for(rank)
    out = Path(cfg.out_dir)
    policy = build_policy(cfg).to(device)  # transformer, VAE and text encoder on one device (validation uses all)
    clips, train_ids, val_ids = make_clips(cfg, policy.config)
    if not cfg.init_from:
        policy.normalizer = fit_stats(cfg, clips, train_ids)
    cache = LatentCache(policy, clips, Path(cfg.cache_dir or out / "latent_cache"))
    if rank == 0:
        cache.warm(list(train_ids) + list(val_ids))
    if world > 1:
        dist.barrier()  # the other ranks then load every clip from disk
    empty_text = policy.text_encoder.encode([""])[0].detach().to(device)
    net = policy.transformer.train()
    net.gradient_checkpointing = cfg.gradient_checkpointing
    model = wrap_model(net, world, device)
    opt, sched = build_optimizer(cfg, net.parameters())
    step = 0
    if resume:
        step = load_trainer_state(out / "last", net, opt, sched)
        log(f"[train] resumed at step {step}")
    per_rank = cfg.batch_size // world
    # bf16 autocast on GPU only: on this class of CPU bf16 matmuls are slower than fp32
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    bar = _bar(cfg.steps, step, rank == 0)
    history = []
    t_last = time.perf_counter()
    end = min(cfg.steps, stop_after or cfg.steps)
    while step < end:
        # the global batch is a function of (seed, step) only: identical on every rank and after a resume
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        order = torch.randperm(len(train_ids), generator=g)
        global_idx = [train_ids[int(order[k % len(train_ids)])] for k in range(cfg.batch_size)]
        slots = list(range(rank * per_rank, (rank + 1) * per_rank))
        batch = make_batch(cache, [global_idx[s] for s in slots], cfg.depth_loss).to(device)
        draws = sample_draws(cfg, batch, step, [step * cfg.batch_size + s for s in slots])
        with amp:
            losses = training_loss(model, batch, empty_text=empty_text, denom_fn=global_denominator(world), **draws)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}, "lr": sched.get_last_lr()[0],
               "grad_norm": float(gnorm)}
        row["loss"] = mean_over_ranks(row["loss"], world)
        history.append(row)
        if rank == 0:
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                row["it_per_s"] = cfg.log_every / (now - t_last)
                t_last = now
                _append(out / "metrics.jsonl", row)
            if cfg.val_every and (step % cfg.val_every == 0 or step == cfg.steps):
                val = validate(policy, clips, val_ids,
                               imagine=cfg.val_imagine, seed=cfg.seed)
                _append(out / "metrics.jsonl", {"step": step, **val})
                row.update(val)
                net.train()
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if step % cfg.ckpt_every == 0 or step == end:
                save_training_checkpoint(out, policy, opt, sched, step, cfg, keep_last=cfg.keep_last)
        if world > 1:
            dist.barrier()
    bar.close()
    net.eval()
    return {"history": history, "encoder_calls": cache.encoder_calls, "policy": policy}


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(row) + "\n")


def _bar(total, start, enabled):
    from tqdm import tqdm
    return tqdm(total=total, initial=start, desc="train", disable=not enabled)


def train_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros train", description="Train or fine-tune X-WAM (ANS by default).")
    ap.add_argument("--config", default=None, help="TrainConfig YAML (e.g. config/train_tiny.yaml)")
    ap.add_argument("--resume", action="store_true", help="continue exactly from <out_dir>/last")
    ap.add_argument("overrides", nargs="*", help="key=value overrides, e.g. steps=500 sampler=independent")
    a = ap.parse_args(argv)
    cfg = TrainConfig.load(a.config, a.overrides)
    res = train(cfg, resume=a.resume)
    if not dist.is_initialized() or dist.get_rank() == 0:
        h = res["history"]
        print(f"[train] done: loss {h[0]['loss']:.4f} -> {h[-1]['loss']:.4f}; checkpoint {Path(cfg.out_dir) / 'last'}")
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(train_main())
