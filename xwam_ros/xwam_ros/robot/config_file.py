"""A node parameter file (the YAML ``ros2 launch`` passes to the policy node) -> the validated NodeConfig, for code
that runs without a node (offline evaluation, dataset conversion, the recorder): one reading of the YAML for all."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from .config import NODE_PARAMS, CameraConfig, realsense_topics, validate


def qualified(topic: str, namespace: str = "") -> str:
    """The fully qualified name of ``topic`` for a node in ``namespace`` (absolute names stay as they are)."""
    return topic if topic.startswith("/") else "/" + "/".join(p for p in (namespace.strip("/"), topic) if p)


def load_setup(config_file, overrides: dict | None = None, namespace: str = ""):
    """The node's validated parameters from the same YAML the node uses (``/**`` or ``xwam_policy`` section), its
    relative topic names resolved in ``namespace`` (the root one by default, as bags and recordings hold them)."""
    doc = yaml.safe_load(Path(config_file).read_text()) or {}
    section = next((v["ros__parameters"] for k, v in doc.items() if k in ("/**", "xwam_policy", "/xwam_policy")), {})
    p = {**section, **(overrides or {})}
    values = {k: p.get(k, d) for k, (d, _) in NODE_PARAMS.items()}
    for k in ("joint_state_topic", "ee_pose_topic", "controller_topic"):
        values[k] = qualified(values[k], namespace)
    cams = []
    for name in values["camera_names"]:
        c = p.get("cameras", {}).get(name, {})
        d = realsense_topics(name)
        topic = lambda key: qualified(c.get(key, d[key]), namespace)  # noqa: E731
        cams.append(CameraConfig(name, topic("color_topic"), topic("depth_topic"), topic("info_topic"),
                                 c.get("frame_id", d["frame_id"]),
                                 c.get("kind", "static"), np.asarray(c.get("extrinsic", np.eye(4).ravel()),
                                                                     float).reshape(4, 4)))
    return validate(values, cams)
