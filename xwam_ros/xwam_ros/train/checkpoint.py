"""Atomic training checkpoints: a policy directory (what XWAMPolicy.from_pretrained loads: weights, config,
normalisation stats, VAE, text encoder) plus the trainer state (optimizer, LR schedule, step, RNG states), written to
a temporary directory and renamed into place; ``last`` is a symlink swapped atomically; old steps are pruned."""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from ..model.loading import CheckpointError


def save_training_checkpoint(out: Path, policy, opt, sched, step: int, cfg, keep_last: int = 2) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"step_{step:07d}"
    tmp = out / f".tmp_step_{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        policy.save_pretrained(tmp)
        torch.save({"step": step, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                    "rng_torch": torch.get_rng_state(), "rng_numpy": np.random.get_state(),
                    "rng_python": random.getstate(), "train_config": cfg.to_dict()}, tmp / "trainer_state.pt")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = out / ".last_tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    link_tmp.symlink_to(final.name)
    os.replace(link_tmp, out / "last")
    steps = sorted(p for p in out.glob("step_*") if p.is_dir())
    for old in steps[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(path: Path, net, opt, sched) -> int:
    path = Path(path)
    state_f = path / "trainer_state.pt"
    if not state_f.is_file():
        raise CheckpointError(f"{state_f}: no trainer state to resume from")
    sd = load_file(str(path / "model.safetensors"))
    net.load_state_dict(sd, strict=True)
    st = torch.load(state_f, weights_only=False)
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    torch.set_rng_state(st["rng_torch"])
    np.random.set_state(st["rng_numpy"])
    random.setstate(st["rng_python"])
    return int(st["step"])
