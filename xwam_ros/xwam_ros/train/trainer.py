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
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ..geometry.depth import metric_to_inverse_depth
from ..model.config import get_preset
from ..model.loss import TrainBatch, training_loss
from ..model.noise import TimestepSample, sample_timesteps
from ..model.normalize import Normalizer
from ..model.policy import XWAMPolicy
from .checkpoint import load_trainer_state, save_training_checkpoint
from .clips import ProceduralClips
from .config import TrainConfig


# --- distributed ----------------------------------------------------------------------------------------------------
def init_distributed():
    """(rank, world_size); initialises the process group under torchrun."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _global_denominator(world: int):
    def fn(local: torch.Tensor) -> torch.Tensor:
        if world == 1:
            return local
        total = local.clone()
        dist.all_reduce(total)
        return total / world  # DDP averages gradients over ranks: this makes the result the global masked mean
    return fn


# --- data -----------------------------------------------------------------------------------------------------------
class LatentCache:
    """Frozen-encoder outputs per clip, computed once and reused across steps, epochs and runs (on disk)."""

    def __init__(self, policy: XWAMPolicy, clips, cache_dir: Path):
        self.policy, self.clips, self.dir = policy, clips, Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.encoder_calls = 0
        self._mem: dict = {}
        self._text: dict = {}

    def _codec_key(self) -> str:
        import hashlib
        h = hashlib.sha1()
        for k, v in sorted(self.policy.codec.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes()[:4096])
        return h.hexdigest()[:12]

    def item(self, i: int) -> dict:
        if i in self._mem:
            return self._mem[i]
        f = self.dir / f"clip_{i:06d}_{self._codec_key()}.pt"
        if f.is_file():
            d = torch.load(f, weights_only=True)
        else:
            d = self._encode(i)
            tmp = f.with_suffix(".tmp")
            torch.save(d, tmp)
            os.replace(tmp, f)
        self._mem[i] = d
        return d

    @torch.no_grad()
    def _encode(self, i: int) -> dict:
        self.encoder_calls += 1
        c = self.policy.config
        clip = self.clips[i]
        video = torch.from_numpy(clip.rgb).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)[None]  # [1,V,3,F,H,W]
        inv = torch.from_numpy(metric_to_inverse_depth(clip.depth, c.depth_near, c.depth_far))
        depth = inv[:, None].expand(-1, 3, -1, -1, -1)[None]  # inverse depth as 3-channel pseudo-RGB
        norm = self.policy.normalizer
        return {"video": self.policy.codec.encode(video)[0], "depth": self.policy.codec.encode(depth)[0],
                "actions": torch.from_numpy(norm.normalize_actions(clip.actions)),
                "states": torch.from_numpy(norm.normalize_states(clip.states)),
                "action_mask": torch.from_numpy(clip.action_mask), "state_mask": torch.from_numpy(clip.state_mask),
                "instruction": clip.instruction}

    def text(self, instruction: str) -> torch.Tensor:
        if instruction not in self._text:
            self._text[instruction] = self.policy.text_encoder.encode([instruction])[0].detach()
        return self._text[instruction]


def fit_normalizer(clips) -> Normalizer:
    acts = np.concatenate([clips[i].actions for i in range(len(clips))])
    sts = np.concatenate([clips[i].states for i in range(len(clips))])
    return Normalizer.fit(acts, sts, passthrough_state_dims=(3, 4, 5, 6))


def make_batch(cache: LatentCache, indices, with_depth: bool) -> TrainBatch:
    items = [cache.item(int(i)) for i in indices]
    texts = [cache.text(it["instruction"]) for it in items]
    n = max(t.shape[0] for t in texts)
    text = torch.stack([torch.cat([t, t.new_zeros(n - t.shape[0], t.shape[1])]) for t in texts])
    st = lambda k: torch.stack([it[k] for it in items])  # noqa: E731
    return TrainBatch(st("video"), st("actions"), st("states"), text, st("action_mask"), st("state_mask"),
                      st("depth") if with_depth else None)


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


def lr_lambda(cfg: TrainConfig):
    def f(step):
        if step < cfg.warmup:
            return (step + 1) / (cfg.warmup + 1)
        p = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))
    return f


def build_policy(cfg: TrainConfig, clips_cfg=None) -> XWAMPolicy:
    if cfg.init_from and not cfg.init_from.startswith(("official:", "wan:")):
        return XWAMPolicy.from_pretrained(cfg.init_from)
    mcfg = get_preset(cfg.preset, **cfg.model)
    policy = XWAMPolicy.from_config(mcfg, seed=cfg.seed)
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
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    out = Path(cfg.out_dir)
    policy = build_policy(cfg)
    mcfg = policy.config
    clips = ProceduralClips(mcfg, cfg.num_clips, seed=cfg.seed)
    if not cfg.init_from:
        policy.normalizer = fit_normalizer(clips)
    cache = LatentCache(policy, clips, Path(cfg.cache_dir or out / "latent_cache"))
    empty_text = policy.text_encoder.encode([""])[0].detach()
    net = policy.transformer.to(device).train()
    net.gradient_checkpointing = cfg.gradient_checkpointing
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    step = 0
    if resume:
        step = load_trainer_state(out / "last", net, opt, sched)
        log(f"[train] resumed at step {step}")
    per_rank = cfg.batch_size // world
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu",
                                                                                                     enabled=False)
    metrics_f = out / "metrics.jsonl"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    bar = _bar(cfg.steps, step, rank == 0)
    history = []
    t_last = time.perf_counter()
    end = min(cfg.steps, stop_after or cfg.steps)
    while step < end:
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        order = torch.randperm(len(clips), generator=g)  # the global batch: same on every rank
        global_idx = [int(order[k % len(clips)]) for k in range(cfg.batch_size)]
        mine = global_idx[rank * per_rank:(rank + 1) * per_rank]
        slots = list(range(rank * per_rank, (rank + 1) * per_rank))
        batch = make_batch(cache, mine, cfg.depth_loss).to(device)
        draws = sample_draws(cfg, batch, step, [step * cfg.batch_size + s for s in slots])
        with amp:
            losses = training_loss(model, batch, empty_text=empty_text.to(device), denom_fn=_global_denominator(world),
                                   **draws)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        gnorm = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        row = {"step": step, **{k: float(v.detach()) for k, v in losses.items()}, "lr": sched.get_last_lr()[0],
               "grad_norm": float(gnorm)}
        if world > 1:
            t = torch.tensor([row["loss"]])
            dist.all_reduce(t)
            row["loss"] = float(t) / world * 1.0
        history.append(row)
        if rank == 0:
            if step % cfg.log_every == 0 or step == cfg.steps:
                now = time.perf_counter()
                row["it_per_s"] = cfg.log_every / (now - t_last)
                t_last = now
                with open(metrics_f, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if step % cfg.ckpt_every == 0 or step == end:
                save_training_checkpoint(out, policy, opt, sched, step, cfg, keep_last=cfg.keep_last)
        if world > 1:
            dist.barrier()
    bar.close()
    net.eval()
    return {"history": history, "encoder_calls": cache.encoder_calls, "policy": policy}


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
