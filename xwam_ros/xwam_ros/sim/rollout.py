"""Expert rollouts in the plain-Python simulator loop, recorded as dataset episodes; parallel demo generation.

    xwam-ros sim-demos --out runs/lift_demos --episodes 150 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ..data.episodes import DatasetMeta, Episode, EpisodeDataset, write_episode
from ..model.actions import encode_ee_deltas
from ..model.layout import ONE_ARM
from .robosuite_env import SimConfig, SimEnv, run_workers

VIEW_KINDS = {"eye_in_hand": "wrist"}


def dataset_meta(cfg: SimConfig) -> DatasetMeta:
    return DatasetMeta(fps=cfg.control_hz, view_names=tuple(cfg.view_names),
                       view_kinds=tuple(VIEW_KINDS.get(v, "static") for v in cfg.view_names),
                       state_names=ONE_ARM.state_names(), action_names=ONE_ARM.action_names(), action_space="ee_delta",
                       gripper_action="absolute", base_frame="world",
                       extra={"simulator": "robosuite", "task": cfg.task, "placement": cfg.placement,
                              "render_size": cfg.render_size})


def record_expert(env: SimEnv, seed: int, noise: float = 0.05, speed: float = 0.4, hold_steps: int = 10) -> Episode:
    """One expert episode from ``env.reset(seed)``; stops ``hold_steps`` after the first success (or at horizon)."""
    from .expert import make_expert
    frame = env.reset(seed=seed)
    expert = make_expert(env.cfg.task, noise=noise, max_speed=speed, seed=seed)
    frames, grips, first = [frame], [], None
    while not env.done:
        target = expert(frame.state, frame.objects)
        grips.append(target[6])
        frame = env.step(target)
        frames.append(frame)
        if frame.success and first is None:
            first = env.t
        if first is not None and env.t >= first + hold_steps:
            break
    grips.append(grips[-1])
    return episode_from_frames(frames, env.cfg.view_names, np.array(grips), env.instruction, first is not None,
                               {"seed": seed, "source": f"robosuite/{env.cfg.task} scripted expert",
                                "first_success": first})


def episode_from_frames(frames, views, grips, instruction, success, info) -> Episode:
    states = np.stack([f.state for f in frames])
    return Episode(rgb=np.stack([np.stack([f.rgb[v] for f in frames]) for v in views]),
                   depth=np.stack([np.stack([f.depth[v] for f in frames]) for v in views]),
                   K=np.stack([frames[0].K[v] for v in views]).astype(np.float32),
                   T_base_cam=np.stack([np.stack([f.T_world_cam[v] for f in frames]) for v in views]).astype(np.float32),
                   states=states, actions=encode_ee_deltas(states, grips), instruction=instruction,
                   success=bool(success), info=info)


def _worker(args) -> list[dict]:
    out, seeds, cfg_dict, noise, speed = args
    os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe thread per process: faster in aggregate
    env = SimEnv(SimConfig(**cfg_dict), seed=seeds[0][1] if seeds else 0)
    rows = []
    for i, seed in seeds:
        t = time.perf_counter()
        ep = record_expert(env, seed, noise=noise, speed=speed)
        write_episode(EpisodeDataset.episode_path(out, i), ep)
        rows.append({"index": i, "seed": seed, "success": ep.success, "length": ep.length,
                     "first_success": ep.info["first_success"], "seconds": time.perf_counter() - t})
    env.close()
    return rows


def generate(out: Path, episodes: int, seed: int = 0, workers: int = 2, cfg: SimConfig | None = None,
             noise: float = 0.05, speed: float = 0.4, keep_failures: bool = False, log=print) -> dict:
    cfg = (cfg or SimConfig()).validate()
    out = EpisodeDataset.create(out, dataset_meta(cfg))
    jobs = [(i, seed * 100_000 + i) for i in range(episodes)]
    cfg_dict = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    chunks = [(out, jobs[w::workers], cfg_dict, noise, speed) for w in range(workers)]
    t = time.perf_counter()
    rows = run_workers(_worker, chunks)
    rows.sort(key=lambda r: r["index"])
    if not keep_failures:  # a failed demonstration teaches failure: drop it from the training set
        for r in rows:
            if not r["success"]:
                EpisodeDataset.episode_path(out, r["index"]).unlink()
    ok = [r for r in rows if r["success"]]
    summary = {"episodes": episodes, "expert_success": len(ok) / max(1, episodes),
               "mean_length": float(np.mean([r["length"] for r in rows])), "wall_s": time.perf_counter() - t,
               "steps_per_s": sum(r["length"] for r in rows) / (time.perf_counter() - t), "seed": seed,
               "noise": noise, "speed": speed, "task": cfg.task, "placement": cfg.placement}
    (out / "generation.json").write_text(json.dumps({"summary": summary, "episodes": rows}, indent=1))
    log(f"[sim-demos] {len(ok)}/{episodes} expert successes, mean length {summary['mean_length']:.1f}, "
        f"{summary['wall_s']:.0f} s -> {out}")
    return summary


def demos_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros sim-demos", description="Scripted-expert demos in robosuite.")
    ap.add_argument("--out", default="runs/lift_demos")
    ap.add_argument("--episodes", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--placement", type=float, default=SimConfig.placement)
    ap.add_argument("--noise", type=float, default=0.05)
    ap.add_argument("--speed", type=float, default=0.4)
    a = ap.parse_args(argv)
    generate(Path(a.out), a.episodes, a.seed, a.workers, SimConfig(task=a.task, placement=a.placement),
             a.noise, a.speed)
    return 0


if __name__ == "__main__":
    raise SystemExit(demos_main())
