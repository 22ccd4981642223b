"""Per-stage latency of the X-WAM policy on an accelerator, beside the ideal set by its peak FLOP rate.

On a GPU (the paper's setting: xwam-5b, bf16, 761 tokens): frame-0 VAE encode, text, 10 action calls (the chunk),
40 more video calls + depth on the last (the imagined future), VAE decode; one call timed alone with and without the
depth branch. The ideal column is FLOPs / peak (`xwam-ros info`), so "x ideal" says how far the stack is from the
hardware. Random weights: timing does not depend on them. Here (no GPU) it runs the tiny preset on the CPU to prove
the script works; the CPU's peak is measured with one large matmul.

    .venv/bin/python bench/gpu_latency.py                       # cuda if present (xwam-5b, bf16), else tiny on CPU
    .venv/bin/python bench/gpu_latency.py --preset mid --device cpu --reps 3
    .venv/bin/python bench/gpu_latency.py --peak-tflops 989      # H100 SXM dense bf16
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402

from xwam_ros.model.config import get_preset  # noqa: E402
from xwam_ros.model.footprint import measure  # noqa: E402
from xwam_ros.model.policy import Observation, XWAMPolicy  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, reps: int) -> float:
    fn()  # warm-up: kernels, allocator
    out = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def matmul_peak_tflops(device, dtype, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n ** 3 / timed(lambda: a @ b, device, 5) / 1e12


def call_time(policy, run_depth: bool, reps: int) -> float:
    c, net, dev, dt = policy.config, policy.transformer, policy.device, policy.dtype
    v = torch.randn(1, c.latent_channels, c.latent_frames, c.num_views, c.latent_h, c.latent_w, device=dev, dtype=dt)
    a = torch.randn(1, c.num_actions, c.action_dim, device=dev, dtype=dt)
    s = torch.randn(1, c.num_states, c.state_dim, device=dev, dtype=dt)
    cache = net.prepare_text(torch.randn(1, c.text_len, c.text_dim, device=dev, dtype=dt))
    tv, ta, ts = (torch.full((1, n), 500.0, device=dev) for n in (c.latent_frames, c.num_actions, c.num_states))
    with torch.inference_mode():
        return timed(lambda: net(v, tv, None, a, ta, s, ts, run_depth=run_depth, text_cache=cache), dev, reps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cuda = torch.cuda.is_available()
    ap.add_argument("--device", default="cuda" if cuda else "cpu")
    ap.add_argument("--preset", default="xwam-5b" if cuda else "tiny")
    ap.add_argument("--dtype", default="bfloat16" if cuda else "float32", choices=["bfloat16", "float32"])
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="0 = measure a large matmul on the device")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    device, dtype = torch.device(a.device), getattr(torch, a.dtype)
    cfg = get_preset(a.preset)
    policy = XWAMPolicy.from_config(cfg, device=device)
    policy.transformer.to(dtype)  # the paper runs the transformer in bf16; VAE and text stay float32
    policy.dtype = dtype
    obs = Observation(np.zeros((cfg.num_views, cfg.height, cfg.width, 3), np.uint8), np.zeros(cfg.state_dim,
                                                                                              np.float32), "lift")
    peak = a.peak_tflops or matmul_peak_tflops(device, dtype)
    fp = measure(a.preset)
    ideal = fp.ideal_latency_s(peak, cfg.action_steps, cfg.video_steps)
    res = policy.predict_action_chunk(obs)  # warm-up
    chunk = [policy.predict_action_chunk(obs) for _ in range(a.reps)]
    imag = [policy.continue_imagination(r) for r in chunk]
    med = lambda xs: statistics.median(xs) * 1e3  # noqa: E731
    call, call_depth = call_time(policy, False, a.reps), call_time(policy, True, a.reps)
    rows = [
        {"stage": "VAE encode (frame 0)", "ms": f"{med([r.timings['encode'] for r in chunk]):.2f}", "ideal_ms": ""},
        {"stage": "text (cached per instruction)", "ms": f"{med([r.timings['text'] for r in chunk]):.2f}",
         "ideal_ms": f"{fp.text_tflop / peak * 1e3:.2f}"},
        {"stage": "one call", "ms": f"{call * 1e3:.2f}", "ideal_ms": f"{fp.call_tflop / peak * 1e3:.2f}"},
        {"stage": "one call + depth", "ms": f"{call_depth * 1e3:.2f}",
         "ideal_ms": f"{fp.depth_call_tflop / peak * 1e3:.2f}"},
        {"stage": f"action chunk ({cfg.action_steps} calls, total)", "ms": f"{med([r.latency for r in chunk]):.2f}",
         "ideal_ms": f"{ideal['action_s'] * 1e3:.2f}"},
        {"stage": f"video calls {cfg.action_steps + 1}..{cfg.video_steps} + depth",
         "ms": f"{med([i.timings['denoise'] for i in imag]):.2f}",
         "ideal_ms": f"{(ideal['video_s'] - ideal['action_s']) * 1e3:.2f}"},
        {"stage": "VAE decode (RGB + depth)", "ms": f"{med([i.timings['decode'] for i in imag]):.2f}", "ideal_ms": ""},
        {"stage": f"imagined future ({cfg.video_steps} calls, total)", "ms": f"{med([i.latency for i in imag]):.2f}",
         "ideal_ms": f"{ideal['video_s'] * 1e3:.2f}"},
    ]
    print(f"preset {a.preset}, {a.device} {a.dtype}, peak {peak:.3g} TFLOP/s "
          f"({'given' if a.peak_tflops else 'measured matmul'}), {fp.tokens} tokens")
    print(table(rows, ["stage", "ms", "ideal_ms"]))
    print(f"wrote {write('gpu_latency', rows, {'preset': a.preset, 'device': a.device, 'dtype': a.dtype, 'peak_tflops': peak})}")


if __name__ == "__main__":
    main()
