"""Imagination quality per future step, model vs the static-world baseline, on held-out demonstrations (issue 12).

    .venv/bin/xwam-ros sim-demos --out runs/heldout_lift --episodes 16 --seed 700000   # seeds no demo used
    .venv/bin/python bench/imagination.py --data runs/heldout_lift

For every future step the node publishes (frame f, f * actions_per_frame * action_dt seconds ahead): PSNR (static
views), depth AbsRel and delta1 (all views), Chamfer of the fused clouds, for the model's imagination, for "the
future looks like now", and for the autoencoder's round trip of the real future (what the decoder can show at best).
The Chamfer distance is also computed on the clouds cropped to the workspace (``--workspace``, base-frame box; the
default is robosuite Lift's table top and the 0.6 m above it, where arm and cube move): whole-cloud Chamfer is
dominated by far background (the sideview sees walls 4 m away). Prints the table with the issue's targets and
writes bench/results/imagination.json.
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from xwam_ros.data.episodes import EpisodeDataset  # noqa: E402
from xwam_ros.eval.imagination import imagination_per_step, metric_names  # noqa: E402
from xwam_ros.model.policy import XWAMPolicy  # noqa: E402
from xwam_ros.paths import resolve_checkpoint  # noqa: E402

TARGETS = {"psnr": ">= 24", "abs_rel": "<= 0.15", "delta1": ">= 0.80", "chamfer_m": "<= 0.03",
           "chamfer_workspace_m": "<= 0.03"}
LIFT_WORKSPACE = (-0.6, -0.45, 0.78, 0.45, 0.45, 1.4)  # x0 y0 z0 x1 y1 z1, metres in robosuite's world frame


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="builtin:lift_tiny")
    ap.add_argument("--data", default=str(ROOT / "runs" / "heldout_lift"), help="held-out demo dataset")
    ap.add_argument("--clips-per-episode", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="noise seed of the imagination")
    ap.add_argument("--name", default="imagination")
    ap.add_argument("--workspace", type=float, nargs=6, default=LIFT_WORKSPACE, metavar=("X0", "Y0", "Z0", "X1", "Y1", "Z1"),
                    help="base-frame box of the cropped Chamfer (default: Lift's table top and 0.6 m above)")
    a = ap.parse_args(argv)
    box = (tuple(a.workspace[:3]), tuple(a.workspace[3:]))
    import torch
    torch.set_num_threads(2)
    policy = XWAMPolicy.from_pretrained(resolve_checkpoint(a.checkpoint))
    data = EpisodeDataset(a.data)
    table = imagination_per_step(policy, data, range(len(data)), a.clips_per_episode, a.seed, workspace=box)
    rows = []
    for r in table:
        row = {"step": r["step"], "t_s": r["t_s"]}
        for m in metric_names(box):
            row[m] = (f"{r[f'{m}_model']:.3f} / {r[f'{m}_static']:.3f} / {r[f'{m}_autoencoder']:.3f}"
                      + ("" if r["model_better"][m] else " *"))
        rows.append(row)
    print(f"imagination of {a.checkpoint} on {len(data)} held-out episodes x {a.clips_per_episode} clips "
          f"({table[0]['clips']} clips)\ncells: model / static baseline / autoencoder round trip of the real future "
          "(the ceiling); * = model not better than static")
    print(common.table(rows, ["step", "t_s", *metric_names(box)]))
    print("targets: " + ", ".join(f"{m} {t}" for m, t in TARGETS.items()))
    out = common.write(a.name, table, {"checkpoint": a.checkpoint, "data": str(a.data), "episodes": len(data),
                                       "targets": TARGETS, "workspace": box})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
