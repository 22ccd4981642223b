"""Launch the X-WAM policy node (and optionally the built-in camera source and RViz).

    ros2 launch xwam_ros policy.launch.py sim:=true rviz:=true
    ros2 launch xwam_ros policy.launch.py config_file:=/path/robot.yaml checkpoint:=/models/xwam use_sim_time:=true

Without `launch` installed, `xwam-ros run --sim` starts the same nodes with the same parameters (the robosuite
robot as a child process).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch.actions import GroupAction


def generate_launch_description():
    share = get_package_share_directory("xwam_ros")
    config_file = LaunchConfiguration("config_file")
    checkpoint = LaunchConfiguration("checkpoint")
    use_sim_time = LaunchConfiguration("use_sim_time")
    args = [
        DeclareLaunchArgument("config_file", default_value=os.path.join(share, "config", "policy.yaml"),
                              description="Parameter YAML for the policy node (and camera source)."),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="X-WAM checkpoint directory; empty = random tiny model (demo only)."),
        DeclareLaunchArgument("use_sim_time", default_value="false",
                              description="Follow /clock (set true when replaying a bag with --clock)."),
        DeclareLaunchArgument("rviz", default_value="false", description="Start RViz with rviz/xwam.rviz."),
        DeclareLaunchArgument("sim", default_value="false",
                              description="Start the simulated robot (cameras + arm) instead of real hardware."),
        DeclareLaunchArgument("sim_node", default_value="sim_robot",
                              description="Which simulated robot: sim_robot (robosuite Panda, Lift) or camera_source "
                                          "(the procedural gantry of config/gantry.yaml)."),
        DeclareLaunchArgument("namespace", default_value="", description="Namespace for the nodes."),
    ]
    common = {"use_sim_time": use_sim_time}
    nodes = GroupAction([
        PushRosNamespace(LaunchConfiguration("namespace")),
        Node(package="xwam_ros", executable=LaunchConfiguration("sim_node"), output="screen",
             parameters=[config_file, common], condition=IfCondition(LaunchConfiguration("sim"))),
        Node(package="xwam_ros", executable="policy_node", name="xwam_policy", output="screen",
             parameters=[config_file, {"checkpoint": checkpoint, **common}]),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="log",
             arguments=["-d", os.path.join(share, "rviz", "xwam.rviz")], parameters=[common],
             condition=IfCondition(LaunchConfiguration("rviz"))),
    ])
    return LaunchDescription(args + [nodes])
