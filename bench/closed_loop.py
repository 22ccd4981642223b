"""Closed-loop benchmark in the simulator (issue 4), and the mini Table 4 of the paper.

    .venv/bin/python bench/closed_loop.py --episodes 100           # shipped model: ANS async vs sync
    .venv/bin/python bench/closed_loop.py --table4 runs/table4     # + models trained with independent/synchronous
    .venv/bin/python bench/closed_loop.py --control-compare        # joint (IK through the URDF) vs Cartesian
    .venv/bin/python bench/closed_loop.py --compare A.json B.json --name NAME   # two runs paired seed by seed

For every (training sampler, inference mode): success rate over seeded episodes that no demonstration used, mean
length of the successful episodes, action latency per query (async: 10 calls, no depth; sync: 50 calls with depth,
as the paper's synchronous baseline). Imagination quality (PSNR, depth AbsRel, Chamfer) on held-out demonstrations.
Episodes run in 2 worker processes with one torch thread each, so latencies are single-thread numbers.

``--control-compare``: the shipped model on the same held-out seeds (500000+, used by no demonstration or earlier
report) with the arm under its Cartesian controller and under joint-position control through ``ik: urdf`` (IK of
every chunk through the Panda URDF, seeded from the measured joints). Success with Wilson 95% intervals, latency and
IK time per chunk go under ``control_compare`` in closed_loop.json; the other rows are kept.
"""
import json
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import common  # noqa: E402

from xwam_ros.data.episodes import EpisodeDataset  # noqa: E402
from xwam_ros.eval.imagination import imagination_quality  # noqa: E402
from xwam_ros.model.policy import XWAMPolicy  # noqa: E402
from xwam_ros.paths import resolve_checkpoint  # noqa: E402
from xwam_ros.sim.evaluate import ClosedLoopConfig, evaluate, paired_comparison, wilson_interval  # noqa: E402


def wilson(k: int, n: int) -> tuple[float, float]:
    low, high = wilson_interval(k, n)
    return round(low, 3), round(high, 3)


def control_compare(a) -> int:
    ckpt = str(resolve_checkpoint(a.checkpoint))
    rows, per_seed = [], {}
    for control in a.controls:
        r = evaluate(ckpt, ClosedLoopConfig(episodes=a.episodes, seed=a.seed, workers=a.workers, control=control))
        k = sum(x["success"] for x in r["rows"])
        rows.append({"control": control, "ik": "urdf" if control == "joint" else "cartesian",
                     "episodes": r["episodes"], "successes": k, "success": round(r["success_rate"], 3),
                     "wilson95": wilson(k, r["episodes"]),
                     "mean_len": round(r["mean_length_success"], 1) if r["mean_length_success"] else None,
                     "action_latency_ms": round(r["action_latency_s"] * 1e3, 1),
                     "ik_chunk_ms": round(r["ik_chunk_s"] * 1e3, 2) if r["ik_chunk_s"] is not None else None,
                     "ik_rejections": r["ik_rejections"], "wall_s": round(r["wall_s"])})
        per_seed[control] = {x["seed"]: x["success"] for x in r["rows"]}
        print(common.table(rows[-1:], list(rows[-1])), flush=True)
    cols = ["control", "ik", "episodes", "successes", "success", "wilson95", "mean_len", "action_latency_ms",
            "ik_chunk_ms", "ik_rejections", "wall_s"]
    print(f"\nclosed loop, joint vs Cartesian control (robosuite Lift, seeds {a.seed}..{a.seed + a.episodes - 1})\n"
          + common.table(rows, cols))
    out = common.RESULTS / f"{a.name}.json"
    doc = json.loads(out.read_text()) if out.exists() else {"machine": common.machine(), "results": []}
    # runs of one control each (e.g. in parallel processes) merge into the same comparison when the seeds agree
    old = doc.get("control_compare", {})
    if old.get("seeds") == [a.seed, a.episodes] and old.get("checkpoint") == a.checkpoint:
        rows = [r for r in old["results"] if r["control"] not in a.controls] + rows
        per_seed = {**{k: v for k, v in old["per_seed"].items() if k not in a.controls}, **per_seed}
    doc["control_compare"] = {"machine": common.machine(), "checkpoint": a.checkpoint, "seeds": [a.seed, a.episodes],
                              "results": rows, "per_seed": per_seed}
    if len(rows) > 1:
        print("\n" + common.table(rows, cols))
    out.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {out} (key control_compare)")
    return 0


def compare(a) -> int:
    """--compare A.json B.json: rows of two result files paired seed by seed (McNemar's exact test) over the seeds
    both ran. Rows match on task, inference mode and first seed; a file of one row each pairs those two rows (e.g.
    async against sync). Written to bench/results/<--name>.json."""
    docs = [[r for r in json.loads(Path(p).read_text())["results"] if "failed_seeds" in r] for p in a.compare]
    key = lambda r: (r["task"], r["infer"], r["execute_steps"], r["seeds"])  # noqa: E731
    if len(docs[0]) == len(docs[1]) == 1:
        pairs = [(docs[0][0], docs[1][0])]
    else:
        b_rows = {key(r): r for r in docs[1]}
        pairs = [(ra, b_rows[key(ra)]) for ra in docs[0] if key(ra) in b_rows]
    rows = []
    for ra, rb in pairs:
        first, n = int(ra["seeds"].rstrip("+")), min(ra["episodes"], rb["episodes"])
        if int(rb["seeds"].rstrip("+")) != first:
            raise SystemExit(f"rows start at different seeds: {ra['seeds']} vs {rb['seeds']}")
        seeds = range(first, first + n)
        fa, fb = ([s for s in r["failed_seeds"] if s in seeds] for r in (ra, rb))
        pair = paired_comparison(seeds, fa, fb)
        rows.append({"task": ra["task"], "a_infer": ra["infer"], "b_infer": rb["infer"],
                     "seeds": f"{first}-{first + n - 1}", "a_success": round(1 - len(fa) / n, 3),
                     "b_success": round(1 - len(fb) / n, 3),
                     **{k: pair[k] for k in ("both", "only_a", "only_b", "neither")},
                     "mcnemar_p": round(pair["mcnemar_p"], 4)})
    if not rows:
        raise SystemExit(f"no rows of {a.compare[0]} and {a.compare[1]} pair up (task, mode and first seed, with "
                         "per-seed outcomes)")
    print(f"A = {a.compare[0]}, B = {a.compare[1]}\n" + common.table(rows, list(rows[0])))
    print(f"wrote {common.write(a.name, rows, {'a': a.compare[0], 'b': a.compare[1]})}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="builtin:lift_tiny", help="the ANS-trained model")
    ap.add_argument("--table4", default=None, help="dir with independent/ and synchronous/ recipe outputs")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--table4-episodes", type=int, default=None, help="episodes for the ablation rows")
    ap.add_argument("--modes", nargs="+", default=["async", "sync"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--heldout", default=str(ROOT / "runs" / "lift_demos"), help="demo dataset (last episodes held out)")
    ap.add_argument("--heldout-episodes", type=int, default=8)
    ap.add_argument("--name", default="closed_loop")
    ap.add_argument("--control-compare", action="store_true", help="joint (ik: urdf) vs Cartesian control instead")
    ap.add_argument("--controls", nargs="+", default=["joint", "cartesian"])
    ap.add_argument("--seed", type=int, default=500_000, help="first seed of --control-compare")
    ap.add_argument("--rows-seed", type=int, default=600_000,
                    help="first seed of the success rows (600000+: used by no demonstration or earlier report)")
    ap.add_argument("--task", default="Lift", help="robosuite task of the success rows: Lift | Stack")
    ap.add_argument("--horizon", type=int, default=0, help="steps per episode (0 = the task's: Lift 200, Stack 300)")
    ap.add_argument("--execute-steps", type=int, default=ClosedLoopConfig.execute_steps,
                    help="actions of each 32-action chunk executed before the next query")
    ap.add_argument("--imagination", action="store_true", help="also score imagination on --heldout demos")
    ap.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"), default=None,
                    help="pair two result files' rows on the same seeds (McNemar) instead of running episodes")
    a = ap.parse_args(argv)
    if a.compare:
        return compare(a)
    if a.control_compare:
        return control_compare(a)
    models = {"ans": str(resolve_checkpoint(a.checkpoint))}
    if a.table4:
        for s in ("independent", "synchronous"):
            p = Path(a.table4) / s / "run" / "last"
            if p.is_dir():
                models[s] = str(p)
    rows, imag = [], []
    for train_name, ckpt in models.items():
        n = a.episodes if train_name == "ans" else (a.table4_episodes or a.episodes)
        for mode in a.modes:
            r = evaluate(ckpt, ClosedLoopConfig(episodes=n, seed=a.rows_seed, mode=mode, workers=a.workers,
                                                task=a.task, horizon=a.horizon, execute_steps=a.execute_steps))
            k = sum(x["success"] for x in r["rows"])
            rows.append({"task": a.task, "train": train_name, "infer": mode, "execute_steps": a.execute_steps,
                         "seeds": f"{a.rows_seed}+", "episodes": r["episodes"],
                         "successes": k, "success": round(r["success_rate"], 3), "wilson95": wilson(k, r["episodes"]),
                         "mean_len": round(r["mean_length_success"], 1) if r["mean_length_success"] else None,
                         "action_latency_ms": round(r["action_latency_s"] * 1e3, 1), "wall_s": round(r["wall_s"]),
                         "horizon": r["horizon"],
                         # for paired comparisons of two models (or modes) on the same seeds (--compare)
                         "failed_seeds": sorted(x["seed"] for x in r["rows"] if not x["success"])})
            print(common.table(rows[-1:], [c for c in rows[-1] if c != "failed_seeds"]), flush=True)
        if a.imagination and Path(a.heldout).is_dir():
            data = EpisodeDataset(a.heldout)
            held = range(len(data) - a.heldout_episodes, len(data))
            q = imagination_quality(XWAMPolicy.from_pretrained(ckpt), data, held)
            imag.append({"train": train_name, **{k: round(v, 4) for k, v in q.items()}})  # per step: imagination.py
    out = common.RESULTS / f"{a.name}.json"
    doc = json.loads(out.read_text()) if out.exists() else {}
    # runs of some rows (e.g. async and sync in two processes) replace only their own rows
    key = lambda r: (r.get("task", "Lift"), r.get("train"), r.get("infer"), r.get("execute_steps", 8),  # noqa: E731
                     r.get("seeds"))
    mine = {key(r) for r in rows}
    rows = [r for r in doc.get("results", []) if key(r) not in mine] + rows
    rows = [{"execute_steps": 8, **r} for r in rows]  # rows written before the option existed executed 8
    cols = ["task", "train", "infer", "execute_steps", "seeds", "episodes", "horizon", "successes", "success",
            "wilson95", "mean_len", "action_latency_ms", "wall_s"]
    print("\nclosed loop (robosuite; seeds used by no demonstration or earlier report)\n"
          + common.table(rows, cols))
    if imag:
        print("\nimagination on held-out demonstrations\n" + common.table(imag, list(imag[0])))
    extra = {k: v for k, v in doc.items() if k not in ("machine", "results")}
    extra.update({"imagination": imag or doc.get("imagination", []), "models": models})
    out = common.write(a.name, rows, extra)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
