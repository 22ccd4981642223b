"""The shipped tiny X-WAM (models/lift_tiny) lifts the cube in closed loop where an untrained one never does."""
import json

import pytest

from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.paths import resolve_checkpoint
from xwam_ros.sim.evaluate import ClosedLoopConfig, run_episode
from xwam_ros.sim.robosuite_env import SimConfig, SimEnv

SEEDS = (10_000, 10_001, 10_002)  # the first seeds of the closed-loop benchmark; demonstrations used 0..199
THRESHOLD = 2  # of 3


@pytest.fixture(scope="module")
def env():
    e = SimEnv(SimConfig(horizon=200), seed=SEEDS[0])
    yield e
    e.close()


def test_shipped_checkpoint_is_complete_and_documented():
    path = resolve_checkpoint("builtin:lift_tiny")
    card = json.loads((path / "MODEL_CARD.json").read_text())
    assert card["made_by"] == "xwam-ros recipe" and card["train_config"]["sampler"] == "ans"
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) < 10 * 2**20  # a few MB
    policy = XWAMPolicy.from_pretrained(path)
    assert policy.config.view_names == ("agentview", "sideview", "eye_in_hand")
    assert policy.config.gripper_action == "absolute"


@pytest.mark.slow  # six closed-loop episodes
def test_shipped_policy_succeeds_where_an_untrained_one_fails(env):
    cl = ClosedLoopConfig(episodes=len(SEEDS))
    shipped = XWAMPolicy.from_pretrained(resolve_checkpoint("builtin:lift_tiny"))
    wins = [run_episode(env, shipped, s, cl)["success"] for s in SEEDS]
    untrained = XWAMPolicy.from_config(shipped.config, seed=1, normalizer=shipped.normalizer)
    untrained.codec = shipped.codec
    random_wins = [run_episode(env, untrained, s, cl)["success"] for s in SEEDS]
    assert sum(random_wins) < THRESHOLD <= sum(wins), (wins, random_wins)
