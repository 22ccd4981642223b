#!/usr/bin/env bash
# Registers xwam_ros in the ament index of a prefix (default: .venv), as colcon's install does, so that
# `ros2 launch xwam_ros ...`, `ros2 run xwam_ros <exe>`, `ros2 pkg prefix xwam_ros` and
# ament_index_python.get_package_share_directory('xwam_ros') work there:
#   share/ament_index/resource_index/packages/xwam_ros           (the marker)
#   share/xwam_ros/{package.xml,launch,config,rviz,foxglove,models}     (links into the source tree: stays editable; a file
#                                                                added to launch/ config/ rviz/ needs a re-run)
#   lib/xwam_ros/{xwam-ros,policy_node,sim_robot,camera_source}  (symlinks to the venv's console scripts)
# Usage: bash scripts/register_ament.sh [PREFIX [VENV]]   (VENV holds the console scripts; default PREFIX)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
P="$(mkdir -p "${1:-$ROOT/.venv}" && cd "${1:-$ROOT/.venv}" && pwd)"
V="$(cd "${2:-$P}" && pwd)"
PKG="$ROOT/xwam_ros"
mkdir -p "$P/share/ament_index/resource_index/packages" "$P/share/xwam_ros" "$P/lib/xwam_ros"
: > "$P/share/ament_index/resource_index/packages/xwam_ros"
# launch/, config/, rviz/: real folders of per-file links (`ros2 launch` walks the share folder without following
# folder links); models/ is read by path, so one link
for f in package.xml models launch config rviz foxglove; do rm -rf "${P:?}/share/xwam_ros/$f"; done
ln -s "$PKG/package.xml" "$P/share/xwam_ros/package.xml"
ln -s "$PKG/models" "$P/share/xwam_ros/models"
for d in launch config rviz foxglove; do
  mkdir -p "$P/share/xwam_ros/$d"
  for f in "$PKG/$d"/*; do ln -s "$f" "$P/share/xwam_ros/$d/$(basename "$f")"; done
done
for exe in xwam-ros policy_node sim_robot camera_source; do
  [ -x "$V/bin/$exe" ] || { echo "[setup] $V/bin/$exe missing: install xwam_ros first (pip install -e xwam_ros)" >&2; exit 1; }
  ln -sfn "$V/bin/$exe" "$P/lib/xwam_ros/$exe"
done
echo "[setup] xwam_ros registered in the ament index of $P"
