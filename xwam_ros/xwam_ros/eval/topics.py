"""The topic set that replay evaluation needs, derived from the policy node's own parameter file, and the
equivalent ``ros2 bag record`` command line for machines with ROS."""
from __future__ import annotations


def evaluation_topics(setup) -> list:
    """(topic, message type) pairs: cameras with camera_info, robot state, executed commands, instruction, outputs."""
    topics = []
    for c in setup.cameras:
        topics += [(c.color_topic, "sensor_msgs/msg/Image"), (c.depth_topic, "sensor_msgs/msg/Image"),
                   (c.info_topic, "sensor_msgs/msg/CameraInfo")]
    topics += [(setup.joint_state_topic, "sensor_msgs/msg/JointState"),
               (setup.ee_pose_topic, "geometry_msgs/msg/PoseStamped"),
               (setup.controller_topic, "trajectory_msgs/msg/JointTrajectory"),
               ("/xwam_policy/instruction", "std_msgs/msg/String"),
               ("/xwam_policy/action_chunk", "xwam_interfaces/msg/ActionChunk"),
               ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray")]
    return topics


def ros2_bag_command(setup, out: str = "xwam_eval_bag") -> str:
    """``ros2 bag record`` with the same topics (tf is added for users who have TF)."""
    names = [t for t, _ in evaluation_topics(setup)] + ["/tf", "/tf_static"]
    return f"ros2 bag record -s mcap -o {out} " + " ".join(names)
