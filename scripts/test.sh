#!/usr/bin/env bash
# Runs the whole test suite (CPU, tiny configs, real rclpy over DDS on a private domain id).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
cd "$ROOT/xwam_ros"
exec "$ROOT/.venv/bin/python" -m pytest test -q -p no:cacheprovider "$@"
