"""Per-call cost of the X-WAM transformer on this machine.

For the "tiny" and "mid" presets: one forward without vs with the depth branch, with vs without the text K/V cache,
and peak resident memory; for "mid" also torch.compile; and one real-size Wan2.2-TI2V-5B block at the paper's
761-token sequence, extrapolated to a full forward. Each preset runs in a fresh subprocess so that peak RSS
(ru_maxrss, a per-process high-water mark) belongs to it; the plain / text-cache / depth forwards of one model are
interleaved round-robin so that other load on this shared machine hits all three alike.

    python bench/model_latency.py [--quick]      -> prints a table, writes bench/results/model_latency.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "xwam_ros"))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _inputs(cfg, torch, b=1):
    g = torch.Generator().manual_seed(0)
    v = torch.randn(b, cfg.latent_channels, cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w, generator=g)
    tv = torch.full((b, cfg.latent_frames), 700.0)
    tv[:, 0] = 0
    return (v, tv, torch.randn(b, cfg.text_len, cfg.text_dim, generator=g),
            torch.randn(b, cfg.num_actions, cfg.action_dim, generator=g), torch.full((b, cfg.num_actions), 500.0),
            torch.randn(b, cfg.num_states, cfg.state_dim, generator=g), torch.full((b, cfg.num_states), 500.0))


def _time(fn, reps: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return {"median_ms": 1000 * statistics.median(ts), "min_ms": 1000 * min(ts), "reps": reps}


def measure_paired(preset: str, reps: int) -> list:
    """Plain, text-cache and depth forwards of one model, interleaved round-robin so that load from other jobs on
    the machine hits all three alike. Peak RSS: no-depth forwards first, then depth (ru_maxrss only grows)."""
    import torch

    from xwam_ros.model.config import get_preset
    from xwam_ros.model.transformer import XWAMTransformer

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    cfg = get_preset(preset)
    rss0 = _rss_mb()
    net = XWAMTransformer(cfg).eval()
    v, tv, txt, a, ta, s, ts = _inputs(cfg, torch)
    rss_model = _rss_mb()
    with torch.inference_mode():
        cache = net.prepare_text(txt)
        calls = {"plain": lambda: net(v, tv, txt, a, ta, s, ts),
                 "cache": lambda: net(v, tv, None, a, ta, s, ts, text_cache=cache),
                 "depth_cache": lambda: net(v, tv, None, a, ta, s, ts, run_depth=True, text_cache=cache)}
        peak = {}
        for name, fn in calls.items():  # warm-up, and the memory of each mode in growing order
            fn()
            peak[name] = _rss_mb() - rss_model
        times = {name: [] for name in calls}
        for _ in range(reps):
            for name, fn in calls.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    params = sum(p.numel() for p in net.parameters()) / 1e6
    return [{"preset": preset, "scenario": name, "median_ms": 1000 * statistics.median(ts_),
             "min_ms": 1000 * min(ts_), "reps": reps, "seq_len": cfg.seq_len, "params_M": params,
             "model_rss_mb": rss_model - rss0, "forward_peak_rss_mb": peak[name]} for name, ts_ in times.items()]


def measure(preset: str, scenario: str, reps: int) -> dict:
    """Runs inside the child process."""
    import torch

    from xwam_ros.model.config import get_preset
    from xwam_ros.model.transformer import XWAMBlock, XWAMTransformer

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    cfg = get_preset(preset)
    if scenario == "5b_block":
        return _measure_5b_block(cfg, torch, XWAMBlock, reps)
    rss0 = _rss_mb()
    net = XWAMTransformer(cfg).eval()
    v, tv, txt, a, ta, s, ts = _inputs(cfg, torch)
    rss_model = _rss_mb()
    depth = scenario in ("depth", "depth_cache")
    with torch.inference_mode():
        cache = net.prepare_text(txt) if scenario.endswith("cache") else None
        model = net
        extra = {}
        if scenario == "compile_cache":
            t0 = time.perf_counter()
            model = torch.compile(net)
            model(v, tv, None, a, ta, s, ts, text_cache=cache)
            extra["compile_s"] = time.perf_counter() - t0
            eager, comp = [], []
            for _ in range(reps):  # interleaved with eager so machine load hits both alike
                for fn, out in ((net, eager), (model, comp)):
                    t0 = time.perf_counter()
                    fn(v, tv, None, a, ta, s, ts, text_cache=cache)
                    out.append(time.perf_counter() - t0)
            extra["eager_min_ms"] = 1000 * min(eager)
            extra["speedup_vs_eager"] = min(eager) / min(comp)
        res = _time(lambda: model(v, tv, None if cache else txt, a, ta, s, ts, run_depth=depth, text_cache=cache),
                    reps)
        t0 = time.perf_counter()
        net.prepare_text(txt)
        extra["prepare_text_ms"] = 1000 * (time.perf_counter() - t0)
    params = sum(p.numel() for p in net.parameters())
    return {"preset": preset, "scenario": scenario, **res, **extra, "seq_len": cfg.seq_len, "params_M": params / 1e6,
            "model_rss_mb": rss_model - rss0, "forward_peak_rss_mb": _rss_mb() - rss_model}


def _measure_5b_block(cfg, torch, XWAMBlock, reps):
    from xwam_ros.model.rope import SequenceLayout, rope_tables

    rss0 = _rss_mb()
    blk = XWAMBlock(cfg).eval()
    layout = SequenceLayout.from_config(cfg)
    x = torch.randn(1, cfg.seq_len, cfg.dim)
    e0 = torch.randn(1, cfg.seq_len, 6, cfg.dim) * 0.1
    cos, sin = rope_tables(layout, cfg.head_dim, cfg.rope_theta, "cpu")
    ctx = torch.randn(1, cfg.text_len, cfg.dim)
    with torch.inference_mode():
        kv = blk.cross_attn.text_kv(ctx)
        res = _time(lambda: blk(x, e0, cos, sin, kv), reps)
        text_kv = _time(lambda: blk.cross_attn.text_kv(ctx), reps)  # what the text cache saves per block and call
    per = res["min_ms"]
    return {"preset": "xwam-5b", "scenario": "one block (fp32)", **res, "seq_len": cfg.seq_len,
            "params_M": sum(p.numel() for p in blk.parameters()) / 1e6, "model_rss_mb": _rss_mb() - rss0,
            "text_kv_ms": text_kv["min_ms"],
            "text_cache_saving_pct": 100 * text_kv["min_ms"] / (per + text_kv["min_ms"]),
            "est_forward_s_no_depth": per * cfg.num_layers / 1000,
            "est_forward_s_with_depth": per * (cfg.num_layers + cfg.num_depth_layers) / 1000}


def run_child(preset: str, scenario: str, reps: int, timeout: float):
    cmd = [sys.executable, __file__, "--child", preset, scenario, str(reps)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        return {"preset": preset, "scenario": scenario, "error": f"timed out after {timeout:.0f} s"}
    except subprocess.CalledProcessError as exc:
        return {"preset": preset, "scenario": scenario, "error": exc.stderr.strip().splitlines()[-1][:300]}


def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": int(os.environ.get("BENCH_THREADS", "2")),
            "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no compile, no 5B block")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_latency.json"))
    args = ap.parse_args()
    plan = [("tiny", "paired", 200), ("mid", "paired", 20)]
    if not args.quick:
        plan += [("mid", "compile_cache", 15), ("xwam-5b", "5b_block", 6)]
    rows = []
    for preset, scenario, reps in plan:
        reps = max(2, reps // 4) if args.quick else reps
        res = run_child(preset, scenario, reps, timeout=900)
        rows += res if isinstance(res, list) else [res]
        print(json.dumps(res), flush=True)
    summary = summarise(rows)
    report = {"machine": machine(), "results": rows, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print_table(rows, summary)


def summarise(rows: list) -> dict:
    # ratios use the minimum over repetitions: the machine is shared, and the minimum is the least disturbed run
    by = {(r["preset"], r["scenario"]): r for r in rows if "median_ms" in r}
    out = {}
    for p in ("tiny", "mid"):
        plain, cache, depth = by.get((p, "plain")), by.get((p, "cache")), by.get((p, "depth_cache"))
        if plain and cache and depth:
            out[p] = {"depth_extra_cost_pct": 100 * (depth["min_ms"] / cache["min_ms"] - 1),
                      "text_cache_saving_pct": 100 * (1 - cache["min_ms"] / plain["min_ms"])}
    comp = by.get(("mid", "compile_cache"))
    if comp and "mid" in out:
        out["mid"]["compile_speedup"] = comp["speedup_vs_eager"]
    return out


def print_table(rows: list, summary: dict) -> None:
    print(f"\n{'preset':8} {'scenario':18} {'seq':>5} {'params M':>9} {'min ms':>9} {'median ms':>10} "
          f"{'peak MB':>8}  notes")
    for r in rows:
        if "error" in r:
            print(f"{r['preset']:8} {r['scenario']:18} ERROR {r['error']}")
            continue
        note = ""
        if "compile_s" in r:
            note = f"compile {r['compile_s']:.1f} s; {r['speedup_vs_eager']:.2f}x vs eager {r['eager_min_ms']:.1f} ms"
        if "est_forward_s_no_depth" in r:
            note = (f"-> est. forward {r['est_forward_s_no_depth']:.1f} s (no depth), "
                    f"{r['est_forward_s_with_depth']:.1f} s (depth, approx.); text cache saves "
                    f"{r['text_cache_saving_pct']:.0f}% per block")
        peak = r.get("forward_peak_rss_mb", r.get("model_rss_mb", 0.0))
        print(f"{r['preset']:8} {r['scenario']:18} {r['seq_len']:5d} {r['params_M']:9.2f} {r['min_ms']:9.2f} "
              f"{r['median_ms']:10.2f} "
              f"{peak:8.1f}  {note}")
    for p, s in summary.items():
        print(f"{p}: " + ", ".join(f"{k} {v:.1f}" for k, v in s.items()))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        fn = measure_paired if sys.argv[3] == "paired" else None
        res = measure_paired(sys.argv[2], int(sys.argv[4])) if fn else measure(sys.argv[2], sys.argv[3],
                                                                               int(sys.argv[4]))
        print(json.dumps(res))
    else:
        main()
