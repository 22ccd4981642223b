"""Size and cost of an X-WAM configuration without allocating it: parameters, weight memory, FLOPs per denoising call
and the ideal latency of the policy (action) and imagination (video) paths on a given accelerator.

The transformer is instantiated on torch's meta device (shapes only, no memory), and one forward is counted with
torch's FlopCounterMode, so the numbers follow the code that runs rather than a formula that could drift from it.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import XWAMConfig, get_preset
from .transformer import XWAMTransformer

BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


@dataclass
class Footprint:
    preset: str
    params: int  # main + depth branch
    depth_branch_params: int
    tokens: int  # main sequence: video + action + state tokens
    weight_bytes: dict  # per dtype
    text_tflop: float  # text embedding + cross-attention K/V, once per instruction (cached across calls)
    call_tflop: float  # one denoising call, text cached, no depth
    depth_call_tflop: float  # one call with the depth branch

    def ideal_latency_s(self, peak_tflops: float, action_steps: int, video_steps: int) -> dict:
        """Latency if every FLOP ran at ``peak_tflops`` (a lower bound): the action chunk after ``action_steps``
        calls without depth; the imagined video after ``video_steps`` calls, depth on the last one only."""
        action = (self.text_tflop + action_steps * self.call_tflop) / peak_tflops
        video = action + ((video_steps - action_steps - 1) * self.call_tflop + self.depth_call_tflop) / peak_tflops
        return {"action_s": action, "video_s": video}


def _meta_inputs(cfg: XWAMConfig, batch: int = 1):
    h, w = cfg.height // cfg.vae_stride[1], cfg.width // cfg.vae_stride[2]
    return dict(video_latents=torch.zeros(batch, cfg.latent_channels, cfg.latent_frames, cfg.num_views, h, w),
                video_timesteps=torch.zeros(batch, cfg.latent_frames),
                actions=torch.zeros(batch, cfg.num_actions, cfg.action_dim),
                action_timesteps=torch.zeros(batch, cfg.num_actions),
                states=torch.zeros(batch, cfg.num_states, cfg.state_dim),
                state_timesteps=torch.zeros(batch, cfg.num_states))


def _tflop(fn) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e12


def measure(preset: str = "xwam-5b", **overrides) -> Footprint:
    cfg = get_preset(preset, **overrides)
    with torch.device("meta"):
        net = XWAMTransformer(cfg)
        inputs = _meta_inputs(cfg)
        text = torch.zeros(1, cfg.text_len, cfg.text_dim)
        text_tflop = _tflop(lambda: net.prepare_text(text))
        cache = net.prepare_text(text)
        call = _tflop(lambda: net(**inputs, text_embeds=None, text_cache=cache))
        depth = _tflop(lambda: net(**inputs, text_embeds=None, text_cache=cache, run_depth=True))
    params = sum(p.numel() for p in net.parameters())
    depth_params = sum(p.numel() for n, p in net.named_parameters() if n.startswith(("extra_blocks", "extra_heads")))
    return Footprint(preset, params, depth_params, cfg.seq_len, {k: params * b for k, b in BYTES.items()},
                     text_tflop, call, depth)


def _size(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.2f} MiB"


def _flop(tflop: float) -> str:
    return f"{tflop:.3f} TFLOP" if tflop >= 0.1 else f"{tflop * 1e3:.3f} GFLOP"


def info_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros info", description="Parameters, weight memory, FLOPs per denoising "
                                 "call and ideal latency of an X-WAM preset (meta device: nothing is allocated).")
    ap.add_argument("--preset", default="xwam-5b", help="xwam-5b (the paper's model), mid or tiny")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="accelerator peak in TFLOP/s for the ideal latency (default 989: H100 SXM dense bf16)")
    ap.add_argument("--action-steps", type=int, default=10)
    ap.add_argument("--video-steps", type=int, default=50)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a = ap.parse_args(argv)
    fp = measure(a.preset)
    ideal = fp.ideal_latency_s(a.peak_tflops, a.action_steps, a.video_steps)
    if a.json:
        print(json.dumps({**asdict(fp), "peak_tflops": a.peak_tflops, "ideal": ideal}, indent=1))
        return 0
    rows = [("parameters", f"{fp.params:,} (depth branch {fp.depth_branch_params:,})"),
            ("weights bf16", _size(fp.weight_bytes['bfloat16'])),
            ("weights fp32", _size(fp.weight_bytes['float32'])),
            ("tokens per call", f"{fp.tokens}"),
            ("text K/V (once per instruction)", _flop(fp.text_tflop)),
            ("one denoising call", _flop(fp.call_tflop)),
            ("one call with depth", _flop(fp.depth_call_tflop)),
            (f"ideal action latency ({a.action_steps} calls) at {a.peak_tflops:g} TFLOP/s",
             f"{ideal['action_s'] * 1e3:.3g} ms"),
            (f"ideal imagination ({a.video_steps} calls) at {a.peak_tflops:g} TFLOP/s",
             f"{ideal['video_s'] * 1e3:.3g} ms")]
    width = max(len(k) for k, _ in rows)
    print(f"X-WAM preset {a.preset!r}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    return 0
