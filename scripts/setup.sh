#!/usr/bin/env bash
# Sets up everything xwam_ros needs on a fresh Debian 12 / Python 3.11 machine, idempotently:
#   .venv/ with pinned wheels (torch CPU first), xwam_ros installed editable, xwam_interfaces built into the venv,
#   the upstream ROS 2 tools (launch, launch_testing, the ros2 CLI, tf2_msgs, ...) from ros-tools when present, and
#   xwam_ros registered in the venv's ament index, so the venv is a ROS 2 prefix like /opt/ros/<distro>:
#   `source .venv/bin/activate && ros2 launch xwam_ros policy.launch.py sim:=true`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
V="$ROOT/.venv"
PY="${PYTHON:-python3}"

if [ ! -x "$V/bin/python" ]; then
  echo "[setup] creating $V"
  "$PY" -m venv "$V"
fi
"$V/bin/pip" install -q --upgrade pip >/dev/null
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
"$V/bin/pip" install -q torch==2.13.0
"$V/bin/pip" install -q -r requirements.txt
if [ -f requirements-sim.txt ]; then
  "$V/bin/pip" install -q -r requirements-sim.txt
  "$V/bin/pip" install -q --no-deps robosuite==1.5.2
fi
"$V/bin/pip" install -q --no-deps -e xwam_ros

# Build the custom interfaces (xwam_interfaces, ament_cmake) straight into the venv prefix.
# (run from / so the source folder xwam_interfaces/ is not mistaken for the built package)
if ! (cd / && "$V/bin/python" -c "from xwam_interfaces.msg import ActionChunk, ImaginedFuture") 2>/dev/null; then
  echo "[setup] building xwam_interfaces"
  bash "$ROOT/scripts/build_interfaces.sh"
fi

# The upstream ROS 2 tools that have no PyPI wheel (ROS_TOOLS_DIR, else ../shared/ros-tools beside the repo).
RT=""
for d in "${ROS_TOOLS_DIR:-}" "$ROOT/../shared/ros-tools" /work/shared/ros-tools; do
  if [ -n "$d" ] && [ -f "$d/install.sh" ]; then RT="$d"; break; fi
done
if [ -n "$RT" ]; then
  bash "$RT/install.sh" "$V"
else
  echo "[setup] ros-tools not found (set ROS_TOOLS_DIR): no launch, ros2 CLI or tf2_msgs; the launch tests skip"
fi

# colcon from PyPI (scripts/colcon_ws.sh builds the repo as a colcon workspace with it)
"$V/bin/pip" install -q -r requirements-colcon.txt

bash "$ROOT/scripts/register_ament.sh" "$V"
# activating the venv makes it a ROS prefix (the wheels ship no setup.bash): ros2 launch/run find xwam_ros
if ! grep -q "xwam_ros: ament prefix" "$V/bin/activate"; then
  cat >> "$V/bin/activate" <<'ACT'
# xwam_ros: ament prefix (added by scripts/setup.sh)
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *) export AMENT_PREFIX_PATH="${AMENT_PREFIX_PATH:+$AMENT_PREFIX_PATH:}$VIRTUAL_ENV" ;; esac
ACT
fi
echo "[setup] ok: $V"
