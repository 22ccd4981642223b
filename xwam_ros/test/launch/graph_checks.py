"""The checks of the launched default graph (policy.launch.py sim:=true, the shipped model), shared by the modules
that launch it with and without a namespace. Each check is a coroutine run inside the launch service's loop."""
from __future__ import annotations

import json
import os

import numpy as np
from launch_probe import STARTUP_TIMEOUT, RVIZ_TYPES, resolve, ros2, rviz_displays, status_of, tf_tree, wait_for

CAMERAS = ("agentview", "sideview", "eye_in_hand")


def subscribe_all(client) -> None:
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage
    from trajectory_msgs.msg import JointTrajectory

    from xwam_ros.ros.robot_io import TF_QOS, TF_STATIC_QOS
    latched = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    client.subscribe("sim/episode_result", String, latched)
    client.subscribe("xwam_policy/status", String, 10, keep=5)
    client.subscribe("arm_controller/joint_trajectory", JointTrajectory, 10, keep=20)
    client.subscribe("xwam_policy/imagined/points", PointCloud2, 10, keep=2)
    client.subscribe("ee_pose", PoseStamped, 10, keep=5)
    client.subscribe("/tf_static", TFMessage, TF_STATIC_QOS, keep=10)
    client.subscribe("/tf", TFMessage, TF_QOS, keep=50)


def results(client) -> list:
    return [json.loads(m.data) for m in client.got("sim/episode_result")]


async def check_trajectories_and_success(client, episodes_timeout: float) -> None:
    """Trajectories reach the arm's controller topic; at least one Lift episode succeeds (the shipped model
    succeeds ~80-90 %, so a few episodes are allowed)."""
    await wait_for(lambda: client.got("arm_controller/joint_trajectory"), STARTUP_TIMEOUT, "a trajectory on "
                   + client.name("arm_controller/joint_trajectory"))
    traj = client.got("arm_controller/joint_trajectory")[-1]
    assert list(traj.joint_names) == ["x", "y", "z", "roll", "pitch", "yaw", "gripper"] and traj.points
    await wait_for(lambda: any(r["success"] for r in results(client)), episodes_timeout,
                   "a successful episode (results so far: " + str(results(client)) + ")")


async def check_tf(client, config: dict) -> None:
    """The imagined clouds' frame and every camera's optical frame resolve to the base frame over /tf_static and
    /tf; the static cameras' transforms are the calibration in the config, the end effector's is ee_pose."""
    base = config["base_frame"]
    clouds = await wait_for(lambda: client.got("xwam_policy/imagined/points"), STARTUP_TIMEOUT, "an imagined cloud")
    await wait_for(lambda: client.got("/tf_static") and client.got("/tf"), 30, "/tf_static and /tf")
    tree = tf_tree(client.got("/tf_static"), client.got("/tf"))
    T = resolve(tree, clouds[-1].header.frame_id, base)
    assert np.allclose(T, np.eye(4))  # clouds are published in the base frame itself
    for cam in CAMERAS:
        c = config["cameras"][cam]
        T_base_cam = resolve(tree, c["frame_id"], base)
        if c["kind"] == "static":  # the simulator's extrinsics = the calibration written in the config
            np.testing.assert_allclose(T_base_cam, np.reshape(c["extrinsic"], (4, 4)), atol=2e-3)
        else:  # the wrist camera hangs off ee_frame with the config's hand-eye transform
            assert tree[c["frame_id"]][0] == config["ee_frame"]
            np.testing.assert_allclose(tree[c["frame_id"]][1], np.reshape(c["extrinsic"], (4, 4)), atol=2e-3)
    # base -> ee_frame is the end-effector pose of the same instant
    pose = client.got("ee_pose")[-1]
    stamped = {(m.transforms[0].header.stamp.sec, m.transforms[0].header.stamp.nanosec): m
               for m in client.got("/tf") if m.transforms}
    key = (pose.header.stamp.sec, pose.header.stamp.nanosec)
    if key in stamped:
        ee = [t for t in stamped[key].transforms if t.child_frame_id == config["ee_frame"]][0]
        p = pose.pose.position
        np.testing.assert_allclose([ee.transform.translation.x, ee.transform.translation.y,
                                    ee.transform.translation.z], [p.x, p.y, p.z], atol=1e-6)


async def check_rviz_topics(client, rviz_file) -> None:
    """Every display of rviz/xwam.rviz subscribes to a topic that the graph publishes with the display's type
    (its relative name resolved in the graph's namespace, as rviz started by the launch file resolves it)."""
    displays = rviz_displays(rviz_file)
    assert len(displays) >= 8
    for name, cls, topic in displays:
        assert not topic.startswith("/"), f"rviz display {name!r}: absolute topic {topic} breaks under namespace:="
        want = RVIZ_TYPES[cls]
        pubs = await wait_for(lambda: client.publishers(topic), 60, f"a publisher of {client.name(topic)} "
                              f"(rviz display {name!r})")
        types = {p.topic_type for p in pubs}
        assert types == {want}, f"rviz display {name!r} expects {want} on {client.name(topic)}, published: {types}"


async def check_params_and_services(client) -> None:
    """`ros2 param get/set` on the policy node; its ~/enable and ~/reset services answer."""
    from std_srvs.srv import SetBool, Trigger
    node = client.name("xwam_policy")
    out = await ros2("param", "get", "--no-daemon", "--spin-time", "5", node, "checkpoint")
    assert "builtin:lift_tiny" in out, out  # the launch file passed no checkpoint: the config's is in force
    out = await ros2("param", "set", "--no-daemon", "--spin-time", "5", node, "instruction", "lift the red cube")
    assert "successful" in out.lower(), out
    out = await ros2("param", "get", "--no-daemon", "--spin-time", "5", node, "instruction")
    assert "lift the red cube" in out, out
    reply = client.call(SetBool, "xwam_policy/enable", SetBool.Request(data=False))
    assert reply.success, reply.message
    await wait_for(lambda: status_of(client).get("enabled") is False, 30, "status enabled=false")
    reply = client.call(SetBool, "xwam_policy/enable", SetBool.Request(data=True))
    assert reply.success, reply.message
    await wait_for(lambda: status_of(client).get("enabled") is True, 30, "status enabled=true")
    reply = client.call(Trigger, "xwam_policy/reset", Trigger.Request())
    assert reply.success, reply.message
    child = status_of(client)["inference_process"]  # the model runs in a process of its own (inference_process)
    assert child["restarts"] == 0 and child["pid"] != os.getpid()
    os.kill(child["pid"], 0)  # alive (raises ProcessLookupError otherwise)


async def check_graph_in_namespace(client, episodes_timeout: float) -> None:
    """Under namespace:=robot1 every node, topic and service is in /robot1 (TF and /diagnostics global), and the
    sim's episodes start: it found the policy's reset service in its own namespace."""
    ns = "/" + client.ns.strip("/")
    names = client.node.get_node_names_and_namespaces()
    await wait_for(lambda: {("xwam_policy", ns), ("xwam_sim_robot", ns)} <= set(
        client.node.get_node_names_and_namespaces()), STARTUP_TIMEOUT, f"both nodes in {ns} (graph: {names})")
    topics = dict(client.node.get_topic_names_and_types())
    ours = [t for t in topics if t.startswith(("/agentview", "/sideview", "/eye_in_hand", "/joint_states",
                                               "/ee_pose", "/xwam_policy", "/arm_controller", "/sim/"))]
    assert not ours, f"graph topics outside the namespace: {ours}"
    await wait_for(lambda: client.got("arm_controller/joint_trajectory"), STARTUP_TIMEOUT, "a trajectory in " + ns)
    await wait_for(lambda: results(client), episodes_timeout, "an episode result in " + ns)
