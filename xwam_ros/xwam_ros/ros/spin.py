"""How a node process spins its executor, and one shutdown path for every executor kind.

``events`` (the default of the policy node): rclpy's EventsExecutor. Callbacks come from a C++ event queue, without
the Python wait-set rebuilding and futures of rclpy's MultiThreadedExecutor. With three 640x480 RGB-D cameras at
30 Hz (~270 callbacks/s) that bookkeeping held the interpreter lock for about half of a py-spy profile's samples
and gave the action path a 200-300 ms tail (bench/ros_latency.py: ROS overhead p95 221-315 ms with
``multi_threaded``, 13.7 ms with ``events``).

Why a ``spin_once`` loop instead of ``executor.spin()``: in rclpy 9.1 (Kilted) EventsExecutor.spin() never returns to
Python, so rclpy's SIGINT/SIGTERM handler shuts the context down but the loop keeps running at 100 % of a core
(``ros2 launch`` stops nodes with SIGINT). ``spin_once`` returns at least every ``period_s``; the loop then sees the
context shut down (or the handler's KeyboardInterrupt / ExternalShutdownException) and ends.

``multi_threaded`` stays selectable (rclpy's stable executor; callbacks of different callback groups in parallel).
"""
from __future__ import annotations

import threading

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

EXECUTORS = ("events", "multi_threaded")


def make_executor(kind: str, context=None, num_threads: int = 2):
    """An executor of ``kind`` (one of EXECUTORS) on ``context`` (the default context when None)."""
    if kind == "events":
        from rclpy.experimental import EventsExecutor
        return EventsExecutor(context=context)
    if kind == "multi_threaded":
        return MultiThreadedExecutor(num_threads=num_threads, context=context)
    raise ValueError(f"executor must be one of {'|'.join(EXECUTORS)}, got {kind!r}")


def spin_until_shutdown(executor, context=None, period_s: float = 0.1) -> None:
    """Run callbacks until the context shuts down (SIGINT/SIGTERM through rclpy's handler, rclpy.shutdown from
    another thread). Returns normally in every one of those cases; other exceptions propagate."""
    context = context or rclpy.get_default_context()
    try:
        while context.ok():
            executor.spin_once(timeout_sec=period_s)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


class SpinThread:
    """``nodes`` on an executor of ``kind`` spun by spin_until_shutdown in a daemon thread (tests, benchmarks).

    ``stop()`` ends it in the order a node process takes after SIGINT: the context shut down (ends the spin loop, as
    rclpy's signal handler does), the thread joined, the executor shut down, then the nodes destroyed, so no callback
    runs on a destroyed entity."""

    def __init__(self, nodes, kind: str, context, num_threads: int = 2):
        self.context, self.nodes = context, list(nodes)
        self.executor = make_executor(kind, context, num_threads)
        for node in self.nodes:
            self.executor.add_node(node)
        self.thread = threading.Thread(target=spin_until_shutdown, args=(self.executor, context), daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop spinning and destroy the nodes; True when the spin thread ended within ``timeout_s``."""
        rclpy.try_shutdown(context=self.context)
        self.thread.join(timeout_s)
        ended = not self.thread.is_alive()
        self.executor.shutdown(timeout_sec=2)
        for node in reversed(self.nodes):
            node.destroy_node()
        return ended


def run_until_shutdown(nodes, kind: str) -> None:
    """A node process's main loop on the default context: spin ``nodes`` until SIGINT/SIGTERM, then shut the
    executor down, destroy the nodes and the context."""
    executor = make_executor(kind)
    for node in nodes:
        executor.add_node(node)
    try:
        spin_until_shutdown(executor)
    finally:
        executor.shutdown()
        for node in reversed(list(nodes)):
            node.destroy_node()
        rclpy.try_shutdown()
