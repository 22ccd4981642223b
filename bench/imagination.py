"""Imagination quality per future step, model vs the static-world baseline, on held-out demonstrations (issue 12).

    .venv/bin/xwam-ros sim-demos --out runs/heldout_lift --episodes 16 --seed 700000   # seeds no demo used
    .venv/bin/python bench/imagination.py --data runs/heldout_lift

For every future step the node publishes (frame f, f * actions_per_frame * action_dt seconds ahead): PSNR (static
views), depth AbsRel and delta1 (all views), Chamfer of the fused clouds, for the model's imagination, for "the
future looks like now", and for the autoencoder's round trip of the real future (what the decoder can show at best). Prints the table with the issue's targets and writes bench/results/imagination.json.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from xwam_ros.data.episodes import EpisodeDataset  # noqa: E402
from xwam_ros.eval.imagination import METRICS, imagination_per_step  # noqa: E402
from xwam_ros.model.policy import XWAMPolicy  # noqa: E402
from xwam_ros.paths import resolve_checkpoint  # noqa: E402

TARGETS = {"psnr": ">= 24", "abs_rel": "<= 0.15", "delta1": ">= 0.80", "chamfer_m": "<= 0.03"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="builtin:lift_tiny")
    ap.add_argument("--data", default=str(ROOT / "runs" / "heldout_lift"), help="held-out demo dataset")
    ap.add_argument("--clips-per-episode", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="noise seed of the imagination")
    ap.add_argument("--name", default="imagination")
    a = ap.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    policy = XWAMPolicy.from_pretrained(resolve_checkpoint(a.checkpoint))
    data = EpisodeDataset(a.data)
    table = imagination_per_step(policy, data, range(len(data)), a.clips_per_episode, a.seed)
    rows = []
    for r in table:
        row = {"step": r["step"], "t_s": r["t_s"]}
        for m in METRICS:
            row[m] = (f"{r[f'{m}_model']:.3f} / {r[f'{m}_static']:.3f} / {r[f'{m}_autoencoder']:.3f}"
                      + ("" if r["model_better"][m] else " *"))
        rows.append(row)
    print(f"imagination of {a.checkpoint} on {len(data)} held-out episodes x {a.clips_per_episode} clips "
          f"({table[0]['clips']} clips)\ncells: model / static baseline / autoencoder round trip of the real future "
          "(the ceiling); * = model not better than static")
    print(common.table(rows, ["step", "t_s", *METRICS]))
    print("targets: " + ", ".join(f"{m} {t}" for m, t in TARGETS.items()))
    out = common.write(a.name, table, {"checkpoint": a.checkpoint, "data": str(a.data), "episodes": len(data),
                                       "targets": TARGETS})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
