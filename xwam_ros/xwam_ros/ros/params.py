"""The policy node's ROS parameters: declared from robot/config.py's table with descriptors (description, numeric
range, read-only), read into the typed NodeConfig, and changed at run time through a validating callback.

Run-time changes (``ros2 param set``) are validated as a whole configuration first (a bad value is refused with the
reason, the node keeps its old configuration) and then applied by the node's ``apply`` function. Parameters outside
``RUNTIME_PARAMS`` are read-only: rclpy refuses to change them after start-up.
"""
from __future__ import annotations

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult

from ..robot.config import (CAMERA_PARAMS, NODE_PARAMS, PARAM_RANGES, RUNTIME_PARAMS, ParameterError, camera_config,
                            validate)


def descriptor(name: str, description: str, default) -> ParameterDescriptor:
    d = ParameterDescriptor(description=description, read_only=name not in RUNTIME_PARAMS)
    if name in PARAM_RANGES:
        lo, hi = PARAM_RANGES[name]
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        else:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    if name in RUNTIME_PARAMS:
        d.additional_constraints = "changeable at run time; applied to the next chunk"
    return d


def declare_parameters(node):
    """Declare every node and camera parameter on ``node``; returns the validated NodeConfig (or raises
    ParameterError naming the bad parameter: the node refuses to start)."""
    values = {name: node.declare_parameter(name, default, descriptor(name, desc, default)).value
              for name, (default, desc) in NODE_PARAMS.items()}
    cameras = []
    for cam in values["camera_names"]:
        defaults = camera_config(cam, {})
        p = {}
        for key, desc in CAMERA_PARAMS.items():
            default = getattr(defaults, key)
            default = [float(x) for x in default.ravel()] if key == "extrinsic" else default
            p[key] = node.declare_parameter(f"cameras.{cam}.{key}", default,
                                            ParameterDescriptor(description=desc, read_only=True)).value
        cameras.append(camera_config(cam, p))
    return validate(values, cameras)


class RuntimeParameters:
    """Validates a run-time parameter change as a whole configuration, then hands the new one to ``apply``."""

    def __init__(self, node, get_config, apply):
        self._get, self._apply = get_config, apply
        node.add_on_set_parameters_callback(self._validate)
        node.add_post_set_parameters_callback(self._commit)

    @staticmethod
    def _changes(params) -> dict:
        return {p.name: p.value for p in params if p.name in NODE_PARAMS}

    def _validate(self, params) -> SetParametersResult:
        try:
            self._get().replace(**self._changes(params))
        except ParameterError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _commit(self, params) -> None:
        # rebuilt here rather than kept from _validate: two callers (the enable service and the parameter service)
        # may set parameters concurrently, and each commit must apply its own change
        changes = self._changes(params)
        if changes:
            self._apply(self._get().replace(**changes), set(changes))
