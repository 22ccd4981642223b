"""The policy node over real DDS: dry run vs enabled, trajectory semantics, bad input, sync, clouds, parameters."""
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSProfile
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rig import CONFIG, Harness, slowed, wait_for
from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.ros.graph import ros_args
from xwam_ros.robot.config import ParameterError
from xwam_ros.ros.pointcloud2 import read_xyzrgb
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.sim.procedural import default_boxes


# a node with a warmed-up model per test, over DDS: 1-4 s each (60 s for the module on an idle 2-core CPU), so none
# is in the fast tier
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def policy():
    cfg = get_preset("tiny", view_names=("agentview", "sideview", "eye_in_hand"), action_steps=4, video_steps=8,
                     action_dt=0.05)
    return XWAMPolicy.from_config(cfg, seed=0)


@pytest.fixture
def harness(policy, request):
    h = Harness(policy, **getattr(request, "param", {}))
    yield h
    h.close()


def test_dry_run_sends_nothing_then_enable_sends_safe_anchored_trajectories(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("queries") >= 2)
    assert h.trajs == [] and h.counter("dry_run_chunks") >= 1  # dry run: computed, never sent
    h.enable(True)
    assert h.feed_until(lambda: len(h.trajs) >= 1)
    msg, received = h.trajs[0]
    assert list(msg.joint_names) == ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    tfs = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    assert np.all(np.diff(tfs) > 0) and tfs[0] > 0
    assert stamp + tfs[0] > received - 0.2  # anchored to the observation; past points were dropped
    pos = np.array([list(p.positions) for p in msg.points])
    lim = h.node.cfg.limits
    assert np.all(pos >= np.array(lim.position_min) - 1e-9) and np.all(pos <= np.array(lim.position_max) + 1e-9)
    steps = np.abs(np.diff(pos, axis=0))
    assert np.all(steps <= np.array(lim.max_step) + 1e-9)
    # no jump from the measured state: the first sent point is (dropped points + 1) limited steps away at most
    first_index = h.node.policy.config.num_actions - len(msg.points)
    assert np.all(np.abs(pos[0] - h.pub.q) <= (first_index + 1) * np.array(lim.max_step) + 1e-6)
    h.enable(False)
    q = h.counter("queries")
    assert h.feed_until(lambda: h.counter("queries") >= q + 2)  # a chunk in flight may still land: wait two
    n = len(h.trajs)
    q = h.counter("queries")
    assert h.feed_until(lambda: h.counter("queries") >= q + 3)
    assert len(h.trajs) == n  # disabled again: nothing more is sent


@pytest.mark.parametrize("kind,kw,match", [
    ("bad_input", {"encoding": "yuv422"}, "unsupported colour encoding"),
    ("bad_input", {"depth_fn": lambda d: np.full_like(d, np.nan)}, "valid"),
    ("bad_input", {"truncate_colour": 100}, "/color: sensor_msgs/Image CDR truncated at data"),
])
def test_bad_input_is_reported_and_node_keeps_running(harness, kind, kw, match):
    h = harness
    # the first report may be an unrelated start-up one (e.g. joint states not delivered yet): wait for ours
    assert h.feed_until(lambda: h.counter(kind) >= 1 and match in h.node.last_error, timeout=10, **kw)
    assert h.counter("queries") == 0
    assert h.feed_until(lambda: h.counter("queries") >= 1)  # good input again: it recovers


def test_missing_camera_info_and_wrong_size_info(harness):
    h = harness
    assert h.feed_until(lambda: "no camera_info received yet" in h.node.last_error, timeout=10, info=False)
    assert h.counter("bad_input") >= 1 and h.counter("queries") == 0
    # intrinsics of a 320x240 stream for 160x120 images: K would be wrong by 2x
    assert h.feed_until(lambda: "camera_info is 320x240 but the colour image is 160x120" in h.node.last_error,
                        timeout=10, info_hw=(240, 320))
    assert h.counter("queries") == 0


def test_stale_and_out_of_order_frames_never_query(harness):
    h = harness
    # frames 10 s old: wait until the node has seen (and dropped) some, however long discovery takes
    assert h.feed_until(lambda: h.counter("stale_dropped") >= 1, t_s=h.pub.now() - 10.0)
    assert h.counter("queries") == 0
    assert h.feed_until(lambda: h.counter("queries") >= 1)
    before = h.node.sync.stats.out_of_order
    h.pub.publish(t_s=h.pub.now() - 5.0)
    assert wait_for(lambda: h.node.sync.stats.out_of_order > before, timeout=5.0)


def test_sync_with_jitter_and_a_dropped_camera(harness):
    h = harness
    h.feed_until(lambda: False, timeout=1.5, cams=("agentview", "sideview"))
    assert h.counter("queries") == 0 and h.node.sync.stats.matched == 0
    rng = np.random.default_rng(0)
    assert h.feed_until(lambda: h.counter("queries") >= 2, jitter=None)
    ok = h.feed_until(lambda: h.node.sync.stats.matched >= 8, timeout=10,
                      **{"jitter": list(rng.uniform(-0.008, 0.008, 3))})
    assert ok and h.node.sync.stats.last_spread_s <= h.node.cfg.sync_slop


def test_observed_cloud_lies_on_the_known_scene(harness):
    h = harness
    assert h.feed_until(lambda: len(h.observed) >= 1)
    pts, cols = read_xyzrgb(h.observed[-1])
    assert len(pts) > 1000 and h.observed[-1].header.frame_id == "base_link"
    on_table = np.abs(pts[:, 2]) < 0.01
    in_box = np.zeros(len(pts), bool)
    for b in default_boxes():
        in_box |= np.all((pts >= b.lo - 0.01) & (pts <= b.hi + 0.01), axis=1)
    assert (on_table | in_box).mean() > 0.9
    red = np.all(cols == [220, 40, 40], axis=1)
    assert red.sum() > 10
    cube = default_boxes()[0]
    assert np.all((pts[red] >= cube.lo - 0.01) & (pts[red] <= cube.hi + 0.01))


@pytest.mark.parametrize("harness", [{"imagine": True}], indirect=True)
def test_imagination_publishes_one_future_stamped_cloud_per_step(harness):
    h = harness
    cfg = h.node.policy.config
    assert h.feed_until(lambda: len(h.clouds) >= cfg.num_frames - 1, timeout=30)
    stamps = [c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in h.clouds[: cfg.num_frames - 1]]
    assert np.allclose(np.diff(stamps), cfg.actions_per_frame * h.node.dt, atol=1e-6)  # future steps, 4 actions apart
    assert all(c.header.frame_id == "base_link" and c.point_step == 16 for c in h.clouds)


def test_parameter_validation(policy):
    for overrides, match in (({"execution_mode": "bogus"}, "execution_mode"),
                             ({"position_min": [0.0]}, "position_max"),
                             ({"cameras.agentview.extrinsic": [1.0] * 15}, "extrinsic"),
                             ({"cameras.sideview.kind": "ceiling"}, "kind")):
        ctx = rclpy.Context()
        rclpy.init(args=ros_args(CONFIG, overrides), context=ctx)
        try:
            with pytest.raises(ParameterError, match=match):
                PolicyNode(policy=policy, warm_up=False, context=ctx)
        finally:
            rclpy.shutdown(context=ctx)


@pytest.mark.parametrize("harness", [{"execution_mode": "streaming", "enabled": True, "execute_steps": 4}],
                         indirect=True)
def test_streaming_mode_replans_while_executing_without_jumps(harness):
    h = harness
    assert h.feed_until(lambda: len(h.trajs) >= 3, timeout=30)
    lim = h.node.cfg.limits
    step = np.minimum(np.array(lim.max_step), np.array(lim.max_velocity) * h.node.dt)
    for msg, _ in h.trajs:
        tfs = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        pos = np.array([list(p.positions) for p in msg.points])
        assert np.all(np.diff(tfs) > 0)
        # the merged plan is limited from where the committed plan is now: every step within the filter's bound
        assert np.all(np.abs(np.diff(pos, axis=0)) <= step + 1e-9)
    ends = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 + m.points[-1].time_from_start.sec
            + m.points[-1].time_from_start.nanosec * 1e-9 for m, _ in h.trajs]
    assert all(received < end for (_, received), end in zip(h.trajs[1:], ends))  # replanned before the plan ran out


# the random test model's chunks are wild: with these limits only the gripper (range [0, 0.04]) saturates
WIDE_LIMITS = {"position_min": [-1e3] * 6 + [0.0], "position_max": [1e3] * 6 + [0.04],
               "max_velocity": [1e3] * 7, "max_step": [1e3] * 7}


# --- safety: nothing toward the robot in dry run, from a slow chunk or from a stale one --------------------------------
@pytest.mark.parametrize("harness", [{"ik": "none"}], indirect=True)
def test_ik_none_publishes_nothing_in_dry_run_and_the_enable_reply_says_what_is_sent(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("queries") >= 2 and len(h.chunks) >= 2)
    assert h.targets == [] and h.trajs == []  # dry run: the action chunk is informational, nothing else goes out
    resp = h.enable(True)
    assert "ik=none" in resp.message and "no controller output" in resp.message
    assert "will be sent" not in resp.message
    assert h.feed_until(lambda: len(h.targets) >= 1)
    assert h.trajs == []  # ik=none never drives a controller
    assert h.enable(False).message.startswith("disabled")


@pytest.mark.parametrize("harness", [{"ik": "none", "enabled": True, "max_inference_time": 0.001},
                                     {"ik": "gantry", "enabled": True, "max_inference_time": 0.001}], indirect=True)
def test_slow_inference_is_rejected_before_anything_is_published(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("rejected_chunk") >= 2 and len(h.chunks) >= 2)
    assert "inference took" in h.node.last_error
    assert h.targets == [] and h.trajs == []


def test_observation_stale_after_inference_is_rejected(policy):
    h = Harness(slowed(policy, predict=0.8), ik="none", enabled=True, max_observation_age=0.5)
    try:
        assert h.feed_until(lambda: h.counter("rejected_chunk") >= 2)
        assert "became stale during inference" in h.node.last_error
        assert h.counter("queries") >= 2 and h.targets == [] and h.trajs == []
    finally:
        h.close()


@pytest.mark.parametrize("harness", [WIDE_LIMITS], indirect=True)
def test_gripper_saturation_is_not_counted_as_safety_limiting(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("queries") >= 3)
    assert h.counter("safety_limited_chunks") == 0  # only a saturated gripper: nothing was really limited
    h.node.safety.smax[:] = 1e-6  # now every chunk is really rate-limited (a change the limits allow at run time)
    q = h.counter("queries")
    assert h.feed_until(lambda: h.counter("queries") >= q + 2)
    assert h.counter("safety_limited_chunks") >= 1


# --- streaming: one trajectory per committed chunk, stamped with the observation --------------------------------------
@pytest.mark.parametrize("harness", [{"execution_mode": "streaming", "enabled": True, "execute_steps": 16}],
                         indirect=True)
def test_streaming_commits_execute_steps_and_stamps_trajectories_with_the_observation(harness):
    h = harness
    dt = h.node.dt
    assert h.feed_until(lambda: len(h.trajs) >= 3, timeout=40)
    chunks = {(c.header.stamp.sec, c.header.stamp.nanosec): c for c in h.chunks}
    stamps = []
    for msg, _ in h.trajs[:3]:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        assert key in chunks  # the trajectory carries the stamp of the observation its chunk came from
        stamps.append((key[0] + key[1] * 1e-9, chunks[key].model_latency))
    for (t_a, lat_a), (t_b, _) in zip(stamps, stamps[1:]):
        # the next observation is taken when the committed 16 actions are one inference from running out; a frame
        # arrives every 0.1 s, so the next set is at most one frame period later than that
        assert t_b >= t_a + 16 * dt - lat_a - 0.15, (t_b - t_a, lat_a)
    assert h.counter("skipped_while_executing") >= 1


# --- services and topics ----------------------------------------------------------------------------------------------
def test_reset_clears_counters_and_errors_and_instruction_reaches_the_model(harness):
    h = harness
    assert h.feed_until(lambda: h.counter("bad_input") >= 1, timeout=10, info=False)  # an error to clear
    assert h.feed_until(lambda: h.counter("queries") >= 1)
    resp = h.call(Trigger, "/xwam_policy/reset", Trigger.Request())
    assert resp.success
    n = len(h.status)
    assert wait_for(lambda: len(h.status) > n, timeout=5)
    st = h.status[-1]
    assert st["counters"].get("queries", 0) <= 1 and "bad_input" not in st["counters"] and st["last_error"] == ""
    assert not st["window_counts"].get("bad_input")
    pub = h.listener.create_publisher(String, "/xwam_policy/instruction", 10)
    assert wait_for(lambda: pub.get_subscription_count() >= 1)
    pub.publish(String(data="stack the blue block"))
    assert h.feed_until(lambda: h.status and h.status[-1]["query_instruction"] == "stack the blue block")


# --- diagnostics ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("harness", [{"diagnostics_window": 3.0, "sync_timeout": 1.0, **WIDE_LIMITS}], indirect=True)
def test_diagnostics_levels_follow_the_window_and_clear_on_recovery(harness):
    h = harness
    inf = "xwam_policy: inference"
    assert h.feed_until(lambda: h.counter("queries") >= 1 and (h.diag(inf) or DiagnosticStatus(level=b"\x09")).level == DiagnosticStatus.OK)
    n = len(h.diags)
    assert h.feed_until(lambda: (h.diag(inf, n) or DiagnosticStatus()).level == DiagnosticStatus.ERROR,
                        encoding="yuv422")
    assert "unsupported colour encoding" in h.diag(inf, n).message
    n = len(h.diags)
    assert h.feed_until(lambda: (h.diag(inf, n) or DiagnosticStatus(level=b"\x09")).level == DiagnosticStatus.WARN)
    assert h.node.last_error == ""  # a good chunk clears it
    n = len(h.diags)
    assert h.feed_until(lambda: (h.diag(inf, n) or DiagnosticStatus(level=b"\x09")).level == DiagnosticStatus.OK, timeout=10)
    cam = h.diag("xwam_policy: camera agentview")
    vals = {kv.key: kv.value for kv in cam.values}
    assert 3.0 <= float(vals["color_rate_hz"]) <= 12.0 and float(vals["depth_age_s"]) < 1.0  # fed at ~10 Hz


@pytest.mark.parametrize("harness", [{"sync_timeout": 1.0}], indirect=True)
def test_no_synchronised_set_is_an_error_naming_the_late_camera(harness):
    h = harness
    sync = "xwam_policy: synchronisation"
    assert wait_for(lambda: h.diag(sync) is not None and h.diag(sync).level == DiagnosticStatus.ERROR, timeout=10)
    assert "never received" in h.diag(sync).message
    # one camera stops
    n = len(h.diags)
    assert h.feed_until(lambda: h.diag(sync, n) is not None and h.diag(sync, n).level == DiagnosticStatus.ERROR
                        and "eye_in_hand/" in h.diag(sync, n).message, cams=("agentview", "sideview"))
    assert h.diag("xwam_policy: camera eye_in_hand").level == DiagnosticStatus.ERROR
    # all cameras again: the error clears
    n = len(h.diags)
    assert h.feed_until(lambda: h.diag(sync, n) is not None and h.diag(sync, n).level == DiagnosticStatus.OK)
    # frames that never synchronise: sideview 50 ms behind the others (sync_slop is 20 ms)
    n = len(h.diags)
    assert h.feed_until(lambda: h.diag(sync, n) is not None and h.diag(sync, n).level == DiagnosticStatus.ERROR
                        and "sideview/" in h.diag(sync, n).message, jitter=[0.0, -0.05, 0.0])
    # stamps that jump backwards: agentview's clock goes back 5 s
    n = len(h.diags)
    assert h.feed_until(lambda: h.diag(sync, n) is not None and "agentview/" in h.diag(sync, n).message
                        and "jumped back" in h.diag(sync, n).message, jitter=[-5.0, 0.0, 0.0])
    assert h.diag("xwam_policy: camera agentview").level >= DiagnosticStatus.WARN


@pytest.mark.parametrize("qos,expected", [("sensor_data", "BEST_EFFORT"), ("reliable", "RELIABLE")])
def test_image_qos_is_a_parameter(policy, qos, expected):
    h = Harness(policy, image_qos=qos)
    try:
        topic = "/agentview/color/image_raw"
        assert wait_for(lambda: any(i.node_name == "xwam_policy"
                                    for i in h.listener.get_subscriptions_info_by_topic(topic)))
        info = [i for i in h.listener.get_subscriptions_info_by_topic(topic) if i.node_name == "xwam_policy"][0]
        assert info.qos_profile.reliability.name == expected
        if qos == "sensor_data":  # a best-effort driver (the scene publisher) is matched
            assert h.feed_until(lambda: h.counter("queries") >= 1)
    finally:
        h.close()


# --- imagination: its own thread, only when wanted ----------------------------------------------------------------------
def test_imagination_runs_only_for_a_subscriber_and_never_holds_the_action_path(policy):
    h = Harness(slowed(policy, imagine=8.0), imagined=False, imagine=True)
    try:
        assert h.feed_until(lambda: h.counter("queries") >= 3)
        assert h.counter("imaginations") == 0 and h.counter("imagination_skipped_no_subscriber") >= 1
        h.listener.create_subscription(PointCloud2, "/xwam_policy/imagined/points", h.clouds.append,
                                       QoSProfile(depth=50))
        assert wait_for(lambda: h.node.imagination.wanted())
        q = h.counter("queries")
        # an imagination now takes > 8 s; the action path keeps answering meanwhile
        assert h.feed_until(lambda: h.counter("queries") >= q + 3, timeout=7.0)
        assert h.counter("imaginations") == 0  # the first one is still running
        assert h.feed_until(lambda: h.counter("imaginations") >= 1 and len(h.clouds) >= 1, timeout=30)
    finally:
        h.close()


# --- parameters: typed, described, read-only where unsafe, validated and applied at run time -----------------------------
def _await(fut, timeout=10.0):
    assert wait_for(fut.done, timeout=timeout)
    return fut.result()


def test_parameters_are_described_validated_and_applied_at_run_time(harness):
    h = harness
    cli = AsyncParameterClient(h.listener, "xwam_policy")
    assert cli.wait_for_services(timeout_sec=5.0)
    desc = {d.name: d for d in _await(cli.describe_parameters(
        ["checkpoint", "imagine_every", "max_inference_time", "enabled", "cameras.agentview.extrinsic"])).descriptors}
    assert desc["checkpoint"].read_only and desc["cameras.agentview.extrinsic"].read_only
    assert not desc["enabled"].read_only and desc["enabled"].description
    assert desc["imagine_every"].integer_range[0].from_value == 1
    assert desc["max_inference_time"].floating_point_range[0].to_value > 0
    res = _await(cli.set_parameters([Parameter("checkpoint", value="builtin:lift_tiny")])).results[0]
    assert not res.successful and "read-only" in res.reason
    res = _await(cli.set_parameters([Parameter("imagine_every", value=0)])).results[0]
    assert not res.successful  # outside the advertised range
    res = _await(cli.set_parameters([Parameter("max_step", value=[0.01])])).results[0]
    assert not res.successful and "max_step" in res.reason
    assert h.node.cfg.max_step != [0.01] and len(h.node.safety.smax) == 7  # the old configuration stays
    assert h.feed_until(lambda: h.counter("queries") >= 1) and h.trajs == []
    res = _await(cli.set_parameters([Parameter("enabled", value=True),
                                     Parameter("max_step", value=[0.001] * 7)])).results
    assert all(r.successful for r in res)
    assert h.feed_until(lambda: len(h.trajs) >= 1)  # enabled through the parameter
    pos = np.array([list(p.positions) for p in h.trajs[-1][0].points])
    assert np.all(np.abs(np.diff(pos, axis=0)) <= 0.001 + 1e-9)  # the new limits apply
    h.enable(False)  # the service and the parameter agree
    got = _await(cli.get_parameters(["enabled"])).values[0]
    assert got.bool_value is False
    _await(cli.set_parameters([Parameter("instruction", value="open the drawer")]))
    assert h.feed_until(lambda: h.status and h.status[-1]["query_instruction"] == "open the drawer")


def test_a_dead_inference_process_is_reported_and_replaced_without_motion():
    """The model in its own process (inference_process): killing it fails the waiting query with an error in the
    node's report, nothing is sent, and the next query runs on a new process."""
    from xwam_ros.robot.config_file import load_setup
    from xwam_ros.robot.policy_process import PolicyProcess
    proc = PolicyProcess(load_setup(CONFIG, {"action_steps": 4, "video_steps": 8, "device": "cpu"}))
    h = Harness(proc, ik="none", enabled=True)
    try:
        assert h.feed_until(lambda: h.counter("queries") >= 1)
        sent = len(h.targets)
        proc.process.kill()
        assert h.feed_until(lambda: "inference process" in h.node.last_error, timeout=30)
        assert h.counter("internal") >= 1 and len(h.targets) <= sent + 1  # at most a chunk already on its way
        q = h.counter("queries")
        assert h.feed_until(lambda: h.counter("queries") > q, timeout=60)  # a new process answers
        assert proc.restarts == 1 and h.node.status()["inference_process"]["restarts"] == 1
    finally:
        h.close()
        proc.close()
