"""Message builders shared by the policy node's action path and its imagination publisher."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from ..geometry.camera import ee_pose_to_matrix
from ..geometry.fusion import fuse_views
from ..model.layout import STATE_PER_ARM, StateLayout
from .pointcloud2 import make_xyzrgb_cloud


def time_msg(t_s: float) -> Time:
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def pose_msg(T: np.ndarray) -> Pose:
    from transforms3d.quaternions import mat2quat
    p = Pose()
    p.position.x, p.position.y, p.position.z = (float(x) for x in T[:3, 3])
    q = mat2quat(T[:3, :3])
    p.orientation.w, p.orientation.x, p.orientation.y, p.orientation.z = (float(x) for x in q)
    return p


def ee_pose_msg(row: np.ndarray, arm: int = 0) -> Pose:
    """Arm ``arm``'s pose in a state row (StateLayout: 8 values per arm), or a bare pose [x y z qw qx qy qz] -> Pose.

    The live robot is one arm: a two-arm model's states (its arm 0 is the robot) give arm 0 by default."""
    row = np.asarray(row)
    if row.shape[-1] == STATE_PER_ARM - 1:  # a bare pose: one arm without its gripper
        row = np.append(row, 0.0)
    layout = StateLayout.from_state_dim(row.shape[-1], "the EE state row")
    return pose_msg(ee_pose_to_matrix(layout.position(row, arm), layout.quaternion(row, arm)))


def fused_cloud_msg(depths, rgbs, Ks, extrinsics, stamp_s: float, frame_id: str, near, far,
                    voxel: float, stride: int) -> PointCloud2:
    """One x y z rgb cloud of every view whose extrinsic is known (None = skip that view); near/far per view."""
    pts, cols = fuse_views(depths, rgbs, Ks, extrinsics, min_depth=near, max_depth=far, voxel=voxel or None,
                           stride=stride)
    return make_xyzrgb_cloud(pts, cols, Header(stamp=time_msg(stamp_s), frame_id=frame_id), PointCloud2, PointField)


def ee_path_markers(states: np.ndarray, stamp_s: float, frame_id: str, arm: int = 0) -> MarkerArray:
    """Arm ``arm``'s path through predicted states [T, 8 x arms] (StateLayout)."""
    path = StateLayout.from_state_dim(np.shape(states)[-1], "the predicted state size").position(states, arm)
    h = Header(stamp=time_msg(stamp_s), frame_id=frame_id)
    line = Marker(header=h, ns="xwam_ee_path", id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    line.scale.x = 0.005
    line.color.r, line.color.g, line.color.b, line.color.a = 1.0, 0.6, 0.0, 1.0
    line.pose.orientation.w = 1.0
    line.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in path]
    dots = Marker(header=h, ns="xwam_ee_path", id=1, type=Marker.SPHERE_LIST, action=Marker.ADD)
    dots.scale.x = dots.scale.y = dots.scale.z = 0.015
    dots.color = line.color
    dots.pose.orientation.w = 1.0
    dots.points = line.points
    return MarkerArray(markers=[line, dots])
