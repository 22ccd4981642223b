"""One command from a seed to the tiny policy checkpoint the built-in demo ships (about 3 h on 2 CPU cores).

    xwam-ros recipe --out runs/recipe --seed 0            # full: simulator demos -> VAE -> X-WAM
    xwam-ros recipe --out /tmp/r --smoke                  # every stage for a few steps (minutes)

Stages (timed, written to ``<out>/recipe.json``):
1. demos: the scripted expert in the robosuite Lift simulator, recorded as an episode dataset (``sim/rollout.py``);
   ``--data DIR`` reuses an existing dataset instead (e.g. converted from your robot's bags);
2. VAE: a tiny member of the Wan2.2 VAE family (``LatentCodec.tiny``: the same AutoencoderKLWan code path as the
   5B's VAE, at stride 8: 8x8 latents per 64x64 view) trained for reconstruction on the demos' RGB and
   inverse-depth frames (each camera on its own measured depth range), then its per-channel latent mean/std
   measured and stored in its config (as Wan2.2's latents_mean/std); then its decoder alone refined on whole clips
   (``refine_decoder``: the later causal chunks, which 5-frame windows never reach);
3. normalisation stats (q01/q99, symmetric for actions) of the training episodes (saved with the checkpoint);
4. the tiny X-WAM trained through the normal trainer (ANS unless ``--sampler``); ``<out>/run/last`` is the policy;
5. with ``--continue-steps N``: training continued from it for N more steps on a fresh warmup and cosine at
   ``--continue-lr`` (a warm restart; the latent cache and the normalisation stats carry over), in
   ``<out>/continue``; ``<out>/export`` is the last stage's checkpoint without optimizer state and with a float16 VAE.

``--shipped lift_tiny`` sets every size and step count to those of the shipped ``models/lift_tiny`` (SHIPPED below;
explicit options still win): one command from a seed to a model of the shipped one's kind and training budget.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..data.clips import clip_videos
from ..model.vae import TINY_SPATIAL_STRIDES, LatentCodec
from .config import TrainConfig
from .trainer import make_clips, model_config, train

FULL = dict(episodes=200, vae_steps=2500, vae_batch=4, vae_base=32, decoder_steps=800, steps=10000, batch_size=16,
            continue_steps=0)
SMOKE = dict(episodes=4, vae_steps=4, vae_batch=2, vae_base=8, decoder_steps=2, steps=6, batch_size=4,
             continue_steps=0)
# the shipped models' settings. lift_tiny: 4x4 latents of a base-16 autoencoder (1200 steps at batch 2, one depth
# range for every camera, no decoder refinement), 12000 DiT steps at batch 32, then 8000 more at half the rate (its
# closed loop rose from 89 % to 95.5 % with them, README)
SHIPPED = {"lift_tiny": dict(latent_stride=16, vae_base=16, vae_steps=1200, vae_batch=2, decoder_steps=0,
                             depth_range="global", steps=12000, batch_size=32, continue_steps=8000,
                             continue_lr=5e-4)}
DEPTH_RANGES = ("per-camera", "global")
# the latent grid: 64x64 frames at stride 8 -> 8x8 latents per view (4x4 tokens). At Wan2.2's 16 the 4x4 latents
# cannot hold a cube or a gripper (autoencoder round trip 18.6 dB, depth AbsRel 0.34), yet the shipped lift_tiny is
# that model: the same tiny DiT on 8x8 latents imagines far better but succeeds less in closed loop (README)
def model_overrides(latent_stride: int, depth_range: str = "per-camera") -> dict:
    """The model config's latent grid and depth code: ``global`` is one metric range (the preset's 0.1-3.0 m) for
    every camera instead of each camera's range measured on the training episodes."""
    if latent_stride not in TINY_SPATIAL_STRIDES:
        raise ValueError(f"latent stride {latent_stride}: the tiny VAE has {TINY_SPATIAL_STRIDES}")
    if depth_range not in DEPTH_RANGES:
        raise ValueError(f"depth range {depth_range!r}: one of {DEPTH_RANGES}")
    out = {"vae_stride": (4, latent_stride, latent_stride)}
    return {**out, "depth_ranges": []} if depth_range == "global" else out


def _vae_videos(cfg, clips, seed: int, max_clips: int) -> torch.Tensor:
    """RGB and depth videos [N, 3, F, H, W] of up to ``max_clips`` clips (bounded memory for large datasets)."""
    pick = np.random.default_rng(seed).permutation(len(clips))[:max_clips]
    return torch.cat([torch.cat(clip_videos(cfg, clips[int(i)])) for i in sorted(pick)])


def _cosine_adamw(params, lr: float, steps: int):
    """AdamW with 5 % linear warmup, then a cosine to zero."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / max(1, steps)))))
    return opt, sched


def _step(opt, sched, loss: torch.Tensor) -> None:
    """One optimizer step on the optimizer's own parameters, gradients clipped to norm 1."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], 1.0)
    opt.step()
    sched.step()


def train_vae(cfg, clips, steps: int, seed: int, out: Path, batch: int = 4, base_dim: int = 32, lr: float = 1e-3,
              frames: int = 5, max_clips: int = 384, log=print) -> Path:
    """Reconstruction training (MSE + a small KL) of LatentCodec.tiny's AutoencoderKLWan; saves a diffusers dir.

    Steps see random ``frames``-long (1 + 4k) windows: the causal VAE's first-frame and temporal paths are both
    trained at about half the cost of full clips. The learning rate decays to zero on a cosine (after 5 % warmup):
    the last steps at a small rate are what bring the reconstruction's fine detail."""
    codec = LatentCodec.tiny(cfg, seed=seed, base_dim=base_dim)
    vae = codec.vae.train().requires_grad_(True)
    data = _vae_videos(cfg, clips, seed, max_clips)
    opt, sched = _cosine_adamw(vae.parameters(), lr, steps)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        s0 = int(torch.randint(data.shape[2] - frames + 1, (1,), generator=g))
        x = data[torch.randint(len(data), (batch,), generator=g), :, s0:s0 + frames]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = torch.nn.functional.mse_loss(rec, x) + 1e-6 * post.kl().mean()
        _step(opt, sched, loss)
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            log(f"[recipe] vae step {step + 1}/{steps} recon mse {loss.item():.4f}")
    vae.eval().requires_grad_(False)
    with torch.no_grad():  # latent statistics so the DiT sees unit-scale latents, like Wan2.2's latents_mean/std
        z = torch.cat([vae.encode(data[i:i + 4]).latent_dist.mode() for i in range(0, len(data), 4)])
    dims = (0, 2, 3, 4)
    vae.register_to_config(latents_mean=z.mean(dims).tolist(), latents_std=z.std(dims).clamp_min(1e-3).tolist())
    out.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(str(out))
    return out


def refine_decoder(cfg, clips, vae_dir: Path, steps: int, seed: int, batch: int = 2, lr: float = 3e-4,
                   max_clips: int = 384, log=print) -> Path:
    """Train the decoder alone on whole clips (every frame the model predicts), the encoder frozen; saved in place.

    The first stage sees 1 + 4-frame windows, so the causal decoder's later chunks (frames 5-8: the second latent
    frame onwards, whose temporal caches come from a decoded chunk, not from the first frame) never trained and
    decoded at 17-21 dB where frames 1-4 reached 25. With the encoder frozen the latents, their statistics and
    anything already trained on them (the latent cache, the DiT) stay valid, so this stage can run at any time."""
    vae = LatentCodec.from_pretrained(vae_dir).vae
    vae.requires_grad_(False)
    decoder = [vae.post_quant_conv, vae.decoder]
    for m in decoder:
        m.train().requires_grad_(True)
    data = _vae_videos(cfg, clips, seed, max_clips)
    opt, sched = _cosine_adamw([p for m in decoder for p in m.parameters()], lr, steps)
    g = torch.Generator().manual_seed(seed + 1)
    for step in range(steps):
        x = data[torch.randint(len(data), (batch,), generator=g)]
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mode()  # what the DiT learns to predict (LatentCodec.encode)
        loss = torch.nn.functional.mse_loss(vae.decode(z).sample, x)
        _step(opt, sched, loss)
        if step % max(1, steps // 10) == 0 or step == steps - 1:
            log(f"[recipe] decoder step {step + 1}/{steps} recon mse {loss.item():.4f}")
    vae.eval().requires_grad_(False).save_pretrained(str(vae_dir))
    return Path(vae_dir)


def run_recipe(out: Path, seed: int, episodes: int, vae_steps: int, vae_batch: int, vae_base: int,
               decoder_steps: int, steps: int, batch_size: int, data: Path | None = None, sampler: str = "ans",
               vae: Path | None = None, cache_dir: Path | None = None, task: str = "Lift", resume: bool = False,
               latent_stride: int = 8, depth_range: str = "per-camera", continue_steps: int = 0,
               continue_lr: float = 5e-4, log=print) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    times, demo_summary = {}, None
    t = time.perf_counter()
    if data is None:
        from ..sim.robosuite_env import SimConfig
        from ..sim.rollout import generate
        data = out / "demos"
        demo_summary = generate(data, episodes, seed=seed, workers=2, cfg=SimConfig(task=task), log=log)
    times["demos_s"] = time.perf_counter() - t
    tcfg = TrainConfig(preset="tiny", data=str(data), sampler=sampler, batch_size=batch_size, steps=steps,
                       warmup=max(1, min(200, steps // 10)), seed=seed, out_dir=str(out / "run"),
                       log_every=max(1, min(50, steps // 2)), ckpt_every=max(1, min(1000, steps)),
                       val_every=max(1, steps // 4), val_clips=8, val_episodes=min(8, max(1, episodes // 10)),
                       lr=1e-3, text_dropout=0.0, cache_dir=str(cache_dir or out / "latent_cache"),
                       model=model_overrides(latent_stride, depth_range))
    mcfg = model_config(tcfg)
    t = time.perf_counter()
    if vae is None:
        clips, train_ids, _ = make_clips(tcfg, mcfg)
        train_clips = torch.utils.data.Subset(clips, train_ids)
        vae = train_vae(mcfg, train_clips, vae_steps, seed, out / "vae", batch=vae_batch, base_dim=vae_base, log=log)
        times["vae_s"] = time.perf_counter() - t
        t = time.perf_counter()
        if decoder_steps:
            refine_decoder(mcfg, train_clips, vae, decoder_steps, seed, log=log)
        times["decoder_s"] = time.perf_counter() - t
    else:
        times["vae_s"] = 0.0
    tcfg.vae = str(vae)
    t = time.perf_counter()
    # an interrupted run continues from its last checkpoint (exact resume: optimizer, schedule, RNG, step)
    res = train(tcfg.validate(), resume=resume and (out / "run" / "last").is_dir(), log=log)
    times["train_s"] = time.perf_counter() - t
    final = out / "run" / "last"
    if continue_steps:
        t = time.perf_counter()
        ccfg = continuation_config(tcfg, final, out / "continue", continue_steps, continue_lr)
        res = train(ccfg, resume=resume and (out / "continue" / "last").is_dir(), log=log)
        times["continue_s"] = time.perf_counter() - t
        final = out / "continue" / "last"
    h = res["history"]
    summary = {"seed": seed, "task": task, "data": str(data), "episodes": episodes, "vae_steps": vae_steps,
               "vae_batch": vae_batch, "vae_base": vae_base, "decoder_steps": decoder_steps, "steps": steps,
               "batch_size": batch_size, "sampler": sampler, "latent_stride": latent_stride,
               "depth_range": depth_range, "continue_steps": continue_steps, "continue_lr": continue_lr,
               **{k: round(v, 2) for k, v in times.items()},
               "loss_first": h[0]["loss"], "loss_last": float(np.mean([r["loss"] for r in h[-10:]])),
               "validation": {k: v for k, v in h[-1].items() if k.startswith("val/")},
               "demos": demo_summary, "checkpoint": str(final)}
    (out / "recipe.json").write_text(json.dumps(summary, indent=1))
    from .export import export_policy
    card = {"made_by": "xwam-ros recipe", "recipe": summary, "train_config": tcfg.to_dict(),
            "data": demo_summary or {"dataset": str(data)}}
    if continue_steps:
        card["continue_config"] = ccfg.to_dict()
    export_policy(final, out / "export", card)
    return summary


def continuation_config(tcfg: TrainConfig, start: Path, out_dir: Path, steps: int, lr: float) -> TrainConfig:
    """Stage 5: the stage-4 run's config continued from its checkpoint (weights, autoencoder and normalisation stats,
    so the latent cache is reused) for ``steps`` more steps at ``lr``, another seed for new batches and noise."""
    return dataclasses.replace(tcfg, init_from=str(start), vae="", steps=steps, lr=lr, seed=tcfg.seed + 1,
                               out_dir=str(out_dir), warmup=max(1, min(200, steps // 10)),
                               val_every=max(1, steps // 4), ckpt_every=max(1, min(1000, steps)),
                               log_every=max(1, min(50, steps // 2))).validate()


def recipe_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros recipe", description="Demos -> tiny VAE -> stats -> tiny X-WAM (ANS).")
    ap.add_argument("--out", default="runs/recipe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a few steps of every stage (minutes)")
    ap.add_argument("--data", default=None, help="an existing episode dataset (skips demo generation)")
    ap.add_argument("--vae", default=None, help="an already trained VAE directory (skips VAE training)")
    ap.add_argument("--task", default="Lift", help="robosuite task of the generated demos: Lift | Stack")
    ap.add_argument("--sampler", default="ans", help="ans | independent | synchronous (the Table 4 ablation)")
    ap.add_argument("--cache-dir", default=None, help="latent cache (share it between runs on the same data + VAE)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the X-WAM stage from <out>/run/last (with --vae to skip the VAE stages)")
    ap.add_argument("--latent-stride", type=int, default=None, choices=TINY_SPATIAL_STRIDES,
                    help="pixels per latent: 8 (8x8 latents per 64x64 view: sharper imagination) or 16 (4x4, as the "
                         "shipped lift_tiny: better closed loop with the tiny DiT)")
    ap.add_argument("--depth-range", choices=DEPTH_RANGES, default=None,
                    help="per-camera (default: each camera's depth range measured on the demos) or global (one "
                         "0.1-3.0 m range, as the shipped lift_tiny)")
    ap.add_argument("--continue-lr", type=float, default=None, help="learning rate of stage 5 (default 5e-4)")
    ap.add_argument("--shipped", choices=sorted(SHIPPED), default=None,
                    help="every size and step count of this shipped model (explicit options still win)")
    for k, v in FULL.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=int, default=None, help=f"default {v} ({SMOKE[k]} smoke)")
    a = ap.parse_args(argv)
    # precedence: explicit option > --shipped > --smoke / full defaults
    base = {**(SMOKE if a.smoke else FULL), "latent_stride": 8, "depth_range": "per-camera", "continue_lr": 5e-4}
    if a.shipped:
        shipped = SHIPPED[a.shipped]
        if a.smoke:  # the shipped model's kind (latent grid, depth code, a continuation stage) at smoke sizes
            shipped = {**{k: v for k, v in shipped.items() if k not in FULL},
                       "continue_steps": 2 if shipped.get("continue_steps") else 0}
        base.update(shipped)
    kw = {k: getattr(a, k) if getattr(a, k) is not None else v for k, v in base.items()}
    summary = run_recipe(Path(a.out), a.seed, **kw, data=Path(a.data) if a.data else None, sampler=a.sampler,
                         task=a.task, vae=Path(a.vae) if a.vae else None,
                         cache_dir=Path(a.cache_dir) if a.cache_dir else None, resume=a.resume)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(recipe_main())
