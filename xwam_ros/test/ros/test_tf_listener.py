import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from scipy.spatial.transform import Rotation
from tf2_msgs.msg import TFMessage

from conftest import spin_until
from xwam_ros.robot.tf_tree import TransformTree, transform_to_matrix
from xwam_ros.ros.tf_listener import TF_QOS, TF_STATIC_QOS, TfListener, make_transform_stamped


def rigid(rotvec, t):
    T = np.eye(4)
    T[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    T[:3, 3] = t
    return T


T_BASE_CAM = rigid([-1.9, 0.1, 0.4], [1.0, 0.2, 0.8])  # a static camera's optical frame
T_BASE_EE = rigid([3.0, 0.0, 0.2], [0.4, 0.0, 0.3])
T_EE_WRIST = rigid([0.0, 0.0, -0.785], [0.0, 0.06, 0.03])


def test_message_matrix_round_trip_and_bad_quaternions():
    ts = make_transform_stamped("base", "cam", T_BASE_CAM, Time(sec=3, nanosec=5))
    assert ts.header.frame_id == "base" and ts.child_frame_id == "cam"
    assert np.allclose(transform_to_matrix(ts.transform), T_BASE_CAM, atol=1e-12)
    # the quaternion geometry_msgs carries is x, y, z, w (scipy uses the same order), with w >= 0
    q = [ts.transform.rotation.x, ts.transform.rotation.y, ts.transform.rotation.z, ts.transform.rotation.w]
    want = Rotation.from_matrix(T_BASE_CAM[:3, :3]).as_quat()
    assert np.allclose(q, want * np.sign(want[3]), atol=1e-12) and q[3] >= 0
    # quaternion order is x, y, z, w as in geometry_msgs: a 90 degree turn about z
    ts.transform.rotation.x, ts.transform.rotation.y = 0.0, 0.0
    ts.transform.rotation.z, ts.transform.rotation.w = np.sin(np.pi / 4), np.cos(np.pi / 4)
    assert np.allclose(transform_to_matrix(ts.transform)[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    ts.transform.rotation.w = 0.0
    ts.transform.rotation.z = 0.0
    with pytest.raises(ValueError, match="not normalised"):
        transform_to_matrix(ts.transform)
    ts.transform.rotation.w, ts.transform.translation.x = 1.0, float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        transform_to_matrix(ts.transform)


def test_static_before_listener_and_dynamic_reach_the_tree(ros_context):
    """/tf_static is latched (transient local) and published BEFORE the listener exists; /tf streams afterwards."""
    pub_node = Node("tf_pub", context=ros_context)
    listen_node = Node("tf_reader", context=ros_context)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(pub_node)
    try:
        static_pub = pub_node.create_publisher(TFMessage, "/tf_static", TF_STATIC_QOS)
        tf_pub = pub_node.create_publisher(TFMessage, "/tf", TF_QOS)
        stamp = pub_node.get_clock().now().to_msg()
        static_pub.publish(TFMessage(transforms=[make_transform_stamped("base", "front_cam", T_BASE_CAM, stamp),
                                                 make_transform_stamped("ee", "wrist_cam", T_EE_WRIST, stamp)]))

        tree = TransformTree()
        listener = TfListener(listen_node, tree)
        ex.add_node(listen_node)
        assert spin_until(ex, lambda: tree.can_transform("base", "front_cam"), timeout=10), \
            "the latched /tf_static never reached a listener started after it was published"
        assert np.allclose(tree.lookup("base", "front_cam"), T_BASE_CAM)
        assert not tree.can_transform("base", "wrist_cam")  # ee is not linked yet

        # the robot's /tf streams base -> ee; a bad transform on the same message is refused, not raised
        bad = make_transform_stamped("base", "broken", np.eye(4), stamp)
        bad.transform.rotation.w = 3.0
        for i in range(1, 4):
            moved = T_BASE_EE.copy()
            moved[0, 3] += 0.01 * i

            def published_and_arrived():  # re-publish until it arrives: discovery of /tf may still be under way
                nonlocal t
                t = pub_node.get_clock().now().to_msg()
                tf_pub.publish(TFMessage(transforms=[make_transform_stamped("base", "ee", moved, t), bad]))
                return tree.can_transform("front_cam", "wrist_cam") and \
                    np.isclose(tree.lookup("base", "ee")[0, 3], moved[0, 3])

            t = None
            assert spin_until(ex, published_and_arrived, timeout=10, step=0.05)
        want = np.linalg.inv(T_BASE_CAM) @ moved @ T_EE_WRIST
        assert np.allclose(tree.lookup("front_cam", "wrist_cam"), want, atol=1e-9)
        edges = {e.child: e for e in tree.edges()}
        assert edges["front_cam"].static and not edges["ee"].static
        assert edges["ee"].stamp_s <= t.sec + t.nanosec * 1e-9 and edges["ee"].stamp_s > stamp.sec
        assert listener.stats.rejected >= 1 and "'base' -> 'broken'" in listener.stats.last_error
        assert "broken" not in tree.frames()
        listener.destroy()
    finally:
        ex.shutdown()
        pub_node.destroy_node()
        listen_node.destroy_node()
