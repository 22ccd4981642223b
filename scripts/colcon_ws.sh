#!/usr/bin/env bash
# The README's colcon workspace steps, run for real: copy the repo into WS/src (default: a new temp dir),
# `colcon build` against the venv's ROS 2 Kilted wheels, `source install/setup.bash`, check the install
# (`ros2 pkg prefix`, `ros2 run xwam_ros xwam-ros --help`, builtin:lift_tiny resolves inside install/), then
# `colcon test --packages-select xwam_ros` (extra arguments go to pytest; default: the launch/ament tests and the
# fast robot/geometry tests).
# Usage: bash scripts/colcon_ws.sh [WS] [-- PYTEST_ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="${XWAM_VENV:-$ROOT/.venv}"  # the venv with the Kilted wheels (XWAM_VENV: another one)
WS="${1:-}"; [ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
[ -n "$WS" ] || WS="$(mktemp -d "${TMPDIR:-/tmp}/xwam_ws.XXXXXX")"
PYTEST_ARGS=("$@")
[ ${#PYTEST_ARGS[@]} -gt 0 ] || PYTEST_ARGS=(test/launch test/robot test/geometry -m "not slow" -p no:cacheprovider)
say() { echo "[colcon] $*"; }
[ -x "$V/bin/colcon" ] || { echo "[colcon] $V/bin/colcon missing: run scripts/setup.sh" >&2; exit 1; }
T0=$(date +%s)

# 1. the workspace: a copy of the two packages (colcon builds out of the source tree; a copy keeps ours clean)
mkdir -p "$WS/src"
for p in xwam_interfaces xwam_ros; do
  rm -rf "${WS:?}/src/$p"
  tar -C "$ROOT" --exclude='__pycache__' --exclude='*.egg-info' --exclude='.pytest_cache' -cf - "$p" | tar -C "$WS/src" -xf -
done

# 2. the pip-wheel ROS underlay: the venv is the ament/CMake prefix (an apt install: `source /opt/ros/kilted/setup.bash`)
bash "$ROOT/scripts/patch_ros_wheels.sh" "$V"
export PATH="$V/bin:$PATH" AMENT_PREFIX_PATH="$V" CMAKE_PREFIX_PATH="$V"
unset PYTHONPATH COLCON_PREFIX_PATH
cd "$WS"
say "colcon build in $WS"
colcon build --event-handlers console_cohesion- --cmake-args -DPython3_EXECUTABLE="$V/bin/python" -DBUILD_TESTING=OFF \
  > "$WS/build.log" 2>&1 || { tail -60 "$WS/build.log"; exit 1; }
say "built in $(( $(date +%s) - T0 )) s"

# 3. the installed package, as a user sees it after `source install/setup.bash`
set +u; source install/setup.bash; set -u
prefix=$(ros2 pkg prefix xwam_ros)
[ "$prefix" = "$WS/install/xwam_ros" ] || { echo "[colcon] ros2 pkg prefix xwam_ros = $prefix, not $WS/install/xwam_ros" >&2; exit 1; }
ros2 run xwam_ros xwam-ros --help | grep -q "usage: xwam-ros" || { echo "[colcon] ros2 run xwam_ros xwam-ros --help failed" >&2; exit 1; }
(cd / && python - "$WS/install" <<'PY')
import sys
import xwam_ros
from xwam_interfaces.msg import ActionChunk  # noqa: F401  (the workspace's build of the messages)
from xwam_ros.paths import resolve_checkpoint, share_file
install = sys.argv[1]
for what, path in [("package", xwam_ros.__file__), ("builtin:lift_tiny", resolve_checkpoint("builtin:lift_tiny")),
                   ("launch file", share_file("launch", "policy.launch.py"))]:
    assert str(path).startswith(install), f"{what} resolves to {path}, outside the colcon install {install}"
    print(f"[colcon] {what}: {path}")
assert (resolve_checkpoint("builtin:lift_tiny") / "model.safetensors").is_file()
PY
for exe in xwam-ros policy_node sim_robot camera_source; do
  [ -x "install/xwam_ros/lib/xwam_ros/$exe" ] || { echo "[colcon] missing executable lib/xwam_ros/$exe" >&2; exit 1; }
done

# 4. colcon test
say "colcon test --packages-select xwam_ros --pytest-args ${PYTEST_ARGS[*]}"
rc=0
colcon test --packages-select xwam_ros --event-handlers console_direct+ --pytest-args "${PYTEST_ARGS[@]}" || rc=$?
colcon test-result --verbose || rc=$?
say "done in $(( $(date +%s) - T0 )) s (exit $rc)"
exit $rc
