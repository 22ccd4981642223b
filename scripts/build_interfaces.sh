#!/usr/bin/env bash
# Builds xwam_interfaces with plain CMake into .venv (no colcon needed), after patching the Kilted wheels' CMake
# files (scripts/patch_ros_wheels.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="$ROOT/.venv"
bash "$ROOT/scripts/patch_ros_wheels.sh" "$V"
B="$ROOT/build/xwam_interfaces"
mkdir -p "$ROOT/build"
rm -rf "$B"
PATH="$V/bin:$PATH" AMENT_PREFIX_PATH="$V" CMAKE_PREFIX_PATH="$V" cmake -S "$ROOT/xwam_interfaces" -B "$B" \
  -DCMAKE_INSTALL_PREFIX="$V" -DPython3_EXECUTABLE="$V/bin/python" -DBUILD_TESTING=OFF >"$ROOT/build/interfaces_cmake.log" 2>&1 \
  || { cat "$ROOT/build/interfaces_cmake.log"; exit 1; }
cmake --build "$B" -j2 >>"$ROOT/build/interfaces_cmake.log" 2>&1 || { tail -50 "$ROOT/build/interfaces_cmake.log"; exit 1; }
cmake --install "$B" >>"$ROOT/build/interfaces_cmake.log" 2>&1
"$V/bin/python" -c "import xwam_interfaces.msg as m; print('[setup] xwam_interfaces built:', ', '.join(n for n in dir(m) if n[0].isupper()))"
