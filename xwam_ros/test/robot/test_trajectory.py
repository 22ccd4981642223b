import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.robot.trajectory import StreamingExecutor, build_joint_trajectory, chunk_times, drop_past

CLS = (JointTrajectory, JointTrajectoryPoint, Duration, Time)


def _tfs(msg):
    return np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])


def test_anchored_stamps_monotonic_and_past_points_dropped():
    obs, dt = 100.0, 0.05
    times = chunk_times(obs, dt, 32)
    pos = np.linspace(0, 1, 32)[:, None].repeat(2, 1)
    keep = drop_past(times, now_s=100.4, lead_s=0.02)
    msg = build_joint_trajectory(*CLS, ["j1", "j2"], pos[keep], times[keep], stamp_s=obs)
    tfs = _tfs(msg)
    assert msg.joint_names == ["j1", "j2"] and msg.header.stamp.sec == 100
    assert np.all(np.diff(tfs) > 0) and obs + tfs[0] > 100.42
    assert len(msg.points) == 32 - 8
    assert list(msg.points[-1].velocities) == [0.0, 0.0]


def test_rejects_non_increasing():
    with pytest.raises(ValueError, match="strictly increasing"):
        build_joint_trajectory(*CLS, ["j"], np.zeros((2, 1)), np.array([1.0, 1.0]), stamp_s=0.0)


def test_streaming_join_has_no_jump():
    dt = 1 / 15
    ex = StreamingExecutor(dt=dt, overlap_steps=4, lead_s=6 * dt)
    t0 = chunk_times(0.0, dt, 15)
    ex.merge(np.sin(t0)[:, None], t0, now_s=0.0)
    # the next chunk was predicted from an observation at 0.3 s, arrives 0.4 s later, and disagrees by an offset
    t1 = chunk_times(0.3, dt, 15)
    times, pos = ex.merge((np.sin(t1) + 0.2)[:, None], t1, now_s=0.7)
    steps = np.abs(np.diff(pos[:, 0]))
    inside = np.abs(np.diff(np.sin(t1))).max()
    assert np.all(np.diff(times) > 0) and times[0] > 0.7
    assert steps.max() <= inside + 0.2 / 4 + 1e-9  # the offset is spread over the overlap window


def test_stale_chunk_keeps_old_plan():
    dt = 0.1
    ex = StreamingExecutor(dt=dt)
    t0 = chunk_times(0.0, dt, 10)
    ex.merge(np.zeros((10, 1)), t0, 0.0)
    times, pos = ex.merge(np.ones((3, 1)), chunk_times(0.0, dt, 3), now_s=0.5)
    assert np.all(pos == 0) and times[0] > 0.5
