"""Shared test setup: every run gets its own DDS domain on localhost, large messages work across processes, and the
shared 2-core machine is not oversubscribed by torch threads."""
import os
import random

os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import time  # noqa: E402

import pytest  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard dependency of the package
    pass


_BASE_DOMAIN = int(os.environ["ROS_DOMAIN_ID"])
_modules_seen: list = []


@pytest.fixture(scope="module", autouse=True)
def private_dds_domain(request):
    """Each test module on its own DDS domain (ids 1..100, from the run's base id): a participant a previous module
    left discovering, or its late samples, can never reach this module's nodes. rclpy reads ROS_DOMAIN_ID when a
    context is initialised, and launched processes inherit it."""
    _modules_seen.append(request.module.__name__)
    os.environ["ROS_DOMAIN_ID"] = str((_BASE_DOMAIN + len(_modules_seen) - 1) % 100 + 1)
    yield
    os.environ["ROS_DOMAIN_ID"] = str(_BASE_DOMAIN)


@pytest.fixture
def ros_context():
    """An initialised rclpy context, shut down after the test."""
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        yield ctx
    finally:
        rclpy.shutdown(context=ctx)


def wait_for(predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    """Wait (executors spinning in other threads) until ``predicate()`` is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def spin_until(executor, predicate, timeout: float = 10.0, step: float = 0.02) -> bool:
    """Spin ``executor`` until ``predicate()`` is true or ``timeout`` seconds pass; returns the predicate."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=step)
    return bool(predicate())


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory):
    """Two scripted-expert Lift episodes from the real simulator (a few seconds), shared by the data tests."""
    from xwam_ros.sim.robosuite_env import SimConfig
    from xwam_ros.sim.rollout import generate
    out = tmp_path_factory.mktemp("sim") / "lift"
    summary = generate(out, 2, seed=7, workers=1, cfg=SimConfig(horizon=150), log=lambda *_: None)
    assert summary["expert_success"] == 1.0
    return out
