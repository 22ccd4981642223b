"""The layer contract of docs/ARCHITECTURE.md, checked on every import statement of the package (lazy ones inside
functions too): packages import only the packages their row allows, no private name crosses a package boundary,
and rclpy / launch are imported at module level only in the ROS layer."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "xwam_ros"

# package -> packages it may import (besides itself). Keep in sync with docs/ARCHITECTURE.md.
ALLOWED = {
    "geometry": set(),
    "model": {"geometry"},
    "paths": set(),
    "robot": {"geometry", "model", "paths"},
    "data": {"geometry", "model", "robot"},
    "sim": {"geometry", "model", "robot", "data", "paths"},
    "eval": {"geometry", "model", "robot", "data", "paths"},
    "train": {"geometry", "model", "robot", "data", "sim", "eval", "paths"},
    "ros": {"geometry", "model", "robot", "data", "sim", "eval", "train", "paths"},
    "cli": {"ros", "sim", "eval", "train", "data", "robot", "model", "geometry", "paths"},
    "__main__": {"cli"},
    "__init__": set(),
}
ROS_ONLY = ("rclpy", "launch", "launch_ros", "message_filters", "tf2_ros", "ament_index_python")
# rclpy.serialization turns message objects into CDR bytes for the bag writer; it needs no node or context, and it is
# imported inside the function that writes, so the data layer imports without rclpy.
LAZY_OK = {("data", "rclpy.serialization"), ("paths", "ament_index_python.packages")}


def _imports():
    """(file, line, importing package, imported xwam_ros package or None, imported names, external module, lazy)."""
    for f in sorted(PKG.rglob("*.py")):
        rel = f.relative_to(PKG)
        pkg = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        tree = ast.parse(f.read_text(), str(f))
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            lazy = id(node) not in top_level
            if isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names]
                if node.level:
                    base = list(rel.parts[:-1])[: len(rel.parts) - node.level]
                    parts = base + (node.module.split(".") if node.module else [])
                    target = parts[0] if parts else names[0]
                    if not node.module and not base:  # "from .. import x" at the top package
                        target = names[0]
                    yield f, node.lineno, pkg, target, names, None, lazy
                elif node.module.split(".")[0] == "xwam_ros":
                    parts = node.module.split(".")[1:]
                    yield f, node.lineno, pkg, parts[0] if parts else names[0], names, None, lazy
                else:
                    yield f, node.lineno, pkg, None, names, node.module, lazy
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "xwam_ros":
                        parts = a.name.split(".")[1:]
                        yield f, node.lineno, pkg, parts[0] if parts else None, [], None, lazy
                    else:
                        yield f, node.lineno, pkg, None, [], a.name, lazy


IMPORTS = list(_imports())


def test_the_walker_sees_the_known_edges():
    """Guards the checker itself: if it found nothing, every other test here would pass vacuously."""
    edges = {(p, t) for _, _, p, t, _, _, _ in IMPORTS if t and t != p}
    assert {("ros", "robot"), ("robot", "model"), ("model", "geometry"), ("cli", "ros")} <= edges
    assert any(lazy for *_, lazy in IMPORTS), "lazy (function-level) imports must be seen too"


def test_every_package_has_a_row():
    pkgs = {(f.relative_to(PKG).parts[0] if len(f.relative_to(PKG).parts) > 1 else f.stem) for f in PKG.rglob("*.py")}
    assert pkgs <= set(ALLOWED), f"packages without a row in ALLOWED / docs/ARCHITECTURE.md: {pkgs - set(ALLOWED)}"


def test_imports_point_only_down():
    bad = [f"{f.relative_to(PKG)}:{line}: {pkg} -> {tgt}" for f, line, pkg, tgt, _, _, _ in IMPORTS
           if tgt and tgt != pkg and tgt not in ALLOWED.get(pkg, set())]
    assert not bad, "imports against the layer table:\n" + "\n".join(bad)


def test_no_private_name_crosses_a_package_boundary():
    bad = [f"{f.relative_to(PKG)}:{line}: {pkg} imports {n} from {tgt}" for f, line, pkg, tgt, names, _, _ in IMPORTS
           if tgt and tgt != pkg for n in names if n.startswith("_")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("module", ROS_ONLY)
def test_ros_libraries_only_in_the_ros_layer(module):
    bad = [f"{f.relative_to(PKG)}:{line}: {ext}" for f, line, pkg, _, _, ext, lazy in IMPORTS
           if ext and ext.split(".")[0] == module and pkg not in ("ros", "cli")
           and not (lazy and (pkg, ext) in LAZY_OK)]
    assert not bad, f"{module} imported outside ros/ and cli:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    """Module-level (not lazy) imports between modules form no cycle (e.g. model/loading <-> model/vae)."""
    graph = {}
    for f, _, _, _, _, _, lazy in IMPORTS:
        graph.setdefault(f, set())
    for f, line, pkg, tgt, names, ext, lazy in IMPORTS:
        if lazy or ext is not None or tgt is None:
            continue
        src = ast.parse(f.read_text())
        for node in src.body:
            if isinstance(node, ast.ImportFrom) and node.lineno == line and node.level:
                base = f.parent
                for _ in range(node.level - 1):
                    base = base.parent
                mod = base.joinpath(*node.module.split(".")) if node.module else base
                for cand in (mod.with_suffix(".py"), mod / "__init__.py"):
                    if cand.exists() and cand != f:
                        graph[f].add(cand)
    seen, stack, cycles = set(), [], []

    def visit(n):
        if n in stack:
            cycles.append(stack[stack.index(n):] + [n])
            return
        if n in seen:
            return
        seen.add(n)
        stack.append(n)
        for m in graph.get(n, ()):
            visit(m)
        stack.pop()

    for n in list(graph):
        visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(str(p.relative_to(PKG)) for p in c) for c in cycles)
