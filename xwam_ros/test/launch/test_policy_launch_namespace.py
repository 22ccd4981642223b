"""policy.launch.py sim:=true namespace:=robot1: the same graph, every name under /robot1 (the sim finds the
policy's reset service there, so episodes run), TF and RViz still resolve, services answer under the namespace."""
import pytest
from launch_probe import GraphClient, skip_without_launch

skip_without_launch()

import launch_pytest  # noqa: E402
import yaml  # noqa: E402
from graph_checks import (check_graph_in_namespace, check_params_and_services, check_rviz_topics,  # noqa: E402
                          check_tf, subscribe_all)
from launch_probe import policy_launch  # noqa: E402

from xwam_ros.paths import share_file  # noqa: E402

NS = "robot1"
CONFIG = yaml.safe_load(open(share_file("config", "policy.yaml")))["/**"]["ros__parameters"]
pytestmark = pytest.mark.slow


@launch_pytest.fixture(scope="module")
def graph():
    return policy_launch(sim="true", namespace=NS, overrides={"enabled": True})


@pytest.fixture(scope="module")
def client():
    c = GraphClient(NS)
    subscribe_all(c)
    yield c
    c.close()


@pytest.mark.launch(fixture=graph)
async def test_everything_lives_in_the_namespace_and_episodes_run(client):
    await check_graph_in_namespace(client, episodes_timeout=120)


@pytest.mark.launch(fixture=graph)
async def test_tf_and_rviz_topics_under_the_namespace(client):
    await check_tf(client, CONFIG)
    await check_rviz_topics(client, share_file("rviz", "xwam.rviz"))


@pytest.mark.launch(fixture=graph)
async def test_param_and_services_under_the_namespace(client):
    await check_params_and_services(client)
