"""ros/spin.py: every executor kind runs callbacks and ends when the context shuts down; the real policy_node
process idles without spinning a core and exits cleanly on SIGINT (how `ros2 launch` stops it) and SIGTERM.
(rclpy's EventsExecutor.spin() ignored both signals and busy-looped at 100 % of a core.)"""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import rclpy
from rclpy.node import Node

from xwam_ros.robot.health import process_cpu_seconds
from xwam_ros.ros.graph import ros_args
from xwam_ros.ros.spin import EXECUTORS, SpinThread, make_executor


@pytest.mark.parametrize("kind", EXECUTORS)
def test_spin_runs_callbacks_and_returns_on_shutdown(kind):
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = Node("spin_test", context=ctx)
    ticks = []
    node.create_timer(0.02, lambda: ticks.append(time.monotonic()))
    spin = SpinThread([node], kind, ctx)
    deadline = time.monotonic() + 20
    while len(ticks) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    ended = spin.stop()  # shuts the context down first: what rclpy's signal handler does on SIGINT / SIGTERM
    assert len(ticks) >= 5, f"{kind}: the timer ran {len(ticks)} times"
    assert ended, f"{kind}: spin_until_shutdown did not return after the context shut down"


def test_unknown_executor_is_refused_by_name():
    with pytest.raises(ValueError, match="executor must be one of events|multi_threaded"):
        make_executor("single", None)


def _start_node(executor: str) -> tuple[subprocess.Popen, list]:
    exe = os.path.join(os.path.dirname(sys.executable), "policy_node")
    args = ros_args(None, {"executor": executor, "imagine": False, "publish_observed_cloud": False})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    deadline = time.monotonic() + 180  # imports torch, builds and warms up the tiny model (and its process)
    while not any("xwam_policy ready" in ln for ln in lines):
        assert proc.poll() is None, f"policy_node exited during start-up: {''.join(lines)[-3000:]}"
        assert time.monotonic() < deadline, f"policy_node not ready: {''.join(lines)[-3000:]}"
        time.sleep(0.2)
    return proc, lines


@pytest.mark.slow
@pytest.mark.parametrize("executor,sig", [("events", signal.SIGINT), ("events", signal.SIGTERM),
                                          ("multi_threaded", signal.SIGINT)])
def test_policy_node_process_idles_and_stops_on_signal(executor, sig):
    proc, lines = _start_node(executor)
    try:
        c0, t0 = process_cpu_seconds(proc.pid), time.monotonic()
        time.sleep(3.0)
        idle = (process_cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0)
        # no camera input: the 1 Hz diagnostics is all there is to do (a busy-looping spin is ~1.0)
        assert idle < 0.4, f"{executor}: the idle node used {idle:.0%} of a core"
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{executor}: policy_node still running 30 s after {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert rc == 0, f"{executor}: exit code {rc} after {sig.name}: {out[-3000:]}"
    assert "Traceback" not in out and "terminate called" not in out, out[-3000:]
