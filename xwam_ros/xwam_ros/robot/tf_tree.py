"""The TF tree as plain data: the newest transform of every parent -> child edge, and lookups along the tree.

No rclpy here (``ros/tf_listener.py`` fills a ``TransformTree`` from ``/tf`` and ``/tf_static``), so the offline
evaluator and tests can use it too. Why not tf2: ``tf2_ros.Buffer`` wraps the tf2 C++ library (``tf2_py``), which has no
wheel for our pip-only ROS install; the part the policy needs -- the latest transform between two frames -- is a
walk up a tree of 4x4 matrices, so we keep that small piece ourselves.

Conventions as in tf2: an edge ``parent -> child`` stores ``T_parent_child`` (the child's pose in the parent; it maps
points in the child frame into the parent frame), every frame has at most one parent, and ``lookup(target, source)``
returns ``T_target_source``. Only the newest transform of each edge is kept (no interpolation in time): the policy
asks for "now", and a ``max_age_s`` check rejects dynamic edges that stopped updating. Static edges never age.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from transforms3d.quaternions import mat2quat, quat2mat

_RIGID_TOL = 1e-4  # |R^T R - I| tolerance for a stored rotation (float32 round trips stay well inside)
_QUAT_TOL = 1e-2  # tf2's QUATERNION_NORMALIZATION_TOLERANCE on |q|^2 - 1


@dataclass(frozen=True)
class Edge:
    """One parent -> child transform as stored in the tree."""

    parent: str
    child: str
    T: np.ndarray  # 4x4 float64, T_parent_child (read-only)
    stamp_s: float
    static: bool


def _check_frame(name, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} frame must be a non-empty string, got {name!r}")
    if name.startswith("/"):  # tf2 rejects these too: a leading slash makes two names for one frame
        raise ValueError(f"{what} frame {name!r} starts with '/'; TF frame ids have no leading slash")
    return name


def _check_rigid(T, parent: str, child: str) -> np.ndarray:
    T = np.array(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"transform {parent!r} -> {child!r} must be 4x4, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"transform {parent!r} -> {child!r} has non-finite entries")
    R = T[:3, :3]
    if not np.allclose(T[3], (0.0, 0.0, 0.0, 1.0)) or not np.allclose(R.T @ R, np.eye(3), atol=_RIGID_TOL) \
            or np.linalg.det(R) <= 0:
        raise ValueError(f"transform {parent!r} -> {child!r} is not a rigid transform (rotation + translation)")
    T.setflags(write=False)
    return T


def invert_rigid(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform (exact: R^T and -R^T t, not a general matrix inverse)."""
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


# Message <-> matrix through transforms3d (what tf_transformations wraps; transforms3d is a pinned dependency, while
# tf_transformations comes only with the ROS tools, and this layer must run without them, e.g. in eval/).
def transform_to_matrix(tf) -> np.ndarray:
    """geometry_msgs/Transform (rclpy or rosbags: anything with translation.x.. and rotation.x..w) -> 4x4 float64.

    ValueError for non-finite values or a quaternion that is not normalised (tf2's tolerance), never a silent
    identity."""
    q_xyzw = np.array([tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w], np.float64)
    t = np.array([tf.translation.x, tf.translation.y, tf.translation.z], np.float64)
    if not (np.all(np.isfinite(q_xyzw)) and np.all(np.isfinite(t))):
        raise ValueError("transform has non-finite translation or rotation")
    if abs(float(q_xyzw @ q_xyzw) - 1.0) > _QUAT_TOL:
        raise ValueError(f"quaternion {q_xyzw.tolist()} is not normalised (|q| = {np.linalg.norm(q_xyzw):.4f})")
    T = np.eye(4)
    T[:3, :3] = quat2mat(q_xyzw[[3, 0, 1, 2]])  # transforms3d orders w, x, y, z
    T[:3, 3] = t
    return T


def matrix_to_translation_quaternion(T) -> tuple[np.ndarray, np.ndarray]:
    """4x4 rigid transform -> (translation [3], quaternion [4] x, y, z, w with w >= 0), as geometry_msgs orders it."""
    T = np.asarray(T, np.float64)
    wxyz = mat2quat(T[:3, :3])  # transforms3d returns w >= 0
    return T[:3, 3].copy(), wxyz[[1, 2, 3, 0]]


def apply_transforms(tree: "TransformTree", transforms, static: bool) -> list[str]:
    """Store every TransformStamped of a tf2_msgs/TFMessage's ``transforms`` in ``tree``; returns one error string per
    transform refused (bad quaternion, NaN, loop, bad frame id) instead of raising, so one bad entry cannot hide the
    others. Used by the live listener and by anything reading /tf from a bag."""
    errors = []
    for ts in transforms:
        parent, child = ts.header.frame_id, ts.child_frame_id
        try:
            stamp_s = int(ts.header.stamp.sec) + int(ts.header.stamp.nanosec) * 1e-9
            tree.set_transform(parent, child, transform_to_matrix(ts.transform), stamp_s, static=static)
        except ValueError as e:
            errors.append(f"rejected {'static ' if static else ''}transform {parent!r} -> {child!r}: {e}")
    return errors


class TransformTree:
    """Thread-safe store of the newest transform per edge; ``lookup`` chains them in either direction."""

    def __init__(self):
        self._edges: dict[str, Edge] = {}  # child -> edge to its parent
        self._lock = threading.Lock()
        self.ignored_old = 0  # dynamic updates older than the stored one (kept the newer)

    def set_transform(self, parent: str, child: str, T, stamp_s: float, static: bool = False) -> bool:
        """Store ``T_parent_child``. Returns False (and counts it) when a dynamic update is older than the stored one.

        A child that gets a new parent is re-parented (as tf2 does); an edge that would close a loop raises
        ValueError naming the frames.
        """
        parent, child = _check_frame(parent, "parent"), _check_frame(child, "child")
        if parent == child:
            raise ValueError(f"transform from frame {parent!r} to itself")
        if not np.isfinite(stamp_s):
            raise ValueError(f"transform {parent!r} -> {child!r} has a non-finite stamp {stamp_s!r}")
        T = _check_rigid(T, parent, child)
        with self._lock:
            old = self._edges.get(child)
            if old is not None and not static and not old.static and old.parent == parent \
                    and stamp_s < old.stamp_s:
                self.ignored_old += 1
                return False
            if child in self._ancestors(parent):
                raise ValueError(f"transform {parent!r} -> {child!r} would make a loop: {parent!r} is below "
                                 f"{child!r} in the TF tree")
            self._edges[child] = Edge(parent, child, T, float(stamp_s), bool(static))
            return True

    def lookup(self, target_frame: str, source_frame: str, max_age_s: float | None = None,
               now_s: float | None = None) -> np.ndarray:
        """``T_target_source`` from the newest transforms; LookupError names the missing frame, link or stale edge."""
        return self.lookup_stamped(target_frame, source_frame, max_age_s, now_s)[0]

    def lookup_stamped(self, target_frame: str, source_frame: str, max_age_s: float | None = None,
                       now_s: float | None = None) -> tuple[np.ndarray, float | None]:
        """Like ``lookup``, also returning the oldest dynamic stamp on the chain (None when every edge is static)."""
        if max_age_s is not None and now_s is None:
            raise ValueError("lookup with max_age_s needs now_s (the current time on the same clock as the stamps)")
        with self._lock:
            up_source = self._chain(source_frame)
            up_target = self._chain(target_frame)
        # the chains run frame -> root; cut them at the deepest common frame
        source_frames = [source_frame] + [e.parent for e in up_source]
        target_frames = [target_frame] + [e.parent for e in up_target]
        if source_frames[-1] != target_frames[-1]:
            raise LookupError(f"frames {target_frame!r} and {source_frame!r} are not connected: {target_frame!r} is "
                              f"under root {target_frames[-1]!r}, {source_frame!r} under root {source_frames[-1]!r} "
                              f"(no transform links the two trees)")
        common = next(f for f in source_frames if f in set(target_frames))
        up_source = up_source[:source_frames.index(common)]
        up_target = up_target[:target_frames.index(common)]
        oldest = None
        for e in up_source + up_target:
            if e.static:
                continue
            if max_age_s is not None and now_s - e.stamp_s > max_age_s:
                raise LookupError(f"transform {e.parent!r} -> {e.child!r} is {now_s - e.stamp_s:.3f} s old "
                                  f"(max {max_age_s:.3f} s): its publisher stopped or lags")
            oldest = e.stamp_s if oldest is None else min(oldest, e.stamp_s)
        T_common_source = np.eye(4)
        for e in up_source:  # from the source upwards: T_common_source = T_common_.. @ ... @ T_parent_source
            T_common_source = e.T @ T_common_source
        T_common_target = np.eye(4)
        for e in up_target:
            T_common_target = e.T @ T_common_target
        return invert_rigid(T_common_target) @ T_common_source, oldest

    def can_transform(self, target_frame: str, source_frame: str) -> bool:
        try:
            self.lookup(target_frame, source_frame)
            return True
        except LookupError:
            return False

    def frames(self) -> set[str]:
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def edges(self) -> list[Edge]:
        with self._lock:
            return list(self._edges.values())

    def clear(self, dynamic_only: bool = False) -> None:
        """Forget every edge (or only the dynamic ones, e.g. after sim time jumped backwards)."""
        with self._lock:
            self._edges = {c: e for c, e in self._edges.items() if dynamic_only and e.static}

    # -- internals (call with the lock held) --
    def _ancestors(self, frame: str) -> list[str]:
        out, seen = [], {frame}
        while frame in self._edges:
            frame = self._edges[frame].parent
            if frame in seen:  # cannot happen: set_transform refuses loops
                raise RuntimeError(f"TF tree loop at {frame!r}")
            seen.add(frame)
            out.append(frame)
        return out

    def _chain(self, frame: str) -> list[Edge]:
        """Edges from ``frame`` up to its root; LookupError when the frame was never seen."""
        if frame not in self._edges and not any(e.parent == frame for e in self._edges.values()):
            known = sorted(set(self._edges) | {e.parent for e in self._edges.values()})
            hint = " (TF frame ids have no leading '/')" if isinstance(frame, str) and frame.startswith("/") else ""
            raise LookupError(f"frame {frame!r} does not exist in the TF tree{hint} (known frames: {known})")
        chain = []
        while frame in self._edges:
            chain.append(self._edges[frame])
            frame = chain[-1].parent
        return chain
