#!/usr/bin/env bash
# The Kilted rosidl/ament wheels export CMake targets that hard-code their manylinux build paths
# (/opt/python/cp311-cp311/include/python3.11, its numpy include): point them at this venv's Python and numpy.
# Without it, building any interface package against the wheels (plain CMake or `colcon build`) fails with
#   "std_msgs::std_msgs__rosidl_generator_py includes non-existent path /opt/python/cp311-cp311/include/python3.11".
# An apt ROS install (/opt/ros/<distro>) needs none of this. Idempotent. Usage: bash scripts/patch_ros_wheels.sh [VENV]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="${1:-$ROOT/.venv}"
PYINC=$("$V/bin/python" -c "import sysconfig;print(sysconfig.get_paths()['include'])")
NPINC=$("$V/bin/python" -c "import numpy;print(numpy.get_include())")
{ grep -rl /opt/python/cp311-cp311 "$V/share" --include='*.cmake' 2>/dev/null || true; } | xargs -r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g"
