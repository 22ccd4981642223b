import threading

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from types import SimpleNamespace as NS

from xwam_ros.robot.tf_tree import (TransformTree, apply_transforms, invert_rigid,
                                    matrix_to_translation_quaternion, transform_to_matrix)


def rigid(rotvec, t):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


# world -> base -> ee -> wrist_cam ; base -> front_cam ; world -> table
T_WB = rigid([0, 0, 0.3], [1.0, 0.0, 0.0])
T_BE = rigid([0.2, -0.4, 0.1], [0.3, 0.1, 0.5])
T_EW = rigid([0.0, 1.2, 0.0], [0.0, 0.05, 0.02])
T_BF = rigid([1.0, 0.2, -0.5], [0.8, -0.4, 0.6])
T_WT = rigid([0, 0, -1.0], [0.0, 2.0, 0.0])


@pytest.fixture
def tree():
    t = TransformTree()
    t.set_transform("world", "base", T_WB, 0.0, static=True)
    t.set_transform("base", "ee", T_BE, 10.0, static=False)
    t.set_transform("ee", "wrist_cam", T_EW, 0.0, static=True)
    t.set_transform("base", "front_cam", T_BF, 0.0, static=True)
    t.set_transform("world", "table", T_WT, 0.0, static=True)
    return t


def test_chains_down_up_and_across(tree):
    assert np.allclose(tree.lookup("world", "wrist_cam"), T_WB @ T_BE @ T_EW)
    # inverse direction: T_wristcam_world
    assert np.allclose(tree.lookup("wrist_cam", "world"), np.linalg.inv(T_WB @ T_BE @ T_EW))
    # across branches through the common ancestor 'base', and through the root
    assert np.allclose(tree.lookup("front_cam", "wrist_cam"), np.linalg.inv(T_BF) @ T_BE @ T_EW)
    assert np.allclose(tree.lookup("table", "front_cam"), np.linalg.inv(T_WT) @ T_WB @ T_BF)
    assert np.allclose(tree.lookup("ee", "ee"), np.eye(4))
    # a point in the camera frame lands where chaining by hand puts it
    p_cam = np.array([0.1, -0.2, 1.5, 1.0])
    assert np.allclose(tree.lookup("base", "wrist_cam") @ p_cam, T_BE @ T_EW @ p_cam)


def test_missing_frame_and_disconnected_trees_name_the_problem(tree):
    with pytest.raises(LookupError, match=r"'camera_9' does not exist"):
        tree.lookup("base", "camera_9")
    with pytest.raises(LookupError, match="leading '/'"):
        tree.lookup("/base", "ee")
    tree.set_transform("odom", "robot2", np.eye(4), 0.0, static=True)
    with pytest.raises(LookupError, match=r"not connected.*root 'world'.*root 'odom'"):
        tree.lookup("wrist_cam", "robot2")
    assert not tree.can_transform("wrist_cam", "robot2") and tree.can_transform("table", "ee")
    # linking the two roots connects them
    tree.set_transform("world", "odom", rigid([0, 0, 0], [5, 0, 0]), 0.0, static=True)
    assert np.allclose(tree.lookup("world", "robot2")[:3, 3], [5, 0, 0])


def test_updates_keep_the_newest_and_reparenting_moves_the_subtree(tree):
    new = rigid([0, 0, 1.0], [0.0, 0.0, 0.9])
    assert tree.set_transform("base", "ee", new, 11.0)
    assert np.allclose(tree.lookup("base", "ee"), new)
    assert not tree.set_transform("base", "ee", T_BE, 10.5)  # older than what we have: ignored and counted
    assert tree.ignored_old == 1 and np.allclose(tree.lookup("base", "ee"), new)
    # re-parent the wrist camera onto the table; its subtree follows
    tree.set_transform("table", "wrist_cam", T_EW, 12.0, static=True)
    assert np.allclose(tree.lookup("world", "wrist_cam"), T_WT @ T_EW)
    assert {e.child: e.parent for e in tree.edges()}["wrist_cam"] == "table"


def test_max_age_applies_to_dynamic_edges_only(tree):
    # ee (stamp 10) is dynamic; front_cam is reached through static edges only
    assert np.allclose(tree.lookup("base", "ee", max_age_s=0.5, now_s=10.4), T_BE)
    with pytest.raises(LookupError, match=r"'base' -> 'ee' is 0\.600 s old"):
        tree.lookup("front_cam", "wrist_cam", max_age_s=0.5, now_s=10.6)
    assert np.allclose(tree.lookup("world", "front_cam", max_age_s=0.5, now_s=1e6), T_WB @ T_BF)
    T, oldest = tree.lookup_stamped("world", "wrist_cam")
    assert oldest == 10.0
    assert tree.lookup_stamped("world", "front_cam")[1] is None
    with pytest.raises(ValueError, match="now_s"):
        tree.lookup("base", "ee", max_age_s=0.5)
    tree.clear(dynamic_only=True)
    assert not tree.can_transform("base", "ee") and tree.can_transform("base", "front_cam")


def test_bad_transforms_are_refused_with_names():
    t = TransformTree()
    t.set_transform("a", "b", np.eye(4), 0.0)
    with pytest.raises(ValueError, match="loop"):
        t.set_transform("b", "a", np.eye(4), 0.0)
    scaled = np.diag([2.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"'a' -> 'c' is not a rigid"):
        t.set_transform("a", "c", scaled, 0.0)
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="not a rigid"):
        t.set_transform("a", "c", mirror, 0.0)
    nan = np.eye(4)
    nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        t.set_transform("a", "c", nan, 0.0)
    with pytest.raises(ValueError, match="4x4"):
        t.set_transform("a", "c", np.eye(3), 0.0)
    with pytest.raises(ValueError, match="leading slash|starts with '/'"):
        t.set_transform("/a", "c", np.eye(4), 0.0)
    with pytest.raises(ValueError, match="itself"):
        t.set_transform("a", "a", np.eye(4), 0.0)
    assert t.frames() == {"a", "b"}


def _bag_transform(parent, child, T, sec, nanosec=0):
    """A /tf entry as rosbags deserialises it (plain attributes, no rclpy)."""
    t, q = matrix_to_translation_quaternion(T)
    return NS(header=NS(frame_id=parent, stamp=NS(sec=sec, nanosec=nanosec)), child_frame_id=child,
              transform=NS(translation=NS(x=t[0], y=t[1], z=t[2]), rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3])))


def test_transforms_from_bag_messages_without_rclpy():
    tree = TransformTree()
    bad = _bag_transform("base", "broken", np.eye(4), 5)
    bad.transform.rotation = NS(x=0.0, y=0.0, z=0.0, w=0.0)  # a zero quaternion must not become the identity
    nan = _bag_transform("base", "nan_cam", np.eye(4), 5)
    nan.transform.translation.x = float("nan")
    errors = apply_transforms(tree, [_bag_transform("base", "ee", T_BE, 5, 250_000_000), bad, nan,
                                     _bag_transform("ee", "wrist_cam", T_EW, 0)], static=False)
    assert len(errors) == 2 and "'base' -> 'broken'" in errors[0] and "not normalised" in errors[0]
    assert "non-finite" in errors[1]
    assert np.allclose(tree.lookup("base", "wrist_cam"), T_BE @ T_EW)
    assert {e.child: e.stamp_s for e in tree.edges()}["ee"] == 5.25
    assert tree.frames() == {"base", "ee", "wrist_cam"}


def test_matrix_quaternion_round_trip_and_order():
    for rv in ([0, 0, 0], [0.1, -2.0, 0.5], [np.pi, 0, 0], [0, 0, np.pi / 2]):
        T = rigid(rv, [0.1, 0.2, 0.3])
        t, q = matrix_to_translation_quaternion(T)
        want = Rotation.from_rotvec(rv).as_quat()  # scipy: x, y, z, w like geometry_msgs
        assert q[3] >= 0 and (np.allclose(q, want) or np.allclose(q, -want))
        back = transform_to_matrix(NS(translation=NS(x=t[0], y=t[1], z=t[2]),
                                      rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3])))
        assert np.allclose(back, T, atol=1e-12)


def test_invert_rigid_matches_matrix_inverse():
    T = rigid([0.3, -1.1, 2.0], [1, 2, 3])
    assert np.allclose(invert_rigid(T), np.linalg.inv(T))


def test_concurrent_writers_and_readers():
    # a writer keeps adding frames and moving 'ee' while readers look up through the root (which iterates the edges):
    # readers must never see a torn tree or a dict changing under them, and the newest stamp wins at the end
    tree = TransformTree()
    tree.set_transform("world", "base", np.eye(4), 0.0, static=True)
    tree.set_transform("base", "ee", np.eye(4), 0.0)
    errors = []

    def write():
        for i in range(3000):
            tree.set_transform("base", f"f{i}", np.eye(4), 0.0, static=True)
            tree.set_transform("base", "ee", rigid([0, 0, i * 1e-3], [i, 0, 0]), float(i))

    def read():
        try:
            for _ in range(3000):
                T, stamp = tree.lookup_stamped("world", "ee")
                if T[0, 3] != stamp:
                    errors.append((T[0, 3], stamp))
        except Exception as e:  # noqa: BLE001 - any exception is the failure we look for
            errors.append(repr(e))

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and tree.lookup_stamped("world", "ee")[1] == 2999.0 and len(tree.frames()) == 3003
