#!/usr/bin/env bash
# Sets up everything xwam_ros needs on a fresh Debian 12 / Python 3.11 machine, idempotently:
#   .venv/ with pinned wheels (torch CPU first), xwam_ros installed editable, xwam_interfaces built into the venv.
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
echo "[setup] ok: $V"
