"""The committed Foxglove layout shows what the demo's MCAP holds."""
import json

from xwam_ros.paths import share_file
from xwam_ros.ros.demo import recorded_topics


def layout_topics(doc) -> set:
    out = set()
    for cfg in doc["configById"].values():
        out |= set(cfg.get("topics", {}))
        out |= {cfg["imageMode"]["imageTopic"]} if "imageMode" in cfg else set()
        out |= {cfg["topicToRender"]} if "topicToRender" in cfg else set()
        out |= {p["value"].split(".")[0] for p in cfg.get("paths", [])}
    return out


def panels(node) -> set:
    return {node} if isinstance(node, str) else panels(node["first"]) | panels(node["second"])


def test_every_topic_the_layout_shows_is_recorded_and_tf_is_there_to_place_the_clouds():
    doc = json.loads(share_file("foxglove", "xwam_layout.json").read_text())
    recorded = {t for t, _, _ in recorded_topics("")}
    assert layout_topics(doc) and layout_topics(doc) <= recorded, layout_topics(doc) - recorded
    assert {"/tf", "/tf_static"} <= recorded
    assert panels(doc["layout"]) == set(doc["configById"])  # every configured panel is placed, none missing
    three_d = next(c for k, c in doc["configById"].items() if k.startswith("3D!"))
    assert three_d["followTf"] == "world"  # the fixed frame the sims and the .rviz use
