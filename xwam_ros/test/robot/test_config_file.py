"""A node parameter file read without a node (robot/config_file.py): topic names resolved like the node's."""
from xwam_ros.paths import share_file
from xwam_ros.robot.config_file import load_setup, qualified


def test_relative_names_resolve_in_the_namespace_and_absolute_ones_stay():
    assert qualified("joint_states") == "/joint_states"
    assert qualified("joint_states", "/robot1/") == "/robot1/joint_states"
    assert qualified("/diagnostics", "robot1") == "/diagnostics"


def test_setup_topics_in_the_root_namespace_by_default_and_under_a_given_one():
    root = load_setup(share_file("config", "policy.yaml"))
    ns = load_setup(share_file("config", "policy.yaml"), namespace="robot1")
    assert root.cameras[0].color_topic == "/agentview/color/image_raw"
    assert ns.cameras[0].color_topic == "/robot1/agentview/color/image_raw"
    assert ns.joint_state_topic == "/robot1" + root.joint_state_topic
