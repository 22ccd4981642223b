"""``xwam-ros`` (also ``python -m xwam_ros``): one entry point for the graph, the demo, and the tools."""
from __future__ import annotations

import argparse
import importlib
import sys


def _demo(a):
    from .ros.demo import run_demo
    s = run_demo(duration=a.duration, out_dir=a.out, config_file=a.config, max_imaginations=a.max_imaginations,
                 episodes=a.episodes, namespace=a.namespace)
    return 0 if s["counters"].get("queries", 0) > 0 else 1


def _run(a):
    """launch/policy.launch.py through the launch API (`ros2 launch xwam_ros policy.launch.py` with the same
    arguments); the in-process graph only where launch is not installed."""
    import yaml

    from .ros.graph import run_graph
    overrides = {}
    for kv in a.param:
        k, sep, v = kv.partition(":=")
        if not sep or not k:
            raise SystemExit(f"xwam-ros run: -p expects name:=value, got {kv!r}")
        overrides[k] = yaml.safe_load(v)
    print(f"[xwam-ros] running ({'with' if a.sim else 'without'} the simulated robot); Ctrl-C to stop")
    return run_graph(duration=a.duration, config_file=a.config, sim=a.sim, overrides=overrides,
                     namespace=a.namespace, checkpoint=a.checkpoint, use_sim_time=a.use_sim_time, rviz=a.rviz,
                     sim_node=a.sim_node)


TOOLS = {"record": ("xwam_ros.ros.recorder", "record_main", "record a bag of the evaluation topic set"),
         "eval": ("xwam_ros.eval.replay", "eval_main", "offline bag replay evaluation"),
         "train": ("xwam_ros.train.trainer", "train_main", "train or fine-tune X-WAM"),
         "sim-demos": ("xwam_ros.sim.rollout", "demos_main", "scripted-expert demonstrations in the simulator"),
         "sim-eval": ("xwam_ros.sim.evaluate", "eval_main", "closed-loop success of a checkpoint in the simulator"),
         "convert": ("xwam_ros.data.convert", "convert_main", "datasets: bags / official X-WAM layout <-> episodes"),
         "recipe": ("xwam_ros.train.recipe", "recipe_main", "demos -> tiny VAE -> stats -> tiny X-WAM, one command"),
         "info": ("xwam_ros.model.footprint", "info_main", "parameters, memory, FLOPs and ideal latency of a preset")}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in TOOLS:
        mod, fn, _ = TOOLS[argv[0]]
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # an optional dependency of this tool (e.g. robosuite) is missing
            if (exc.name or "").split(".")[0] == "xwam_ros":
                raise  # our own module missing is a bug, not a build option
            print(f"xwam-ros {argv[0]}: needs the Python package {exc.name!r}, which is not installed "
                  f"(see the README's install section)", file=sys.stderr)
            return 2
        return getattr(module, fn)(argv[1:]) or 0
    p = argparse.ArgumentParser(prog="xwam-ros", description="X-WAM world-action model as a ROS 2 policy. "
                                f"Tools: {', '.join(TOOLS)} (pass --help after them).")
    sub = p.add_subparsers(dest="cmd")
    d = sub.add_parser("demo", help="built-in default: simulated Panda + shipped policy for a few episodes; "
                                    "prints success and latency, writes an MCAP and a PNG")
    d.add_argument("--episodes", type=int, default=3, help="simulated episodes to run (default 3)")
    d.add_argument("--duration", type=float, default=600.0, help="stop after this many seconds (default 600)")
    d.add_argument("--max-imaginations", type=int, default=0, help="stop after this many imagined futures")
    d.add_argument("--out", default="outputs/demo", help="output directory")
    d.add_argument("--config", default=None, help="parameter YAML (default: the package's config/policy.yaml)")
    d.add_argument("--namespace", default="", help="namespace of the graph (as policy.launch.py namespace:=)")
    d.set_defaults(func=_demo)
    r = sub.add_parser("run", help="launch/policy.launch.py (as `ros2 launch xwam_ros policy.launch.py`)")
    r.add_argument("--config", default=None, help="parameter YAML (default: config/policy.yaml)")
    r.add_argument("--checkpoint", default="", help="checkpoint directory or builtin:<name> (default: the config's)")
    r.add_argument("--sim", action="store_true", help="also start the config's simulated robot (sim_node)")
    r.add_argument("--sim-node", default="", choices=["", "sim_robot", "camera_source"],
                   help="override the config's sim_node")
    r.add_argument("--rviz", action="store_true", help="also start rviz2 (needs rviz2, i.e. an apt ROS install)")
    r.add_argument("--use-sim-time", action="store_true", help="follow /clock (bag replay)")
    r.add_argument("--namespace", default="", help="namespace of the nodes")
    r.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")
    r.add_argument("-p", "--param", action="append", default=[], help="parameter override name:=value")
    r.set_defaults(func=_run)
    a = p.parse_args(argv or ["demo"])
    return a.func(a)


if __name__ == "__main__":
    raise SystemExit(main())
