"""xwam_ros is a ROS package wherever it is installed (the venv that scripts/setup.sh registers, or a colcon
install): the ament index finds it, `ros2 run` runs its executables, its resources resolve through the index."""
import os
import subprocess
import sys
from pathlib import Path

from launch_probe import skip_without_launch

skip_without_launch()

from xwam_ros.paths import ament_share, resolve_checkpoint, share_file  # noqa: E402

ROS2 = os.path.join(os.path.dirname(sys.executable), "ros2")


def ros2(*args, timeout=60):
    r = subprocess.run([ROS2, *args], capture_output=True, text=True, timeout=timeout, cwd="/")
    assert r.returncode == 0, f"ros2 {' '.join(args)}: {r.stderr}{r.stdout}"
    return r.stdout


def test_ros2_pkg_prefix_is_the_prefix_whose_share_the_package_reads():
    prefix = Path(ros2("pkg", "prefix", "xwam_ros").strip())
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "xwam_ros").is_file()
    assert ament_share() == prefix / "share" / "xwam_ros"
    for exe in ("xwam-ros", "policy_node", "sim_robot", "camera_source"):
        assert os.access(prefix / "lib" / "xwam_ros" / exe, os.X_OK), f"lib/xwam_ros/{exe} missing"


def test_resources_resolve_through_the_ament_index():
    share = ament_share()
    for parts in [("config", "policy.yaml"), ("launch", "policy.launch.py"), ("rviz", "xwam.rviz")]:
        assert share_file(*parts) == share / Path(*parts)
    ckpt = resolve_checkpoint("builtin:lift_tiny")
    assert ckpt == share / "models" / "lift_tiny" and (ckpt / "model.safetensors").is_file()


def test_ros2_run_the_cli_and_list_the_executables():
    assert "usage: xwam-ros" in ros2("run", "xwam_ros", "xwam-ros", "--help")
    exes = ros2("pkg", "executables", "xwam_ros")
    for exe in ("xwam-ros", "policy_node", "sim_robot", "camera_source"):
        assert f"xwam_ros {exe}" in exes


def test_ros2_launch_shows_every_argument():
    out = ros2("launch", "xwam_ros", "policy.launch.py", "--show-args")
    for name in ("config_file", "checkpoint", "sim", "sim_node", "namespace", "use_sim_time", "rviz"):
        assert f"'{name}':" in out
