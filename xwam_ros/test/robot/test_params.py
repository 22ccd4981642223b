from pathlib import Path

import numpy as np
import pytest
import yaml

from xwam_ros.ros.graph import share_file
from xwam_ros.robot.config import CAMERA_PARAMS, NODE_PARAMS, CameraConfig, ParameterError, validate


def _load(name):
    p = yaml.safe_load(share_file("config", name).read_text())["/**"]["ros__parameters"]
    values = {k: p.get(k, d) for k, (d, _) in NODE_PARAMS.items()}
    cams = [CameraConfig(n, c["color_topic"], c["depth_topic"], c["info_topic"], c["frame_id"], c["kind"],
                         np.asarray(c["extrinsic"], float).reshape(4, 4)) for n, c in
            ((n, p["cameras"][n]) for n in p["camera_names"])]
    return values, cams


@pytest.mark.parametrize("name", ["policy.yaml", "gantry.yaml", "example_3cam_arm.yaml"])
def test_shipped_configs_validate(name):
    cfg = validate(*_load(name))
    assert len(cfg.cameras) == 3 and cfg.limits is not None


def test_every_parameter_is_documented():
    assert all(len(desc) > 10 for _, desc in NODE_PARAMS.values())
    assert all(len(desc) > 10 for desc in CAMERA_PARAMS.values())
    readme = Path(__file__).resolve().parents[3] / "README.md"
    if not readme.is_file():  # a colcon workspace holds the package without the repository's README
        pytest.skip(f"no repository README at {readme}")
    readme = readme.read_text()
    missing = [name for name in NODE_PARAMS if f"| `{name}` |" not in readme]
    assert not missing, f"parameters missing from the README's parameter table: {missing}"


def test_bad_values_name_the_parameter():
    values, cams = _load("gantry.yaml")
    for key, bad, match in (("execution_mode", "sometimes", "execution_mode"), ("control_rate", 0.0, "control_rate"),
                            ("max_velocity", [1.0], "max_velocity"), ("joint_names", ["a"], "joint_names")):
        v = dict(values, **{key: bad})
        with pytest.raises(ParameterError, match=match):
            validate(v, cams)
    cams[0].extrinsic = np.diag([2.0, 1, 1, 1])
    with pytest.raises(ParameterError, match="orthonormal"):
        validate(values, cams)


def test_node_config_is_one_typed_dataclass_of_the_declarations():
    import dataclasses

    from xwam_ros.robot.config import PARAM_RANGES, RUNTIME_PARAMS, NodeConfig
    types = {f.name: f.type for f in dataclasses.fields(NodeConfig)}
    assert set(NODE_PARAMS) <= set(types) and types["control_rate"] is float and types["execute_steps"] is int
    assert set(PARAM_RANGES) <= set(NODE_PARAMS) and RUNTIME_PARAMS <= set(NODE_PARAMS)
    assert not {"checkpoint", "device", "camera_names", "controller_topic", "image_qos"} & RUNTIME_PARAMS
    cfg = validate(*_load("gantry.yaml"))
    assert cfg.replace(max_inference_time=3.0).limits.max_inference_s == 3.0 and cfg.max_inference_time == 10.0
    for key, bad in (("imagine_every", 0), ("sync_timeout", 0.0), ("ik", "moveit"), ("extrinsics", "guess"),
                     ("image_qos", "fast")):
        with pytest.raises(ParameterError, match=key):
            cfg.replace(**{key: bad})
