"""One command from a seed to a small trained policy checkpoint (target: about an hour on 2 CPU cores).

    xwam-ros recipe --out runs/recipe --seed 0            # full
    python -m xwam_ros.train.recipe --out /tmp/r --smoke   # minutes

Stages (timed, written to ``<out>/recipe.json``):
1. demos: scripted expert reach-and-grasp clips rendered from the built-in simulator scene (``train/clips.py``);
2. VAE: a tiny member of the Wan2.2 VAE family (``LatentCodec.tiny``: the same AutoencoderKLWan code path as the
   5B's VAE) trained for reconstruction on the demos' RGB and inverse-depth frames, then its per-channel latent
   mean/std measured and stored in its config (as Wan2.2's latents_mean/std);
3. normalisation stats (q01/q99) of the demos' actions and states;
4. the tiny X-WAM trained with ANS through the normal trainer; ``<out>/run/last`` is the policy checkpoint.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..geometry.depth import metric_to_inverse_depth
from ..model.config import get_preset
from ..model.vae import LatentCodec
from .clips import ProceduralClips
from .config import TrainConfig
from .trainer import fit_normalizer, train

FULL = dict(num_clips=48, vae_steps=300, steps=3000, batch_size=8)
SMOKE = dict(num_clips=4, vae_steps=4, steps=6, batch_size=4)


def clip_videos(cfg, clip) -> torch.Tensor:
    """[2V, 3, F, H, W] in [-1, 1]: every view's RGB and its inverse depth as 3-channel pseudo-RGB (as the cache)."""
    rgb = torch.from_numpy(clip.rgb).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)
    inv = torch.from_numpy(metric_to_inverse_depth(clip.depth, cfg.depth_near, cfg.depth_far))
    return torch.cat([rgb, inv[:, None].expand(-1, 3, -1, -1, -1)])


def train_vae(cfg, clips, steps: int, seed: int, out: Path, batch: int = 2, lr: float = 1e-3, frames: int = 5,
              log=print) -> Path:
    """Reconstruction training (MSE + a small KL) of LatentCodec.tiny's AutoencoderKLWan; saves a diffusers dir.

    Steps see random ``frames``-long (1 + 4k) windows: the causal VAE's first-frame and temporal paths are both
    trained at about half the cost of full clips (a step on 9 frames takes ~7 s on a busy 2-core CPU)."""
    codec = LatentCodec.tiny(cfg, seed=seed)
    vae = codec.vae.train().requires_grad_(True)
    data = torch.cat([clip_videos(cfg, clips[i]) for i in range(len(clips))])
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        s0 = int(torch.randint(data.shape[2] - frames + 1, (1,), generator=g))
        x = data[torch.randint(len(data), (batch,), generator=g), :, s0:s0 + frames]
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=g)).sample
        loss = torch.nn.functional.mse_loss(rec, x) + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
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


def run_recipe(out: Path, seed: int, num_clips: int, vae_steps: int, steps: int, batch_size: int, log=print) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = get_preset("tiny")
    times = {}
    t = time.perf_counter()
    clips = ProceduralClips(cfg, num_clips, seed=seed)
    demos = [clips[i] for i in range(num_clips)]
    times["demos_s"] = time.perf_counter() - t
    t = time.perf_counter()
    vae_dir = train_vae(cfg, demos, vae_steps, seed, out / "vae", log=log)
    times["vae_s"] = time.perf_counter() - t
    norm = fit_normalizer(demos)
    (out / "normalization.json").write_text(json.dumps(norm.to_dict(), indent=1))
    t = time.perf_counter()
    tcfg = TrainConfig(preset="tiny", num_clips=num_clips, batch_size=batch_size, steps=steps,
                       warmup=max(1, min(100, steps // 10)), seed=seed, out_dir=str(out / "run"), vae=str(vae_dir),
                       log_every=max(1, min(50, steps // 2)), ckpt_every=max(1, min(1000, steps)),
                       val_every=max(1, steps // 4), val_clips=2).validate()
    res = train(tcfg, log=log)
    times["train_s"] = time.perf_counter() - t
    h = res["history"]
    summary = {"seed": seed, "num_clips": num_clips, "vae_steps": vae_steps, "steps": steps,
               "batch_size": batch_size, **{k: round(v, 2) for k, v in times.items()},
               "loss_first": h[0]["loss"], "loss_last": float(np.mean([r["loss"] for r in h[-10:]])),
               "checkpoint": str(out / "run" / "last")}
    (out / "recipe.json").write_text(json.dumps(summary, indent=1))
    return summary


def recipe_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros recipe", description="Demos -> tiny VAE -> stats -> tiny X-WAM (ANS).")
    ap.add_argument("--out", default="runs/recipe")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="a few steps of every stage (minutes)")
    for k, v in FULL.items():
        ap.add_argument(f"--{k.replace('_', '-')}", type=int, default=None, help=f"default {v} ({SMOKE[k]} smoke)")
    a = ap.parse_args(argv)
    base = SMOKE if a.smoke else FULL
    kw = {k: getattr(a, k) if getattr(a, k) is not None else v for k, v in base.items()}
    summary = run_recipe(Path(a.out), a.seed, **kw)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(recipe_main())
