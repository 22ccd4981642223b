"""Where the package's data lives (config, launch, rviz, shipped models): the ament index first (a colcon install, or
the venv that scripts/setup.sh registers), then the interpreter prefix (a plain pip install), then the source tree."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "xwam_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[1]  # xwam_ros/ (package.xml, config/, launch/, models/, rviz/)


def ament_share() -> Path | None:
    """share/xwam_ros of the first AMENT_PREFIX_PATH prefix that registers the package, or None."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory(PACKAGE))
    except ImportError:  # a plain pip install without the ROS wheels
        return None
    except (LookupError, OSError, ValueError):  # not registered / AMENT_PREFIX_PATH unset
        return None


def ensure_ament_prefix() -> None:
    """Put this interpreter's prefix on AMENT_PREFIX_PATH when it registers xwam_ros (scripts/setup.sh's venv, like
    /opt/ros/<distro>) and is not there yet: `.venv/bin/xwam-ros` then launches nodes that launch_ros can find
    without an activated venv."""
    marker = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    paths = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    if marker.exists() and sys.prefix not in paths:
        os.environ["AMENT_PREFIX_PATH"] = os.pathsep.join(paths + [sys.prefix])


def share_candidates() -> list[Path]:
    share = ament_share()
    return ([share] if share else []) + [Path(sys.prefix) / "share" / PACKAGE, SOURCE_ROOT]


def share_file(*parts) -> Path:
    """A file or folder of the package's share directory (ament index, pip prefix or source tree)."""
    candidates = [c / Path(*parts) for c in share_candidates()]
    for c in candidates:
        if c.exists():
            return c
    raise FileNotFoundError(f"{Path(*parts)} not found in {[str(c) for c in candidates]}")


def config_path(name) -> Path:
    """A parameter file: a path, or the name of one of the package's config/ files (``gantry.yaml``)."""
    if Path(name).is_file():
        return Path(name)
    shipped = [c / "config" / str(name) for c in share_candidates()]
    for c in shipped:
        if c.is_file():
            return c
    raise FileNotFoundError(f"config file {name}: no such file, nor in the package's config/ ({shipped[0].parent})")


def resolve_checkpoint(path):
    """``builtin:<name>``: a checkpoint shipped in the package's models/ directory; anything else is a path."""
    path = str(path)
    if path.startswith("builtin:"):
        return share_file("models", path[len("builtin:"):])
    return Path(path)
