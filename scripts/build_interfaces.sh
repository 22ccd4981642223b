#!/usr/bin/env bash
# Builds xwam_interfaces with plain CMake into .venv (no colcon needed). The Kilted ament/rosidl wheels export
# CMake targets that hard-code their manylinux build paths; patch those once per venv first.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="$ROOT/.venv"
PYINC=$("$V/bin/python" -c "import sysconfig;print(sysconfig.get_paths()['include'])")
NPINC=$("$V/bin/python" -c "import numpy;print(numpy.get_include())")
{ grep -rl /opt/python/cp311-cp311 "$V/share" --include='*.cmake' 2>/dev/null || true; } | xargs -r sed -i \
  -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" \
  -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g"
B="$ROOT/build/xwam_interfaces"
mkdir -p "$ROOT/build"
rm -rf "$B"
PATH="$V/bin:$PATH" AMENT_PREFIX_PATH="$V" CMAKE_PREFIX_PATH="$V" cmake -S "$ROOT/xwam_interfaces" -B "$B" \
  -DCMAKE_INSTALL_PREFIX="$V" -DPython3_EXECUTABLE="$V/bin/python" -DBUILD_TESTING=OFF >"$ROOT/build/interfaces_cmake.log" 2>&1 \
  || { cat "$ROOT/build/interfaces_cmake.log"; exit 1; }
cmake --build "$B" -j2 >>"$ROOT/build/interfaces_cmake.log" 2>&1 || { tail -50 "$ROOT/build/interfaces_cmake.log"; exit 1; }
cmake --install "$B" >>"$ROOT/build/interfaces_cmake.log" 2>&1
"$V/bin/python" -c "import xwam_interfaces.msg as m; print('[setup] xwam_interfaces built:', ', '.join(n for n in dir(m) if n[0].isupper()))"
