"""xwam_sim_robot: the robosuite Panda (``sim/robosuite_env.py``) behind the topics a real robot cell has.

Publishes per view ``<view>/color/image_raw`` (rgb8), ``<view>/aligned_depth_to_color/image_raw`` (16UC1 mm) and
``<view>/color/camera_info`` (the simulator's real intrinsics), ``joint_states`` and ``ee_pose`` (grip site, in
``base_frame``), TF (``/tf_static``: base_frame -> static camera optical frames; ``/tf``: base_frame -> ``ee_frame``
-> wrist camera optical frame), all names relative to the node's namespace but TF, and executes
``trajectory_msgs/JointTrajectory`` on the controller topic. The arm is commanded in Cartesian space, like a
Cartesian impedance controller: the trajectory's "joints" are x y z roll pitch yaw gripper (``ik: cartesian`` on the
policy side), timed like joint_trajectory_controller. Between trajectories the arm holds.

``control_mode: joint``: the arm runs robosuite's joint-position controller instead and behaves like a Panda under a
joint_trajectory_controller: ``/joint_states`` carries panda_joint1..7 and panda_finger_joint1/2, trajectories
command panda_joint1..7 + panda_finger_joint1 (m, 0.04 open .. 0 closed), and the Panda URDF (example-robot-data)
is published on ``robot_description`` (std_msgs/String, reliable + transient local) for the policy's ``ik: urdf``.
``/ee_pose`` is published in both modes (the model's state is the grip-site pose).

Episodes: ``episodes`` seeded resets (seed ``seed + e``); an episode ends at the first success or after
``max_episode_steps``; the result goes out on ``sim/episode_result`` (std_msgs/String, JSON, reliable +
transient local) and the policy's ``reset`` service is called so no chunk of the old episode runs in the next.
"""
from __future__ import annotations

import json
import threading

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from ..model.layout import ONE_ARM
from ..robot.cartesian import AXES, ROTATION_AXES, axes_to_target, state_to_axes
from ..robot.ik import urdf_from_package
from ..robot.panda import COMMAND_JOINTS, command_to_target, joint_state
from ..robot.trajectory import TrajectoryFollower, stamp_to_s as _t
from .robot_io import CameraPublishers, StatePublishers, TfPublishers, optical_frame, pose_matrix, run_node

RESULT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class SimRobotNode(Node):
    def __init__(self, **kwargs):
        super().__init__("xwam_sim_robot", **kwargs)
        d = lambda name, default, desc: self.declare_parameter(  # noqa: E731
            name, default, ParameterDescriptor(description=desc)).value
        from ..sim.robosuite_env import SimConfig, SimEnv
        self.rate = d("control_rate", 20.0, "Simulator steps per second (robosuite control frequency).")
        self.camera_every = d("camera_every", 2, "Publish the cameras every N control steps.")
        self.base_frame = d("base_frame", "world", "Frame of /ee_pose and of the trajectories' Cartesian axes.")
        self.ee_frame = d("ee_frame", "ee_link", "TF frame of the end effector (the grip site of ee_pose).")
        controller = d("controller_topic", "arm_controller/joint_trajectory", "Trajectory input topic.")
        self.episodes = d("episodes", 0, "Episodes to run (0 = until stopped).")
        self.seed = d("sim_seed", 10_000, "Episode e is reset with seed sim_seed + e.")
        self.max_steps = d("max_episode_steps", 200, "Control steps before an episode counts as failed.")
        self.lookahead = d("lookahead_steps", 1, "Track the trajectory this many steps ahead (impedance lag).")
        self.policy_reset = d("policy_reset_service", "xwam_policy/reset", "Trigger called at every new episode "
                                                                        "(relative: in this node's namespace).")
        self.wait_for_policy = d("wait_for_policy", True, "Start the first episode only once the policy's reset "
                                                          "service is up (the policy has loaded and warmed up).")
        task = d("task", "Lift", "robosuite task: Lift or Stack.")
        size = d("render_size", 128, "Square camera resolution (pixels).")
        self.control_mode = d("control_mode", "cartesian", "'cartesian': trajectories over x y z roll pitch yaw "
                                                            "gripper (OSC); 'joint': over panda_joint1..7 + "
                                                            "panda_finger_joint1 (joint-position control).")
        if self.control_mode not in ("cartesian", "joint"):
            raise ValueError(f"control_mode must be cartesian or joint, got {self.control_mode!r}")
        self.env = SimEnv(SimConfig(task=task, render_size=size, horizon=self.max_steps + 50,
                                    control=self.control_mode), seed=self.seed)
        self.joint_mode = self.control_mode == "joint"
        if self.joint_mode:
            self.description_pub = self.create_publisher(String, "robot_description", RESULT_QOS)
            self.description_pub.publish(String(data=urdf_from_package()))
        self.views = list(self.env.cfg.view_names)
        self._lock = threading.Lock()
        self.cameras = CameraPublishers(self, self.views)
        self.state = StatePublishers(self, self.base_frame)
        self.result_pub = self.create_publisher(String, "sim/episode_result", RESULT_QOS)
        self.tf = TfPublishers(self)
        self.wrist_views = [v for v, cam in zip(self.views, self.env.cfg.cameras) if cam.startswith("robot")]
        self.create_subscription(JointTrajectory, controller, self._on_trajectory, 10)
        self.reset_client = self.create_client(Trigger, self.policy_reset)
        self.results, self.episode, self.rejected = [], 0, 0
        self.finished = self.started = False
        self.create_timer(1.0 / self.rate, self._tick)

    # --- episodes --------------------------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _start_episode(self) -> None:
        self.frame = self.env.reset(seed=self.seed + self.episode)
        if self.joint_mode:
            q0 = np.append(self.env.joint_positions(), self.env.finger_positions()[0])
            self.follower = TrajectoryFollower(q0, COMMAND_JOINTS)
        else:
            self.follower = TrajectoryFollower(state_to_axes(self.frame.state), AXES)
        self.episode_start = self._now()
        if not self.tf.static_transforms:  # the static cameras' calibration, once (latched)
            self.tf.publish_static([(self.frame.T_world_cam[v], self.base_frame, optical_frame(v))
                                    for v in self.views if v not in self.wrist_views])
        if self.reset_client.service_is_ready():
            self.reset_client.call_async(Trigger.Request())

    def _end_episode(self) -> None:
        r = {"episode": self.episode, "seed": self.seed + self.episode, "success": bool(self.frame.success),
             "steps": self.env.t, "seconds": self._now() - self.episode_start}
        self.results.append(r)
        self.result_pub.publish(String(data=json.dumps(r)))
        self.get_logger().info(f"episode {self.episode}: {'SUCCESS' if r['success'] else 'failure'} "
                               f"after {r['steps']} steps")
        self.episode += 1
        if self.episodes and self.episode >= self.episodes:
            self.finished = True
        else:
            self._start_episode()

    # --- control ---------------------------------------------------------------------------------------------------
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        now = self._now()
        stamp = _t(msg.header.stamp)
        if not self.started or (stamp and stamp < self.episode_start):  # before the first / from the last episode
            self.rejected += 1
            return
        tfs = np.array([_t(p.time_from_start) for p in msg.points])
        pos = np.array([list(p.positions) for p in msg.points]) if msg.points else np.zeros((0, len(AXES)))
        with self._lock:
            # Cartesian angles continue from where the arm is, never across a wrap (joint angles do not wrap)
            if not self.joint_mode and len(pos) and pos.shape[1] == len(AXES):
                rpy = ROTATION_AXES
                pos[:, rpy] = np.unwrap(np.vstack([self.follower.q[rpy], pos[:, rpy]]), axis=0)[1:]
            err = self.follower.set(msg.joint_names, stamp, tfs, pos, now)
        if err:
            self.rejected += 1
            self.get_logger().error(f"rejected trajectory: {err}", throttle_duration_sec=2.0)

    def _tick(self) -> None:
        if self.finished:
            return
        if not self.started:  # the episode clock starts when the policy can act, not while it loads
            if self.wait_for_policy and not self.reset_client.service_is_ready():
                return
            self.started = True
            self._start_episode()
            return
        now = self._now()
        with self._lock:
            q = self.follower.step(now + self.lookahead / self.rate)
        self.frame = self.env.step(command_to_target(q) if self.joint_mode else axes_to_target(q))
        self._publish(self.frame)
        if self.frame.success or self.env.t >= self.max_steps:
            self._end_episode()

    def _publish(self, f) -> None:
        stamp = self.get_clock().now().to_msg()
        if self.joint_mode:
            names, positions = joint_state(self.env.joint_positions(), self.env.finger_positions())
        else:
            names, positions = AXES, state_to_axes(f.state)
        position, quaternion = ONE_ARM.position(f.state), ONE_ARM.quaternion(f.state)  # the Panda: one arm
        self.state.publish(names, positions, position, quaternion, stamp)
        T_base_ee = pose_matrix(position, quaternion)
        self.tf.publish([(T_base_ee, self.base_frame, self.ee_frame)]
                        + [(np.linalg.inv(T_base_ee) @ f.T_world_cam[v], self.ee_frame, optical_frame(v))
                           for v in self.wrist_views], stamp)
        if f.t % self.camera_every:
            return
        for v in self.views:
            self.cameras.publish(v, f.rgb[v], f.depth[v], f.K[v], stamp)

    def destroy_node(self):
        self.env.close()
        super().destroy_node()


def main(args=None):
    run_node(SimRobotNode, args)


if __name__ == "__main__":
    main()
