"""A node parameter file (the YAML ``ros2 launch`` passes to the policy node) -> the validated NodeConfig, for code
that runs without a node (offline evaluation, dataset conversion, the recorder): one reading of the YAML for all."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from .config import NODE_PARAMS, CameraConfig, realsense_topics, validate


def _qualified(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic


def load_setup(config_file, overrides: dict | None = None):
    """The node's validated parameters from the same YAML the node uses (``/**`` or ``xwam_policy`` section)."""
    doc = yaml.safe_load(Path(config_file).read_text()) or {}
    section = next((v["ros__parameters"] for k, v in doc.items() if k in ("/**", "xwam_policy", "/xwam_policy")), {})
    p = {**section, **(overrides or {})}
    values = {k: p.get(k, d) for k, (d, _) in NODE_PARAMS.items()}
    # the configs' topic names are relative (resolved in the node's namespace; the root one here); bags and
    # recordings hold fully qualified names
    for k in ("joint_state_topic", "ee_pose_topic", "controller_topic"):
        values[k] = _qualified(values[k])
    cams = []
    for name in values["camera_names"]:
        c = p.get("cameras", {}).get(name, {})
        d = realsense_topics(name)
        topic = lambda key: _qualified(c.get(key, d[key]))  # noqa: E731
        cams.append(CameraConfig(name, topic("color_topic"), topic("depth_topic"), topic("info_topic"),
                                 c.get("frame_id", d["frame_id"]),
                                 c.get("kind", "static"), np.asarray(c.get("extrinsic", np.eye(4).ravel()),
                                                                     float).reshape(4, 4)))
    return validate(values, cams)
