"""policy.launch.py config_file:=gantry.yaml sim:=true starts the config's sim_node, the procedural gantry
(camera_source), not the robosuite robot; the policy drives it and TF carries its cameras."""
import pytest
from launch_probe import STARTUP_TIMEOUT, GraphClient, skip_without_launch, wait_for

skip_without_launch()

import launch_pytest  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from launch_probe import policy_launch, resolve, status_of, tf_tree  # noqa: E402

from xwam_ros.paths import share_file  # noqa: E402

CONFIG = yaml.safe_load(open(share_file("config", "gantry.yaml")))["/**"]["ros__parameters"]
pytestmark = pytest.mark.slow


@launch_pytest.fixture(scope="module")
def graph():
    # the gantry's random tiny model: no imagination needed to check the wiring
    return policy_launch(config_file="gantry.yaml", sim="true", overrides={"enabled": True, "imagine": False})


@pytest.fixture(scope="module")
def client():
    from std_msgs.msg import String
    from tf2_msgs.msg import TFMessage

    from xwam_ros.ros.robot_io import TF_STATIC_QOS
    c = GraphClient()
    c.subscribe("xwam_policy/status", String, 10, keep=5)
    c.subscribe("/tf_static", TFMessage, TF_STATIC_QOS)
    yield c
    c.close()


@pytest.mark.launch(fixture=graph)
async def test_gantry_config_starts_the_camera_source_and_the_policy_acts_on_it(client):
    nodes = await wait_for(lambda: {"xwam_camera_source", "xwam_policy"} <= set(client.node.get_node_names())
                           and client.node.get_node_names(), STARTUP_TIMEOUT, "xwam_camera_source and xwam_policy")
    assert "xwam_sim_robot" not in nodes
    # the policy synchronises the gantry's three RGB-D views with its state and queries the model (whether a chunk
    # then moves the arm depends on the CPU meeting max_observation_age; the Lift tests check motion)
    await wait_for(lambda: status_of(client).get("counters", {}).get("queries", 0) >= 1, STARTUP_TIMEOUT,
                   "a policy query on the gantry's observations")
    await wait_for(lambda: client.got("/tf_static"), 30, "/tf_static")
    tree = tf_tree(client.got("/tf_static"), [])
    for cam in ("agentview", "sideview"):
        c = CONFIG["cameras"][cam]
        np.testing.assert_allclose(resolve(tree, c["frame_id"], CONFIG["base_frame"]),
                                   np.reshape(c["extrinsic"], (4, 4)), atol=1e-5)
