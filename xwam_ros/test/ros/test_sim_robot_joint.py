"""xwam_sim_robot in joint mode over real DDS: the Panda's URDF on robot_description (transient local, so a late
subscriber gets it), /joint_states with the Panda's joint names, and a JointTrajectory over those names, solved with
IK on the received URDF, moves the grip site where asked."""
import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

pytest.importorskip("pinocchio", reason="pinocchio (pip 'pin') is not installed")

from xwam_ros.robot.cartesian import AXES  # noqa: E402
from xwam_ros.robot.ik import UrdfIK  # noqa: E402
from xwam_ros.robot.panda import ARM_JOINTS, COMMAND_JOINTS, FINGER_JOINTS, panda_ik_config  # noqa: E402
from xwam_ros.ros.sim_robot import RESULT_QOS, SimRobotNode  # noqa: E402

from conftest import spin_until  # noqa: E402


@pytest.mark.slow
def test_joint_mode_publishes_urdf_and_follows_joint_trajectories(ros_context):
    params = [Parameter("control_mode", value="joint"), Parameter("episodes", value=1),
              Parameter("max_episode_steps", value=400), Parameter("camera_every", value=4),
              Parameter("wait_for_policy", value=False)]
    sim = SimRobotNode(context=ros_context, parameter_overrides=params)
    probe = Node("probe", context=ros_context)
    got = {}
    probe.create_subscription(JointState, "/joint_states", lambda m: got.__setitem__("js", m), 10)
    probe.create_subscription(PoseStamped, "/ee_pose", lambda m: got.__setitem__("ee", m), 10)
    pub = probe.create_publisher(JointTrajectory, "/arm_controller/joint_trajectory", 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(sim)
    ex.add_node(probe)
    try:
        assert spin_until(ex, lambda: {"js", "ee"} <= set(got), timeout=30)
        # subscribed only now, long after the one publication: transient local delivers it
        probe.create_subscription(String, "/robot_description", lambda m: got.__setitem__("urdf", m.data),
                                  RESULT_QOS)
        assert spin_until(ex, lambda: "urdf" in got, timeout=10)
        ik = UrdfIK(got["urdf"], panda_ik_config())
        assert list(got["js"].name) == ARM_JOINTS + FINGER_JOINTS
        js = dict(zip(got["js"].name, got["js"].position))
        q_now = np.array([js[n] for n in COMMAND_JOINTS])
        p = got["ee"].pose
        ee = np.array([p.position.x, p.position.y, p.position.z, p.orientation.w, p.orientation.x,
                       p.orientation.y, p.orientation.z])
        np.testing.assert_allclose(ik.fk(q_now), ee, atol=1e-4)  # the received URDF explains /ee_pose
        # Cartesian axes are not this controller's joints: refused, nothing moves
        pub.publish(JointTrajectory(joint_names=list(AXES), points=[
            JointTrajectoryPoint(positions=[0.0] * 7, time_from_start=Duration(sec=1))]))
        assert spin_until(ex, lambda: sim.rejected >= 1, timeout=5)
        # 6 cm up over 1 s, through IK on the received URDF, as joint positions over the Panda's names
        goal = np.append(ee, -1.0)
        goal[2] += 0.06
        path = np.linspace(np.append(ee, -1.0), goal, 11)[1:]
        q = ik.solve_chunk(path, q_now)
        pub.publish(JointTrajectory(joint_names=COMMAND_JOINTS, points=[
            JointTrajectoryPoint(positions=[float(x) for x in qk], time_from_start=Duration(nanosec=100_000_000 * k))
            for k, qk in enumerate(q, start=1)]))
        # the simulator steps at most at 20 Hz of wall time, slower on a busy machine: wait for the arm, not a clock
        assert spin_until(ex, lambda: abs(got["ee"].pose.position.z - goal[2]) < 0.005, timeout=60)
        p = got["ee"].pose.position
        assert np.hypot(p.x - ee[0], p.y - ee[1]) < 0.005  # straight up
    finally:
        ex.shutdown()
        sim.destroy_node()
        probe.destroy_node()
