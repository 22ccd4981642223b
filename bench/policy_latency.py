"""Action latency of X-WAM's asynchronous policy path vs the synchronous baseline, on this machine.

policy path: 10 index-aligned calls, no depth, video left unfinished (what the node runs before acting).
synchronous: 50 calls with the depth branch on every call, actions finish with the video (Table 4's baseline).
ideal ratio = (50 / 10) * (1 + depth cost), depth cost = extra time of a call with depth vs without.
The four measurements (policy, synchronous, one call, one call with depth) run round-robin, so a slow spell of the
host hits them alike; medians.

    BENCH_THREADS=2 .venv/bin/python bench/policy_latency.py [--presets tiny mid] [--reps 3]

The machine is shared: the load average (`uptime`) before and after is written with the results; with other jobs
running, 2 OpenMP threads on 2 cores spin against them and times swing by 10x -- compare runs at BENCH_THREADS=1.
"""
import argparse
import os
import resource
import subprocess
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402

from xwam_ros.model.config import get_preset  # noqa: E402
from xwam_ros.model.policy import Observation, XWAMPolicy  # noqa: E402


CLOCK = time.perf_counter  # --clock cpu: process CPU time (exact at BENCH_THREADS=1, steady under others' load)


def call_fn(policy, run_depth):
    """One network call (with the text K/V cache), with or without the depth branch."""
    c = policy.config
    net = policy.transformer
    v = torch.randn(1, c.latent_channels, c.latent_frames, c.num_views, c.latent_h, c.latent_w)
    a, s = torch.randn(1, c.num_actions, c.action_dim), torch.randn(1, c.num_states, c.state_dim)
    tv, ta, ts = torch.full((1, c.latent_frames), 900.0), torch.full((1, c.num_actions), 500.0), \
        torch.full((1, c.num_states), 500.0)
    cache = net.prepare_text(torch.randn(1, 8, c.text_dim))

    def call():
        with torch.inference_mode():
            net(v, tv, None, a, ta, s, ts, run_depth=run_depth, text_cache=cache)
    return call


def interleaved(fns: dict, reps: dict) -> dict:
    """Median time of each function, run round-robin (``reps[k]`` runs of k per round) so that load from other
    jobs on the host, which comes and goes over seconds, hits every measurement alike."""
    for fn in fns.values():
        fn()  # warm-up
    times = {k: [] for k in fns}
    rounds = max(reps.values())
    for r in range(rounds):
        for k, fn in fns.items():
            if r < reps[k]:
                t = CLOCK()
                fn()
                times[k].append(CLOCK() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench(preset, reps):
    cfg = get_preset(preset, action_steps=10, video_steps=50)
    policy = XWAMPolicy.from_config(cfg, seed=0)
    rng = np.random.default_rng(0)
    obs = Observation(rng.integers(0, 255, (cfg.num_views, cfg.height, cfg.width, 3), dtype=np.uint8),
                      np.zeros(cfg.state_dim, np.float32), "pick up the cube")
    sync = XWAMPolicy(policy.transformer, policy.codec, policy.text_encoder, policy.normalizer,
                      cfg.replace(action_steps=50))
    fns = {"policy": lambda: policy.predict_action_chunk(obs),
           "sync": lambda: sync.predict_action_chunk(obs, depth_every_call=True),
           "call": call_fn(policy, False), "call_depth": call_fn(policy, True)}
    t = interleaved(fns, {"policy": reps, "sync": max(1, reps // 2), "call": reps * 3, "call_depth": reps * 3})
    depth_cost = t["call_depth"] / t["call"] - 1
    ratio = t["sync"] / t["policy"]
    ideal = 50 / 10 * (1 + depth_cost)
    return {"preset": preset, "params_M": round(sum(p.numel() for p in policy.transformer.parameters()) / 1e6, 2),
            "seq_len": cfg.seq_len, "policy_ms": round(t["policy"] * 1e3, 1), "sync_ms": round(t["sync"] * 1e3, 1),
            "ratio": round(ratio, 2), "ideal_ratio": round(ideal, 2), "of_ideal_pct": round(100 * ratio / ideal, 1),
            "call_ms": round(t["call"] * 1e3, 2), "call_depth_ms": round(t["call_depth"] * 1e3, 2),
            "depth_cost_pct": round(100 * depth_cost, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", nargs="+", default=["tiny", "mid"])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time, for a loaded machine (use with BENCH_THREADS=1)")
    a = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if a.clock == "cpu" else time.perf_counter
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    up = lambda: subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()  # noqa: E731
    before = up()
    rows = [bench(p, a.reps) for p in a.presets]
    print(table(rows, list(rows[0])))
    extra = {"note": "peak_rss_mb is the process peak so far (cumulative)", "uptime_before": before,
             "uptime_after": up(), "target_of_ideal_pct": 90, "clock": a.clock}
    print(f"wrote {write('policy_latency', rows, extra)}")


if __name__ == "__main__":
    main()
