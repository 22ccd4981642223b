"""Test helpers: a publisher of the procedural scene's RGB-D frames with controllable stamps and defects, and a
harness running the policy node beside an independent client."""
from __future__ import annotations

import copy
import itertools
import json
import os
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, PointCloud2
from std_msgs.msg import String
from std_srvs.srv import SetBool
from trajectory_msgs.msg import JointTrajectory
from xwam_interfaces.msg import ActionChunk

from conftest import wait_for  # noqa: F401  (tests import it from here too)
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.ros.graph import ros_args, share_file
from xwam_ros.ros.policy_node import PolicyNode
from xwam_ros.ros.spin import SpinThread
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from transforms3d.quaternions import mat2quat

from xwam_ros.robot.convert import depth_to_image_msg, rgb_to_image_msg
from xwam_ros.robot.convert import camera_info_msg
from xwam_ros.ros.robot_io import CameraPublishers, StatePublishers
from xwam_ros.sim.procedural import HOME, JOINT_NAMES, CameraRig, fk

CAMS = ("agentview", "sideview", "eye_in_hand")


def stamp_of(t_s: float):
    from builtin_interfaces.msg import Time
    ns = int(t_s * 1e9)
    return Time(sec=ns // 10**9, nanosec=ns % 10**9)


class ScenePublisher(Node):
    """The procedural scene through the simulated robots' own publishers (ros/robot_io.py: topics, QoS, message
    layout), with controllable stamps and planted defects."""

    def __init__(self, context, q=HOME):
        super().__init__("scene_publisher", context=context)
        self.rig = CameraRig(120, 160)
        self.q = np.array(q, float)
        self.frames = {c: self.rig.render(c, self.q) for c in CAMS}
        self.cameras = CameraPublishers(self, CAMS, "16UC1")
        self.state = StatePublishers(self, "base_link")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def publish(self, t_s=None, cams=CAMS, encoding="rgb8", depth_fn=None, info=True, jitter=None, state=True,
                info_hw=None, truncate_colour=0):
        """One frameset; defects: another colour ``encoding``, ``depth_fn`` applied to depth, no camera_info
        (``info=False``), camera_info of another size (``info_hw``), per-camera stamp offsets (``jitter``), colour
        images whose serialized bytes lose their last ``truncate_colour`` bytes (published raw)."""
        t_s = self.now() if t_s is None else t_s
        for i, c in enumerate(cams):
            stamp = stamp_of(t_s + (jitter[i] if jitter is not None else 0.0))
            rgb, depth = self.frames[c]
            if depth_fn is not None:
                depth = depth_fn(depth)
            if encoding == "rgb8" and info and info_hw is None and not truncate_colour:
                self.cameras.publish(c, rgb, depth, self.rig.K, stamp)  # the real publishers, unchanged
                continue
            pc, pd, pi, frame = self.cameras.pubs[c]
            h = Header(stamp=stamp, frame_id=frame)
            msg = rgb_to_image_msg(rgb, h, Image)
            msg.encoding = encoding
            pc.publish(serialize_message(msg)[:-truncate_colour] if truncate_colour else msg)
            pd.publish(depth_to_image_msg(depth, h, Image, "16UC1"))
            if info:
                pi.publish(camera_info_msg(self.rig.K, *(info_hw or rgb.shape[:2]), h, CameraInfo))
        if state:
            T = fk(self.q)
            self.state.publish(JOINT_NAMES, self.q, T[:3, 3], mat2quat(T[:3, :3]), stamp_of(t_s))


CONFIG = share_file("config", "gantry.yaml")


# two ids in 101..200, alternating harness to harness (the previous harness's domain is never the next one's), apart
# from the per-module domains of conftest.py (1..100) and from other runs with another base id
_DOMAIN_BASE = int(os.environ.get("ROS_DOMAIN_ID", "0"))
_DOMAINS = (101 + (_DOMAIN_BASE + 50 * (i % 2)) % 100 for i in itertools.count())


class Harness:
    """The node in its own context; the scene publisher and an independent client in another (separate DDS
    participants: everything the tests see went through DDS)."""

    def __init__(self, policy, imagined=True, **overrides):
        self.ctx, self.client_ctx = rclpy.Context(), rclpy.Context()
        params = {"imagine": False, "max_observation_age": 2.0, "max_inference_time": 10.0, **overrides}
        # a DDS domain per harness: a frame the previous test's publisher still had in flight (fresh stamp) reached
        # the next test's node on a shared domain, and every older frame after it was then rightly out of order
        domain = next(_DOMAINS)
        rclpy.init(args=ros_args(CONFIG, params), context=self.ctx, domain_id=domain)
        rclpy.init(context=self.client_ctx, domain_id=domain)
        self.node = PolicyNode(policy=policy, warm_up=False, context=self.ctx)
        self.pub = ScenePublisher(self.client_ctx)
        self.listener = Node("listener", context=self.client_ctx)
        self.trajs, self.status, self.clouds, self.observed, self.targets, self.diags, self.chunks = ([] for _ in range(7))
        sub = self.listener.create_subscription
        sub(JointTrajectory, "/arm_controller/joint_trajectory", lambda m: self.trajs.append((m, self.pub.now())),
            QoSProfile(depth=50))
        sub(String, "/xwam_policy/status", lambda m: self.status.append(json.loads(m.data)), 10)
        if imagined:  # a subscriber to an imagined topic: the node imagines
            sub(PointCloud2, "/xwam_policy/imagined/points", self.clouds.append, QoSProfile(depth=50))
        sub(PointCloud2, "/xwam_policy/observed/points", self.observed.append, rclpy.qos.qos_profile_sensor_data)
        sub(PoseArray, "/xwam_policy/ee_targets", self.targets.append, QoSProfile(depth=50))
        sub(DiagnosticArray, "/diagnostics", self.diags.append, QoSProfile(depth=50))
        sub(ActionChunk, "/xwam_policy/action_chunk", self.chunks.append, QoSProfile(depth=50))
        # the node on the executor its main() would run (the 'executor' parameter), the test's side multi-threaded
        self.spins = [SpinThread([self.node], self.node.cfg.executor, self.ctx),
                      SpinThread([self.pub, self.listener], "multi_threaded", self.client_ctx)]
        assert wait_for(lambda: self.listener.count_publishers("/xwam_policy/status") >= 1
                        and self.node.count_publishers("/joint_states") >= 1)  # discovery

    def feed_until(self, pred, timeout=20.0, period=0.1, **kw):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            self.pub.publish(**kw)
            time.sleep(period)
            if pred():
                return True
        return pred()

    def counter(self, name):
        return self.node.counters.get(name, 0)

    def call(self, srv_type, name, request):
        cli = self.listener.create_client(srv_type, name)
        assert cli.wait_for_service(timeout_sec=5.0)
        fut = cli.call_async(request)
        assert wait_for(fut.done, timeout=5.0)
        return fut.result()

    def enable(self, on=True):
        resp = self.call(SetBool, "/xwam_policy/enable", SetBool.Request(data=on))
        assert resp.success
        return resp

    def diag(self, name, since=0):
        """The newest DiagnosticStatus called ``name`` received after index ``since``, or None."""
        for arr in reversed(self.diags[since:]):
            for st in arr.status:
                if st.name == name:
                    return st
        return None

    def close(self):
        """The node's side first, in the order of its main() after SIGINT (SpinThread.stop), then the test's side."""
        for spin in self.spins:
            spin.stop(timeout_s=5)


class SlowedPolicy(XWAMPolicy):
    """The real policy behind a slow link (a busy GPU): chunks and/or imaginations take longer."""
    predict_delay = imagine_delay = 0.0

    def predict_action_chunk(self, obs, **kw):
        time.sleep(self.predict_delay)
        return super().predict_action_chunk(obs, **kw)

    def continue_imagination(self, res):
        time.sleep(self.imagine_delay)
        return super().continue_imagination(res)


def slowed(policy, predict=0.0, imagine=0.0):
    p = copy.copy(policy)
    p.__class__, p.predict_delay, p.imagine_delay = SlowedPolicy, predict, imagine
    return p


