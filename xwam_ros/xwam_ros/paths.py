"""Where the package's data lives (config, launch, rviz, shipped models), installed or in the source tree."""
from __future__ import annotations

import sys
from pathlib import Path


def share_file(*parts) -> Path:
    """A file of the package's share directory (installed by colcon/pip) or of the source tree."""
    candidates = [Path(sys.prefix) / "share" / "xwam_ros" / Path(*parts),
                  Path(__file__).resolve().parents[1] / Path(*parts)]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{Path(*parts)} not found in {[str(c) for c in candidates]}")


def resolve_checkpoint(path):
    """``builtin:<name>``: a checkpoint shipped in the package's models/ directory; anything else is a path."""
    path = str(path)
    if path.startswith("builtin:"):
        return share_file("models", path[len("builtin:"):])
    return Path(path)
