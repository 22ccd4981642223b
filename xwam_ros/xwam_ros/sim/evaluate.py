"""Closed-loop evaluation in the plain-Python simulator loop (no ROS): the policy acts, the simulator answers.

Each query the policy sees the current three RGB views (resized like the live node does) and the EE state, returns
a chunk of EE deltas, which are accumulated into absolute EE targets from the measured pose (as on the robot) and
the first ``execute_steps`` of them run at the control rate; then it queries again. ``mode``:
* ``async``: ANS inference, the actions after ``action_steps`` (10) calls, no depth branch;
* ``sync``: the synchronous baseline, actions on the video's full schedule (50 calls) with depth on every call.

``control``: ``cartesian`` sends the EE targets to the arm's Cartesian controller; ``joint`` solves every chunk with
IK through the Panda URDF (``ik: urdf``, seeded from the measured joints) and sends the joint positions, with the
gripper going through the finger joint, to the joint-position controller: the path of a real arm under a
joint_trajectory_controller. A chunk that IK rejects moves nothing; the arm holds one step and the policy is asked
again (as the live node does), and the episode counts the rejection.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from ..model.actions import decode_ee_chunk
from ..model.layout import StateLayout, one_arm
from ..model.policy import Observation
from ..geometry.image import resize_rgbd
from ..robot.ik import IKError, UrdfIK, urdf_from_package
from ..robot.panda import panda_ik_config
from .robosuite_env import SimConfig, SimEnv, run_workers


# episode length limits: Lift as in every earlier report; Stack's scripted expert needs 173 steps on average (its
# demos, seed 0), so 300 leaves a policy about 1.7x the expert's time
TASK_HORIZON = {"Lift": 200, "Stack": 300}


def _opt(default, help_: str):
    return field(default=default, metadata={"help": help_})


@dataclass
class ClosedLoopConfig:
    episodes: int = _opt(50, "episodes to run (one env seed each)")
    seed: int = _opt(10_000, "episode e uses env seed (seed + e); keep it disjoint from the demos' seeds (0 ...) and "
                             "from seeds any earlier report used")
    mode: str = _opt("async", "async: actions after action_steps calls, no depth (ANS); sync: the full schedule with "
                              "depth on every call (the paper's synchronous baseline)")
    # 16: bench/results/closed_loop_execute_sweep.json (4 / 8 / 12 / 16 / 24 on tuning seeds), then 200 fresh seeds
    execute_steps: int = _opt(16, "actions of each chunk executed before the next query (the chunk has 32)")
    lookahead: int = _opt(1, "target k + lookahead is sent at step k (the impedance controller lags its target)")
    horizon: int = _opt(0, "control steps before an episode counts as failed; 0 = the task's (Lift 200, Stack 300)")
    workers: int = _opt(1, "episode worker processes (one torch thread each)")
    control: str = _opt("cartesian", "cartesian | joint (IK through the URDF, joint-position control)")
    task: str = _opt("Lift", "robosuite task with a scripted expert: Lift | Stack")

    def __post_init__(self):
        if self.horizon == 0 and self.task in TASK_HORIZON:
            self.horizon = TASK_HORIZON[self.task]

    def validate(self) -> "ClosedLoopConfig":
        if self.task not in TASK_HORIZON:
            raise ValueError(f"ClosedLoopConfig.task must be one of {sorted(TASK_HORIZON)}, got {self.task!r}")
        if self.horizon < 1:
            raise ValueError(f"ClosedLoopConfig.horizon must be >= 1, got {self.horizon}")
        if self.mode not in ("async", "sync"):
            raise ValueError(f"ClosedLoopConfig.mode must be async or sync, got {self.mode!r}")
        if self.control not in ("cartesian", "joint"):
            raise ValueError(f"ClosedLoopConfig.control must be cartesian or joint, got {self.control!r}")
        if self.episodes < 1 or self.execute_steps < 1 or self.lookahead < 0 or self.workers < 1:
            raise ValueError("ClosedLoopConfig: episodes, execute_steps, workers >= 1 and lookahead >= 0")
        return self


def observation(frame, cfg, instruction: str) -> Observation:
    hw = (cfg.height, cfg.width)
    rgb = np.stack([resize_rgbd(frame.rgb[v], None, frame.K[v], hw)[0] for v in cfg.view_names])
    state = StateLayout.of(cfg).pad(np.asarray(frame.state, np.float32))  # the simulated arm in arm 0's slots
    return Observation(rgb=rgb, state=state, instruction=instruction)


def pose_to_target(pose: np.ndarray) -> np.ndarray:
    """One arm's state [xyz, quat wxyz, gripper] -> SimEnv target [xyz, rotvec, gripper]."""
    arm = one_arm(pose, "the simulated Panda")
    rotation = Rotation.from_quat(arm.quaternion(pose), scalar_first=True)
    return np.concatenate([arm.position(pose), rotation.as_rotvec(), [arm.gripper(pose)]])


def panda_ik_for(env: SimEnv) -> UrdfIK:
    """IK of the simulated Panda's grip site in the world frame, from example-robot-data's Panda URDF."""
    return UrdfIK(urdf_from_package(), panda_ik_config(base_pose=env.base_pose()))


def measured_joints(env: SimEnv, ik: UrdfIK) -> np.ndarray:
    """The arm joints and the first finger joint, in ``ik.joint_names`` order (as /joint_states would give them)."""
    return np.append(env.joint_positions(), env.finger_positions()[0])


def chunk_targets(env: SimEnv, poses: np.ndarray, ik: UrdfIK | None) -> tuple[np.ndarray, float | None]:
    """-> (the env's targets [K, 7 or 8] for a chunk of EE poses, IK seconds or None without IK). Joint mode raises
    IKError."""
    if ik is None:
        return np.array([pose_to_target(p) for p in poses]), None
    t = time.perf_counter()
    q = ik.solve_chunk(poses, measured_joints(env, ik))
    dt = time.perf_counter() - t
    return np.column_stack([q[:, :7], ik.cfg.gripper.to_command(q[:, 7])]), dt


def run_episode(env: SimEnv, policy, seed: int, cl: ClosedLoopConfig, ik: UrdfIK | None = None) -> dict:
    """One seeded episode; ``ik`` is required for (and only used with) a joint-controlled env."""
    if (env.cfg.control == "joint") != (ik is not None):
        raise ValueError("a joint-controlled SimEnv needs a UrdfIK and a Cartesian one takes none")
    frame = env.reset(seed=seed)
    cfg = policy.config
    latencies, ik_times, rejected, queries = [], [], [], 0
    while not frame.success and env.t < cl.horizon:
        res = policy.predict_action_chunk(observation(frame, cfg, env.instruction), seed=seed * 1000 + queries,
                            depth_every_call=cl.mode == "sync")
        queries += 1
        latencies.append(res.latency)
        poses = decode_ee_chunk(res.actions, frame.state, cfg.gripper_action)  # the Panda: arm 0's actions
        try:
            targets, ik_s = chunk_targets(env, poses, ik)
        except IKError as e:  # no motion from a rejected chunk: hold one step, then ask again
            rejected.append(str(e))
            frame = env.step(env.hold_target())
            continue
        if ik_s is not None:
            ik_times.append(ik_s)
        for k in range(cl.execute_steps):
            frame = env.step(targets[min(k + cl.lookahead, len(targets) - 1)])
            if frame.success or env.t >= cl.horizon:
                break
    return {"seed": seed, "success": bool(frame.success), "length": env.t, "queries": queries,
            "latency_mean": float(np.mean(latencies)), "latency_p50": float(np.median(latencies)),
            "ik_mean_s": float(np.mean(ik_times)) if ik_times else None, "ik_rejections": len(rejected),
            "ik_errors": rejected[:3]}


def _worker(args) -> list[dict]:
    checkpoint, seeds, cl, sim_cfg, threads = args
    import torch
    torch.set_num_threads(threads)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from ..model.policy import XWAMPolicy
    policy = load_for_mode(XWAMPolicy.from_pretrained(checkpoint), cl.mode)
    env = SimEnv(sim_cfg, seed=seeds[0])
    ik = panda_ik_for(env) if sim_cfg.control == "joint" else None
    rows = []
    for s in seeds:
        rows.append(run_episode(env, policy, s, cl, ik))
        print(f"[sim-eval] {cl.control} seed {s}: {'success' if rows[-1]['success'] else 'failure'} "
              f"after {rows[-1]['length']} steps", file=sys.stderr, flush=True)  # progress of long runs
    env.close()
    return rows


def load_for_mode(policy, mode: str):
    if mode == "sync":
        policy.set_action_steps(policy.config.video_steps)
    return policy


def evaluate(checkpoint, cl: ClosedLoopConfig, sim_cfg: SimConfig | None = None) -> dict:
    """Success rate, episode length and action latency over ``cl.episodes`` seeded episodes."""
    cl.validate()
    sim_cfg = sim_cfg or SimConfig(horizon=cl.horizon, control=cl.control, task=cl.task).validate()
    if sim_cfg.control != cl.control:
        raise ValueError(f"ClosedLoopConfig.control {cl.control!r} but SimConfig.control {sim_cfg.control!r}")
    seeds = [cl.seed + e for e in range(cl.episodes)]
    threads = max(1, (os.cpu_count() or 2) // cl.workers)
    jobs = [(str(checkpoint), seeds[w::cl.workers], cl, sim_cfg, threads) for w in range(cl.workers)]
    t = time.perf_counter()
    rows = run_workers(_worker, jobs)
    rows.sort(key=lambda r: r["seed"])
    ok = [r for r in rows if r["success"]]
    ik_s = [r["ik_mean_s"] for r in rows if r["ik_mean_s"] is not None]
    return {"mode": cl.mode, "control": cl.control, "horizon": cl.horizon, "episodes": len(rows),
            "success_rate": len(ok) / len(rows),
            "mean_length_success": float(np.mean([r["length"] for r in ok])) if ok else None,
            "action_latency_s": float(np.mean([r["latency_mean"] for r in rows])),
            "ik_chunk_s": float(np.mean(ik_s)) if ik_s else None,
            "ik_rejections": int(sum(r["ik_rejections"] for r in rows)),
            "wall_s": time.perf_counter() - t, "rows": rows}


def wilson_interval(successes: int, episodes: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (scipy's binomial test): every reported rate carries one."""
    from scipy.stats import binomtest
    ci = binomtest(successes, episodes).proportion_ci(level, method="wilson")
    return float(ci.low), float(ci.high)


def paired_comparison(seeds, failed_a, failed_b) -> dict:
    """Two policies (or modes) run on the same ``seeds``: how many seeds only A / only B solved, and McNemar's exact
    two-sided p-value (scipy's binomial test on those discordant seeds). Pairing removes the seeds' own difficulty,
    which a comparison of two success rates and their intervals carries."""
    from scipy.stats import binomtest
    seeds, fa, fb = set(seeds), set(failed_a), set(failed_b)
    if not (fa | fb) <= seeds:
        raise ValueError(f"failed seeds {sorted((fa | fb) - seeds)[:5]} are not among the compared seeds")
    only_a, only_b = len(fb - fa), len(fa - fb)
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"seeds": len(seeds), "both": len(seeds - fa - fb), "only_a": only_a, "only_b": only_b,
            "neither": len(fa & fb), "mcnemar_p": float(p)}


def eval_main(argv=None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="xwam-ros sim-eval", description="Closed-loop success in the simulator.")
    ap.add_argument("checkpoint", help="checkpoint directory, or builtin:<name>")
    for f in ClosedLoopConfig.__dataclass_fields__.values():
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default,
                        help=f"{f.metadata['help']} (default: {f.default})")
    ap.add_argument("--json", default=None, help="also write the summary here")
    a = ap.parse_args(argv)
    from ..paths import resolve_checkpoint
    cl = ClosedLoopConfig(**{k: getattr(a, k) for k in ClosedLoopConfig.__dataclass_fields__})
    res = evaluate(resolve_checkpoint(a.checkpoint), cl)
    k, n = sum(r["success"] for r in res["rows"]), res["episodes"]
    low, high = wilson_interval(k, n)
    print(f"[sim-eval] {res['mode']} / {res['control']}: success {k}/{n} = {k / n:.0%} (95 % Wilson interval "
          f"{low:.0%}-{high:.0%}), mean length {res['mean_length_success']}, action latency "
          f"{res['action_latency_s'] * 1e3:.0f} ms")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(eval_main())
