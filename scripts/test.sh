#!/usr/bin/env bash
# Runs the whole test suite (CPU, tiny configs, real rclpy over DDS on a private domain id, the real launch file
# through launch_pytest), then - on a full run (no arguments) - builds the repo as a colcon workspace in a temp dir
# and runs `colcon test` there (scripts/colcon_ws.sh). Arguments go to pytest and skip the colcon step:
# `bash scripts/test.sh -m "not slow"` is the fast subset (under a minute), `bash scripts/test.sh test/robot` one package.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="$ROOT/.venv"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 100) + 1 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}"
# the venv is a ROS prefix (scripts/setup.sh registers xwam_ros in its ament index), as `source .venv/bin/activate` says
case ":${AMENT_PREFIX_PATH:-}:" in *":$V:"*) ;; *) export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$V" ;; esac
cd "$ROOT/xwam_ros"
rc=0
# a test path among the arguments runs just that; otherwise the whole test/ tree (with any options, e.g. -m "not slow")
target=test
for a in "$@"; do if [ -e "${a%%::*}" ]; then target=; fi; done
"$V/bin/python" -m pytest $target -q -p no:cacheprovider "$@" || rc=$?
if [ $# -eq 0 ]; then
  WS="$(mktemp -d "${TMPDIR:-/tmp}/xwam_ws.XXXXXX")"
  bash "$ROOT/scripts/colcon_ws.sh" "$WS" || rc=$((rc ? rc : $?))
  rm -rf "$WS"
fi
exit $rc
