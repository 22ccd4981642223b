"""The xwam_ros graph: the X-WAM policy node, optionally the config's simulated robot and RViz.

    ros2 launch xwam_ros policy.launch.py                       # what config/policy.yaml says (the shipped model)
    ros2 launch xwam_ros policy.launch.py sim:=true rviz:=true  # + the simulated Panda (robosuite Lift) and RViz
    ros2 launch xwam_ros policy.launch.py config_file:=/path/robot.yaml checkpoint:=/models/xwam namespace:=robot1

This file is the one description of the graph: `xwam-ros run` and `xwam-ros demo` run it through the launch API
(launch.LaunchService); only where `launch` is not installed do they fall back to xwam_ros.ros.graph.Graph.
`ros2 launch xwam_ros policy.launch.py --show-args` lists the arguments below.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction, OpaqueFunction
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace

SIM_NODES = {"sim_robot": "xwam_sim_robot", "camera_source": "xwam_camera_source"}  # executable -> node name


def _share():
    from xwam_ros.paths import share_file
    return share_file()


def _config_path(name: str) -> str:
    from xwam_ros.paths import config_path  # a path, or a file name in the package's config/ (gantry.yaml)
    return str(config_path(name))


def _flag(value: str, name: str) -> bool:
    value = value.strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"launch argument {name}:={value!r} must be true or false")
    return value in ("true", "1")


def node_specs(get) -> list:
    """The graph for argument values ``get(name) -> str``: one dict of launch_ros Node arguments per node (plain
    values, so tests can check them without running anything)."""
    from xwam_ros.ros.graph import sim_node_of
    flag = lambda name: _flag(get(name), name)  # noqa: E731
    config_file = _config_path(get("config_file") or "policy.yaml")
    params = [config_file] + ([get("overrides_file")] if get("overrides_file") else [])
    params.append({"use_sim_time": flag("use_sim_time")})
    policy_params = params + ([{"checkpoint": get("checkpoint")}] if get("checkpoint") else [])  # else: the config's
    specs = []
    if flag("sim"):
        sim_node = get("sim_node") or sim_node_of(config_file)
        if sim_node not in SIM_NODES:
            raise ValueError(f"launch argument sim_node:={sim_node!r} must be one of {sorted(SIM_NODES)}")
        specs.append(dict(package="xwam_ros", executable=sim_node, name=SIM_NODES[sim_node], output="screen",
                          parameters=params, additional_env=dict(SIM_ENV)))
    specs.append(dict(package="xwam_ros", executable="policy_node", name="xwam_policy", output="screen",
                      parameters=policy_params, additional_env={}))
    if flag("rviz"):
        specs.append(dict(package="rviz2", executable="rviz2", name="rviz2", output="log",
                          arguments=["-d", get("rviz_config") or str(_share() / "rviz" / "xwam.rviz")],
                          parameters=[{"use_sim_time": flag("use_sim_time")}], additional_env={}))
    return specs


# camera images cross processes: Fast DDS's large-data transports with a shared-memory segment that holds them
# (xwam_ros.ros.graph.graph_env); robosuite renders headless with EGL (Mesa's software renderer: one thread, so
# rendering does not starve the model on small CPUs). The caller's environment wins over each default.
SIM_ENV = {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "LP_NUM_THREADS": "1"}


def _graph(context):
    get = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    actions = [PushRosNamespace(get("namespace"))] if get("namespace") else []
    from xwam_ros.ros.graph import graph_env
    for spec in node_specs(get):
        env = {**graph_env(), **spec.pop("additional_env")}
        spec["additional_env"] = {k: EnvironmentVariable(k, default_value=v) for k, v in env.items()}
        actions.append(Node(**spec))
    return [GroupAction(actions)]


ARGUMENTS = {
    "config_file": ("", "Parameter YAML for every node of the graph (keys under /** apply to all): a path or the "
                        "name of a file in the package's config/ (gantry.yaml). Empty: config/policy.yaml (the "
                        "simulated Panda + the shipped model builtin:lift_tiny)."),
    "checkpoint": ("", "X-WAM checkpoint of the policy node: a directory or builtin:<name>. Empty: the config "
                       "file's 'checkpoint'."),
    "overrides_file": ("", "Optional second parameter YAML applied after config_file (what `xwam-ros run -p` and "
                           "the demo write their overrides to)."),
    "use_sim_time": ("false", "true: every node follows /clock (bag replay with `ros2 bag play --clock`)."),
    "sim": ("false", "true: also start the simulated robot that the config's sim_node names (cameras, joint "
                     "states, TF, trajectory execution) instead of real hardware."),
    "sim_node": ("", "Override the config's sim_node: sim_robot (robosuite Panda, Lift) or camera_source (the "
                     "procedural gantry of config/gantry.yaml). Empty: the config's (default sim_robot)."),
    "namespace": ("", "ROS namespace of every node, topic and service of the graph (e.g. robot1); /tf, "
                      "/tf_static and /diagnostics stay global."),
    "rviz": ("false", "true: start rviz2 with rviz_config (fixed frame world, the imagined clouds, TF, cameras)."),
    "rviz_config": ("", "RViz config file. Empty: the package's rviz/xwam.rviz."),
}


def generate_launch_description():
    return LaunchDescription([DeclareLaunchArgument(name, default_value=default, description=desc)
                              for name, (default, desc) in ARGUMENTS.items()] + [OpaqueFunction(function=_graph)])
