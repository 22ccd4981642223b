"""policy.launch.py as a description (no process started): every argument is described, the config decides the
checkpoint and the simulated robot unless an argument overrides them, bad arguments fail with a clear error."""
import runpy

import pytest
from launch_probe import skip_without_launch

skip_without_launch()

from xwam_ros.paths import share_file  # noqa: E402

LAUNCH = runpy.run_path(str(share_file("launch", "policy.launch.py")))
EXPECTED_ARGS = {"config_file", "checkpoint", "overrides_file", "use_sim_time", "sim", "sim_node", "namespace",
                 "rviz", "rviz_config"}


def specs(**args):
    defaults = {k: d for k, (d, _) in LAUNCH["ARGUMENTS"].items()}
    return {s["executable"]: s for s in LAUNCH["node_specs"](lambda name: str({**defaults, **args}[name]))}


def test_every_argument_is_declared_with_a_description():
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument
    ld = LAUNCH["generate_launch_description"]()
    assert isinstance(ld, LaunchDescription)
    declared = {a.name: a for a in ld.entities if isinstance(a, DeclareLaunchArgument)}
    assert set(declared) == EXPECTED_ARGS
    assert all(len(a.description) > 20 for a in declared.values())


def test_no_arguments_run_what_the_config_says():
    s = specs()
    assert set(s) == {"policy_node"}  # no sim, no rviz
    params = s["policy_node"]["parameters"]
    assert params[0] == str(share_file("config", "policy.yaml"))
    assert not any(isinstance(p, dict) and "checkpoint" in p for p in params)  # the config's builtin:lift_tiny


def test_checkpoint_is_passed_only_when_given():
    params = specs(checkpoint="/models/xwam")["policy_node"]["parameters"]
    assert params[-1] == {"checkpoint": "/models/xwam"}


def test_sim_starts_the_configs_sim_node_unless_overridden():
    assert specs(sim="true")["sim_robot"]["name"] == "xwam_sim_robot"
    gantry = specs(sim="true", config_file="gantry.yaml")  # a name in the package's config/ is enough
    assert "camera_source" in gantry and gantry["camera_source"]["name"] == "xwam_camera_source"
    assert "sim_robot" in specs(sim="true", config_file="gantry.yaml", sim_node="sim_robot")


def test_overrides_file_and_use_sim_time_reach_every_node(tmp_path):
    o = tmp_path / "o.yaml"
    o.write_text("/**:\n  ros__parameters:\n    enabled: true\n")
    s = specs(sim="true", overrides_file=str(o), use_sim_time="true")
    for node in s.values():
        assert str(o) in node["parameters"] and {"use_sim_time": True} in node["parameters"]


def test_bad_arguments_fail_naming_the_argument():
    with pytest.raises(ValueError, match="sim_node"):
        specs(sim="true", sim_node="turtlesim")
    with pytest.raises(ValueError, match="use_sim_time"):
        specs(use_sim_time="yes please")
    with pytest.raises(FileNotFoundError, match="no_such.yaml"):  # names the file
        specs(config_file="no_such.yaml")
