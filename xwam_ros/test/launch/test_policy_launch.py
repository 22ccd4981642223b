"""`ros2 launch xwam_ros policy.launch.py sim:=true` for real (launch_pytest, the installed launch file, every node a
process): the shipped model drives the simulated Panda, episodes succeed, TF resolves, RViz's topics exist, and the
policy node answers `ros2 param` and its services. One launched graph serves every test of the module."""
import pytest
from launch_probe import GraphClient, skip_without_launch

skip_without_launch()

import launch_pytest  # noqa: E402
import yaml  # noqa: E402
from graph_checks import (check_params_and_services, check_rviz_topics, check_tf,  # noqa: E402
                          check_trajectories_and_success, subscribe_all)
from launch_probe import policy_launch  # noqa: E402

from xwam_ros.paths import share_file  # noqa: E402

NS = ""
CONFIG = yaml.safe_load(open(share_file("config", "policy.yaml")))["/**"]["ros__parameters"]
pytestmark = pytest.mark.slow


@launch_pytest.fixture(scope="module")
def graph():
    # enabled: the sim robot executes what the policy sends (the config ships in dry run)
    return policy_launch(sim="true", namespace=NS, overrides={"enabled": True})


@pytest.fixture(scope="module")
def client():
    c = GraphClient(NS)
    subscribe_all(c)
    yield c
    c.close()


@pytest.mark.launch(fixture=graph)
async def test_trajectories_arrive_and_an_episode_succeeds(client):
    await check_trajectories_and_success(client, episodes_timeout=240)


@pytest.mark.launch(fixture=graph)
async def test_tf_resolves_clouds_and_cameras_to_the_base_frame(client):
    await check_tf(client, CONFIG)


@pytest.mark.launch(fixture=graph)
async def test_every_rviz_display_topic_is_published_with_its_type(client):
    await check_rviz_topics(client, share_file("rviz", "xwam.rviz"))


@pytest.mark.launch(fixture=graph)
async def test_ros2_param_and_policy_services(client):
    await check_params_and_services(client)
