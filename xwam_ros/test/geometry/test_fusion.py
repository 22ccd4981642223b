import numpy as np
import pytest
from transforms3d.euler import euler2quat

from xwam_ros.geometry.camera import (ee_pose_to_matrix, intrinsics_from_fovy, look_at, project, scale_intrinsics,
                                      transform_points, unproject, wrist_camera_pose)
from xwam_ros.geometry.depth import invalid_to_far, inverse_depth_to_metric, metric_to_inverse_depth
from xwam_ros.geometry.fusion import fuse_views, voxel_downsample

H, W = 48, 64


def render_plane_depth(K, T_base_cam, z_plane):
    """Analytic depth of the horizontal plane z = z_plane (base frame) seen by a camera."""
    from xwam_ros.geometry.camera import pixel_rays
    rays = pixel_rays(K, H, W).reshape(-1, 3)  # optical frame, z = 1
    R, t = T_base_cam[:3, :3], T_base_cam[:3, 3]
    dirs = rays @ R.T
    s = (z_plane - t[2]) / dirs[:, 2]  # ray parameter = depth because optical z of the ray is 1
    return np.where(s > 0, s, np.nan).reshape(H, W)


def test_three_views_fuse_onto_the_known_plane_submillimetre():
    K = intrinsics_from_fovy(60, H, W)
    cams = [look_at([1.0, 0.0, 0.8], [0.0, 0.0, 0.0]), look_at([0.0, -1.0, 0.9], [0.1, 0.0, 0.0])]
    # wrist camera from an EE pose x hand-eye, as X-WAM does for its predicted states
    T_base_ee = ee_pose_to_matrix([0.1, 0.05, 0.5], euler2quat(np.pi, 0.0, 0.3))
    T_ee_cam = np.eye(4)
    T_ee_cam[:3, 3] = [0.0, 0.05, 0.02]
    cams.append(wrist_camera_pose(T_base_ee, T_ee_cam))
    depths = np.stack([render_plane_depth(K, T, 0.02) for T in cams])
    rgbs = np.zeros((3, H, W, 3), np.uint8)
    rgbs[1, ..., 1] = 255
    pts, cols = fuse_views(depths, rgbs, [K] * 3, cams, min_depth=0.01, max_depth=5)
    assert len(pts) > 0.9 * 3 * H * W
    assert np.max(np.abs(pts[:, 2] - 0.02)) < 1e-3 * 1e-1  # well under a millimetre (float32)
    assert (cols[:, 1] == 255).sum() == np.isfinite(depths[1]).sum()


def test_unproject_project_round_trip():
    K = intrinsics_from_fovy(45, H, W)
    depth = np.random.default_rng(0).uniform(0.3, 2.0, (H, W))
    pts = unproject(depth, K)
    uv, z = project(pts, K)
    v, u = np.mgrid[0:H, 0:W]
    assert np.allclose(uv[:, 0], u.ravel()) and np.allclose(uv[:, 1], v.ravel()) and np.allclose(z, depth.ravel())


def test_transform_and_scale_intrinsics():
    T = look_at([0, 0, 1], [0, 0, 0], up=(0, 1, 0))
    assert np.allclose(transform_points(T, np.array([[0, 0, 1.0]])), [[0, 0, 0]], atol=1e-12)
    K = intrinsics_from_fovy(60, 480, 640)
    K2 = scale_intrinsics(K, (480, 640), (240, 320))
    assert np.isclose(K2[0, 0], K[0, 0] / 2) and np.isclose(K2[0, 2], (640 / 2 - 1) / 2)


def test_invalid_depth_and_range_filter():
    K = intrinsics_from_fovy(60, H, W)
    d = np.full((H, W), 1.0)
    d[0, :] = np.nan
    d[1, :] = 0.0
    d[2, :] = 9.0
    pts, _ = fuse_views([d], [np.zeros((H, W, 3), np.uint8)], [K], [np.eye(4)], 0.1, 5.0)
    assert len(pts) == (H - 3) * W


def test_voxel_downsample_means():
    pts = np.array([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03], [0.51, 0.5, 0.5]], np.float32)
    cols = np.array([[0, 0, 0], [100, 100, 100], [7, 7, 7]], np.uint8)
    p, c = voxel_downsample(pts, cols, 0.1)
    order = np.argsort(p[:, 0])
    assert np.allclose(p[order[0]], [0.02, 0.02, 0.02]) and list(c[order[0]]) == [50, 50, 50]
    with pytest.raises(ValueError):
        voxel_downsample(pts, cols, 0.0)


def test_inverse_depth_round_trip_and_ends():
    d = np.linspace(0.2, 3.0, 50)
    x = metric_to_inverse_depth(d, 0.2, 3.0)
    assert np.isclose(x[0], 1.0) and np.isclose(x[-1], -1.0)
    assert np.allclose(inverse_depth_to_metric(x, 0.2, 3.0), d, rtol=1e-5)
    assert metric_to_inverse_depth(np.array([np.nan, -1.0]), 0.2, 3.0).tolist() == [-1.0, -1.0]
    with pytest.raises(ValueError, match="near"):
        metric_to_inverse_depth(d, 3.0, 0.2)


@pytest.mark.parametrize("stride", [2, 3])
def test_cloud_stride_keeps_every_kept_pixel_where_the_full_cloud_puts_it(stride):
    """``stride`` keeps pixels (0, s, 2s, ...) of the full image, so each kept point must be the full-resolution
    cloud's point for that pixel: a principal point off by half a subsampled pixel moves every point sideways
    (about 1 cm at 1 m for this camera) and fails here."""
    K = intrinsics_from_fovy(60, H, W)
    T = look_at([0.6, -0.4, 0.9], [0.05, 0.0, 0.0])
    depth = render_plane_depth(K, T, 0.02)
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    full, full_rgb = fuse_views([depth], [rgb], [K], [T], min_depth=0.01, max_depth=5)
    sub, sub_rgb = fuse_views([depth], [rgb], [K], [T], min_depth=0.01, max_depth=5, stride=stride)
    keep = np.zeros((H, W), bool)
    keep[::stride, ::stride] = True
    idx = keep[np.isfinite(depth)]  # the full cloud holds the finite pixels in row-major order
    assert len(sub) == idx.sum() > 0
    assert np.array_equal(sub_rgb, full_rgb[idx])
    assert np.max(np.abs(sub - full[idx])) < 1e-5  # float32 rounding only (points ~1 m away)


def test_per_view_depth_ranges_encode_each_view_on_its_own_range():
    """A wrist view (cm) and a static view (m) each use the whole code: row v equals the scalar call on range v."""
    d = np.stack([np.linspace(0.03, 0.5, 20), np.linspace(0.4, 3.0, 20)])
    near, far = np.array([0.03, 0.4]), np.array([0.5, 3.0])
    x = metric_to_inverse_depth(d, near, far)
    for v in range(2):
        assert np.array_equal(x[v], metric_to_inverse_depth(d[v], near[v], far[v]))
        assert np.isclose(x[v, 0], 1.0) and np.isclose(x[v, -1], -1.0)
    assert np.allclose(inverse_depth_to_metric(x, near, far), d, rtol=1e-5)
    with pytest.raises(ValueError, match="2 views"):
        metric_to_inverse_depth(d, [0.1, 0.2, 0.3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="near"):
        metric_to_inverse_depth(d, near, [0.5, 0.2])
    filled = invalid_to_far(np.array([[np.nan, 0.2], [np.nan, 1.0]]), far)
    assert filled.tolist() == [[np.float32(0.5), np.float32(0.2)], [3.0, 1.0]]


def test_fusion_keeps_each_view_within_its_own_range_and_skips_unknown_poses():
    K = np.array([[50.0, 0, 8], [0, 50.0, 8], [0, 0, 1]])
    depth = np.full((3, 16, 16), 1.0, np.float32)
    rgb = np.zeros((3, 16, 16, 3), np.uint8)
    poses = [np.eye(4), np.eye(4), None]  # the third view's TF is not known yet
    pts, _ = fuse_views(depth, rgb, [K] * 3, poses, min_depth=[0.5, 0.03, 0.1], max_depth=[3.0, 0.5, 3.0])
    assert len(pts) == 256  # view 0 keeps its 1 m pixels, view 1's range ends at 0.5 m, view 2 has no pose
    with pytest.raises(ValueError):
        fuse_views(depth, rgb, [K] * 3, poses, min_depth=[0.5, 0.03, 0.1, 0.1])
