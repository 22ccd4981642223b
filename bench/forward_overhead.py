"""How close one transformer forward is to the cost of its own matrix multiplies (issue 11, target 3).

For each config: record every matrix-multiply-like aten call one forward makes (linear/mm/addmm/bmm, oneDNN's linear with
its fused GELU, scaled dot-product attention, and the patch-embedding convolution) with a TorchDispatchMode, then time, in the
same process and interleaved round-robin so that load from other jobs hits both alike,
  * the whole forward (the policy's call: text K/V cache given, depth branch off), and
  * the recorded calls alone, replayed on fresh tensors of the same shapes and strides.
ratio = forward / matmuls (target <= 1.15), in wall time and in process CPU time. float32 CPU, BENCH_THREADS threads (default 2), median of --reps.
The machine is shared: the load average (`uptime`) before and after is written with the results.

With OFFICIAL_XWAM_DIR pointing at a scratch copy of the official X-WAM code (github.com/sharinka0715/X-WAM; its
`modules/` and `utils/`, plus einops importable; never committed here), the official XWAMModel is built at the same
config, loaded strictly with the same weights and timed on the same inputs in the same interleaved loop; its outputs
are checked against ours (max |diff| printed). Its forward has no text K/V cache, so it is also timed with ours
off (official_ms vs forward_nocache_ms is the like-for-like pair).

    python bench/forward_overhead.py [--reps 30] [--configs tiny mid dim768] [--compile]
    OFFICIAL_XWAM_DIR=/path/to/X-WAM PYTHONPATH=/path/to/einops python bench/forward_overhead.py
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "xwam_ros"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402

from xwam_ros.model.config import get_preset  # noqa: E402
from xwam_ros.model.transformer import XWAMTransformer  # noqa: E402

aten = torch.ops.aten
# under inference_mode the mode sees the composite ops (linear, SDPA, conv3d) before they decompose
MATMUL_OPS = {aten.linear.default, aten.matmul.default, aten.mm.default, aten.addmm.default, aten.bmm.default,
              aten.baddbmm.default, aten.scaled_dot_product_attention.default,
              aten._scaled_dot_product_flash_attention_for_cpu.default, aten.conv3d.default,
              aten.convolution.default,
              # oneDNN's linear with its GELU post-op (transformer.linear_gelu): a matmul with a fused epilogue
              torch.ops.mkldnn._linear_pointwise.default}
# the dim-768 / 8-layer comparison point: mid's layout at a wider model
CONFIGS = {"tiny": ("tiny", {}), "mid": ("mid", {}),
           "dim768": ("mid", dict(dim=768, ffn_dim=3072, num_heads=12, num_layers=8))}


class MatmulRecorder(TorchDispatchMode):
    """Records (op, args) of every matmul-like call; tensors kept as (shape, stride, dtype) only."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in MATMUL_OPS:
            spec = lambda a: ("T", tuple(a.shape), tuple(a.stride()), a.dtype) if isinstance(a, torch.Tensor) else a
            self.calls.append((func, [spec(a) for a in args], {k: spec(v) for k, v in kwargs.items()}))
        return func(*args, **kwargs)


def materialise(calls):
    """Fresh random tensors of the recorded shapes/strides, bound into ready-to-run closures."""
    def make(a):
        if isinstance(a, tuple) and a and a[0] == "T":
            _, shape, stride, dtype = a
            return torch.empty_strided(shape, stride, dtype=dtype).normal_()
        if isinstance(a, list):
            return [make(x) for x in a]
        return a
    return [(func, [make(a) for a in args], {k: make(v) for k, v in kw.items()}) for func, args, kw in calls]


def inputs(cfg, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, cfg.latent_channels, cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w, generator=g)
    tv = torch.full((1, cfg.latent_frames), 700, dtype=torch.int64)
    tv[:, 0] = 0
    ta = torch.full((1, cfg.num_actions), 500, dtype=torch.int64)
    tp = torch.full((1, cfg.num_states), 500, dtype=torch.int64)
    tp[:, 0] = 0
    return (v, tv, torch.randn(1, cfg.text_len, cfg.text_dim, generator=g),
            torch.randn(1, cfg.num_actions, cfg.action_dim, generator=g), ta,
            torch.randn(1, cfg.num_states, cfg.state_dim, generator=g), tp)


def official_model(cfg, net):
    """The official XWAMModel at ``cfg`` holding ``net``'s weights (strict), from OFFICIAL_XWAM_DIR; None if unset.

    Its import pulls training-only packages (lightning, imageio, ftfy, torchvision) that this forward never uses;
    stand-in modules satisfy the imports. Its attention casts q/k/v to bfloat16 for flash-attention on GPU; here it
    runs in float32 like ours."""
    root = os.environ.get("OFFICIAL_XWAM_DIR")
    if not root:
        return None
    import types

    import diffusers.models.modeling_utils  # noqa: F401  (these probe installed packages: import before the stand-ins)
    import transformers  # noqa: F401
    from torch import nn
    for name in ("lightning", "imageio", "imageio.v2", "ftfy", "torchvision"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["lightning"].LightningModule = nn.Module
    sys.modules["ftfy"].fix_text = lambda s: s
    torch.cuda.current_device = lambda: "cpu"  # evaluated in a default argument of its T5 module at import
    sys.path.insert(0, root)
    import modules.attention as official_attention
    from modules.wan_model import XWAMModel
    defaults = list(official_attention.attention.__defaults__)
    defaults[-1] = torch.float32
    official_attention.attention.__defaults__ = tuple(defaults)
    m = XWAMModel(model_type="ti2v", num_modalities=2, num_views=cfg.num_views, patch_size=tuple(cfg.patch_size),
                  text_len=cfg.text_len, in_dim=cfg.latent_channels, dim=cfg.dim, ffn_dim=cfg.ffn_dim,
                  freq_dim=cfg.freq_dim, text_dim=cfg.text_dim, action_dim=cfg.action_dim,
                  action_num=cfg.actions_per_frame, proprio_dim=cfg.state_dim, out_dim=cfg.latent_channels,
                  num_heads=cfg.num_heads, num_layers=cfg.num_layers, num_extra_layers=cfg.num_depth_layers,
                  eps=cfg.eps)
    m.load_state_dict(net.state_dict(), strict=True)
    return m.eval()


def measure(name: str, reps: int, compile_: bool) -> dict:
    preset, over = CONFIGS[name]
    cfg = get_preset(preset, **over, compile=compile_)
    torch.manual_seed(0)
    net = XWAMTransformer(cfg).eval()
    v, tv, txt, a, ta, s, ts = inputs(cfg)
    with torch.inference_mode():
        cache = net.prepare_text(txt)
        fwd = lambda: net(v, tv, None, a, ta, s, ts, text_cache=cache)  # noqa: E731
        fns = {"fwd": fwd}
        official = None if compile_ else official_model(cfg, net)
        if official is not None:
            fns["nocache"] = lambda: net(v, tv, txt, a, ta, s, ts)  # noqa: E731
            fns["official"] = lambda: official(v, tv.float(), txt, actions=a, t_actions=ta.float(), proprios=s,  # noqa: E731
                                               t_proprios=ts.float(), run_depth=False)
            ours, theirs = net(v, tv, txt, a, ta, s, ts), fns["official"]()
            official_diff = max(float((x - y).abs().max()) for x, y in zip(
                (ours.video, ours.actions, ours.states), theirs[:3]))
        fwd()  # warm-up (and compile)
        rec = MatmulRecorder()
        with rec:
            net(v, tv, None, a, ta, s, ts, text_cache=cache)
        calls = materialise(rec.calls)

        def matmuls():
            for func, args, kw in calls:
                func(*args, **kw)
        matmuls()
        fns["mm"] = matmuls
        wall = {k: [] for k in fns}
        cpu = {k: [] for k in fns}
        for _ in range(reps):  # interleaved: machine load hits all alike
            for key, fn in fns.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                wall[key].append(time.perf_counter() - t0)
                cpu[key].append(time.process_time() - c0)
    f, m = statistics.median(wall["fwd"]), statistics.median(wall["mm"])
    cf, cm = statistics.median(cpu["fwd"]), statistics.median(cpu["mm"])
    return {"config": name, "dim": cfg.dim, "layers": cfg.num_layers, "seq_len": cfg.seq_len,
            "matmul_calls": len(calls), "forward_ms": round(1e3 * f, 3), "matmuls_ms": round(1e3 * m, 3),
            "ratio": round(f / m, 3), "ratio_of_min": round(min(wall["fwd"]) / min(wall["mm"]), 3),
            # CPU time of the process: less sensitive to other jobs than wall time (exact with 1 thread; with
            # more, OpenMP spin-waiting counts too)
            "forward_cpu_ms": round(1e3 * cf, 3), "matmuls_cpu_ms": round(1e3 * cm, 3), "ratio_cpu": round(cf / cm, 3),
            "compile": compile_, "reps": reps, "threads": torch.get_num_threads(),
            **({"forward_nocache_ms": round(1e3 * statistics.median(wall["nocache"]), 3),
                "official_ms": round(1e3 * statistics.median(wall["official"]), 3),
                "official_over_ours": round(statistics.median(wall["official"]) / statistics.median(wall["nocache"]),
                                            3),
                "official_max_abs_diff": official_diff} if official is not None else {})}


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--compile", action="store_true", help="also measure with compile: true (torch.compile)")
    ap.add_argument("--name", default="forward_overhead", help="results file name (bench/results/<name>.json)")
    a = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    load_before = uptime()
    rows = []
    for name in a.configs:
        reps = a.reps if name == "tiny" else max(5, a.reps // 3)
        rows.append(measure(name, reps, False))
        if a.compile:
            rows.append(measure(name, reps, True))
    load_after = uptime()
    cols = ["config", "compile", "seq_len", "matmul_calls", "forward_ms", "matmuls_ms", "ratio", "ratio_of_min",
            "ratio_cpu"]
    if any("official_ms" in r for r in rows):
        cols += ["forward_nocache_ms", "official_ms", "official_over_ours", "official_max_abs_diff"]
    print(table(rows, cols))
    print("target: ratio <= 1.15;", "load before:", load_before, "| after:", load_after)
    print(f"wrote {write(a.name, rows, {'uptime_before': load_before, 'uptime_after': load_after, 'target_ratio': 1.15})}")


if __name__ == "__main__":
    main()
