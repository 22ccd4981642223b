"""``xwam-ros convert``: move demonstrations between bags, the official X-WAM layout and our episode datasets.

    xwam-ros convert bags-to-dataset --config config/policy.yaml --out data/mine rec1.mcap rec2.mcap
    xwam-ros convert dataset-to-bags data/mine --config config/policy.yaml --out bags/
    xwam-ros convert official-to-dataset /data/X-WAM-RoboCasa --out data/robocasa --views a b c --near 0.1 --far 4
    xwam-ros convert dataset-to-official data/mine --out /data/mine_official
    xwam-ros convert stats data/mine            # q01/q99 statistics -> data/mine/stats.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

from ..model.layout import ONE_ARM
from .episodes import DatasetError, DatasetMeta, EpisodeDataset, write_episode


def compute_stats(root: Path) -> dict:
    """q01/q99 of states and actions over every step (actions symmetric, scale only), saved as stats.json."""
    from .clips import dataset_normalizer
    norm, steps = dataset_normalizer(root)
    stats = {**norm.to_dict(), "steps": int(steps), "episodes": len(EpisodeDataset(root))}
    (Path(root) / "stats.json").write_text(json.dumps(stats, indent=1, default=lambda x: np.asarray(x).tolist()))
    return stats


def bags_to_dataset(bags, config, out: Path, gripper_action: str, fps: float | None, log=print) -> Path:
    from .bag_reader import BagError
    from ..robot.config_file import load_setup
    from .bags import bag_to_episode
    setup = load_setup(config)
    meta = DatasetMeta(fps=fps or setup.control_rate, view_names=tuple(c.name for c in setup.cameras),
                       view_kinds=tuple(c.kind for c in setup.cameras), state_names=ONE_ARM.state_names(),
                       action_names=ONE_ARM.action_names(), gripper_action=gripper_action, base_frame=setup.base_frame,
                       extra={"source": "bags", "config": str(config)})
    EpisodeDataset.create(out, meta)
    n = 0
    for bag in bags:
        try:
            ep = bag_to_episode(bag, setup, gripper_action)
        except (BagError, DatasetError) as exc:  # one bad recording does not lose the others
            log(f"[convert] skipped {bag}: {exc}")
            continue
        if fps is None and "stamps" in ep.info and n == 0:  # the camera rate is the episode's step rate
            meta.fps = float(1.0 / np.median(np.diff(ep.info["stamps"])))
            EpisodeDataset.create(out, meta)
        write_episode(EpisodeDataset.episode_path(out, n), ep)
        n += 1
    log(f"[convert] {n}/{len(bags)} bags -> {out}")
    return Path(out)


def dataset_to_bags(root: Path, config, out: Path, log=print) -> list[Path]:
    from ..robot.config_file import load_setup
    from .bags import episode_to_bag
    data, setup = EpisodeDataset(root), load_setup(config)
    Path(out).mkdir(parents=True, exist_ok=True)
    paths = [episode_to_bag(data[i], data.meta, Path(out) / f"episode_{i:06d}", setup) for i in range(len(data))]
    log(f"[convert] {len(paths)} episodes -> bags in {out}")
    return paths


def official_to_dataset(src: Path, out: Path, views, near: float, far: float, fps: float, cameras=None,
                        gripper_action: str = "delta", log=print) -> Path:
    from .official import import_official, official_episodes
    kinds = tuple((cameras or {}).get(v, {}).get("kind", "wrist" if "hand" in v else "static") for v in views)
    meta = DatasetMeta(fps=fps, view_names=tuple(views), view_kinds=kinds, state_names=ONE_ARM.state_names(),
                       action_names=ONE_ARM.action_names(), gripper_action=gripper_action,
                       extra={"source": f"official:{src}", "depth_range": [near, far]})
    EpisodeDataset.create(out, meta)
    files = official_episodes(src)
    for i, f in enumerate(files):
        write_episode(EpisodeDataset.episode_path(out, i), import_official(f, src, views, near, far, cameras,
                                                                            gripper_action))
    log(f"[convert] {len(files)} official episodes -> {out}")
    return Path(out)


def dataset_to_official(root: Path, out: Path, near: float, far: float, crf: int = 0, log=print) -> Path:
    from .official import export_official
    data = EpisodeDataset(root)
    export_official((data[i] for i in range(len(data))), data.meta, out, near, far, crf)
    log(f"[convert] {len(data)} episodes -> official layout in {out}")
    return Path(out)


def convert_main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xwam-ros convert", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bags-to-dataset", help="recorded bags -> one episode each")
    b.add_argument("bags", nargs="+")
    b.add_argument("--config", required=True, help="the robot's policy-node YAML (topics, cameras, frames)")
    b.add_argument("--out", required=True)
    b.add_argument("--gripper-action", default="delta", choices=("delta", "absolute"),
                   help="absolute: gripper commands from the controller topic")
    b.add_argument("--fps", type=float, default=None, help="default: the recorded camera rate")
    e = sub.add_parser("dataset-to-bags", help="episodes -> bags with a real cell's topics")
    e.add_argument("dataset")
    e.add_argument("--config", required=True)
    e.add_argument("--out", required=True)
    o = sub.add_parser("official-to-dataset", help="official X-WAM layout -> episodes")
    o.add_argument("src")
    o.add_argument("--out", required=True)
    o.add_argument("--views", nargs="+", required=True, help="view names in the model's order")
    o.add_argument("--near", type=float, required=True)
    o.add_argument("--far", type=float, required=True)
    o.add_argument("--fps", type=float, default=20.0)
    o.add_argument("--cameras", default=None, help="YAML {view: {K, extrinsic, kind}} (no calibration in the layout)")
    o.add_argument("--gripper-action", default="delta", choices=("delta", "absolute"))
    x = sub.add_parser("dataset-to-official", help="episodes -> official X-WAM layout")
    x.add_argument("dataset")
    x.add_argument("--out", required=True)
    x.add_argument("--near", type=float, default=0.1)
    x.add_argument("--far", type=float, default=3.0)
    x.add_argument("--crf", type=int, default=0, help="0 = lossless RGB; ~20 = small lossy files")
    s = sub.add_parser("stats", help="q01/q99 normalisation statistics -> <dataset>/stats.json")
    s.add_argument("dataset")
    a = ap.parse_args(argv)
    if a.cmd == "bags-to-dataset":
        bags_to_dataset(a.bags, a.config, Path(a.out), a.gripper_action, a.fps)
    elif a.cmd == "dataset-to-bags":
        dataset_to_bags(Path(a.dataset), a.config, Path(a.out))
    elif a.cmd == "official-to-dataset":
        cams = yaml.safe_load(Path(a.cameras).read_text()) if a.cameras else None
        official_to_dataset(Path(a.src), Path(a.out), a.views, a.near, a.far, a.fps, cams, a.gripper_action)
    elif a.cmd == "dataset-to-official":
        dataset_to_official(Path(a.dataset), Path(a.out), a.near, a.far, a.crf)
    else:
        st = compute_stats(Path(a.dataset))
        print(json.dumps({k: v for k, v in st.items()}, indent=1, default=lambda x: np.asarray(x).tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(convert_main())
