"""Train the mini Table 4's three models (issue 12): one per noise sampler, everything else identical.

Each model is trained with the shipped lift_tiny's own training config (its MODEL_CARD.json: preset, lr, schedule,
batch, seed, losses), its autoencoder (frozen, as the card's run used it: 4x4 latents per 64x64 view, one depth
range 0.1-3.0 m for every camera) and the same demonstrations, for ``--steps`` steps; only ``sampler`` changes
(ans | independent | synchronous). The three share one latent cache. Evaluate them with

    .venv/bin/python bench/table4_train.py --data runs/lift_demos --out runs/table4     (~15 min per model here)
    .venv/bin/python bench/closed_loop.py --checkpoint runs/table4/ans/run/last --table4 runs/table4 \\
        --episodes 60 --rows-seed 660000 --name table4

Writes bench/results/table4_train.json (train time, first/last loss and validation of each model).
"""
import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402

from xwam_ros.paths import resolve_checkpoint  # noqa: E402
from xwam_ros.train.config import TrainConfig  # noqa: E402
from xwam_ros.train.trainer import train  # noqa: E402

SAMPLERS = ("ans", "independent", "synchronous")


def config_for(card: dict, shipped: Path, sampler: str, a) -> TrainConfig:
    d = copy.deepcopy(card["train_config"])
    d.update(sampler=sampler, steps=a.steps, data=a.data, out_dir=str(Path(a.out) / sampler / "run"),
             cache_dir=str(Path(a.out) / "latent_cache"), vae=str(shipped / "vae"), init_from="",
             val_every=max(1, a.steps // 4), warmup=min(d["warmup"], a.steps // 10),
             # the shipped model's latent grid and depth encoding (its autoencoder was trained on them); the trainer
             # would otherwise measure per-camera depth ranges from the data
             model={**d.get("model", {}), "vae_stride": [4, 16, 16], "depth_ranges": []})
    d["betas"] = tuple(d["betas"])
    return TrainConfig(**d).validate()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="runs/lift_demos", help="the demonstrations (xwam-ros sim-demos)")
    ap.add_argument("--out", default="runs/table4")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=SAMPLERS)
    ap.add_argument("--checkpoint", default="builtin:lift_tiny", help="whose training config and autoencoder")
    a = ap.parse_args()
    shipped = Path(resolve_checkpoint(a.checkpoint))
    card = json.loads((shipped / "MODEL_CARD.json").read_text())
    rows = []
    for sampler in a.samplers:
        cfg = config_for(card, shipped, sampler, a)
        t = time.perf_counter()
        res = train(cfg, resume=(Path(cfg.out_dir) / "last").is_dir())
        h = res["history"]
        rows.append({"sampler": sampler, "steps": cfg.steps, "batch_size": cfg.batch_size,
                     "train_s": round(time.perf_counter() - t), "loss_first": round(h[0]["loss"], 4),
                     "loss_last": round(sum(r["loss"] for r in h[-10:]) / len(h[-10:]), 4),
                     **{k: round(v, 4) for k, v in h[-1].items() if k.startswith("val/")},
                     "checkpoint": str(Path(cfg.out_dir) / "last")})
        print(table(rows[-1:], list(rows[-1])), flush=True)
    print(f"wrote {write('table4_train', rows, {'shipped': str(a.checkpoint), 'data': a.data})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
