"""The demo's picture of the imagined future (ros/snapshot.py): framing and the per-step grid."""
import numpy as np

from xwam_ros.ros.snapshot import StepView, framing_pose, future_grid, splat


def table_and_cube(cube_xy=(0.0, 0.0), far_points=0):
    g = np.stack(np.meshgrid(np.linspace(-0.4, 0.4, 60), np.linspace(-0.4, 0.4, 60)), -1).reshape(-1, 2)
    table = np.c_[g, np.zeros(len(g))]
    c = np.stack(np.meshgrid(*[np.linspace(-0.025, 0.025, 8)] * 3), -1).reshape(-1, 3) + [*cube_xy, 0.03]
    far = np.full((far_points, 3), 30.0)  # a few far background points must not shrink the scene
    pts = np.concatenate([table, c, far])
    cols = np.concatenate([np.full((len(table), 3), 150), np.tile([220, 40, 40], (len(c), 1)),
                           np.full((far_points, 3), 255)]).astype(np.uint8)
    return pts, cols


def red_mask(img):
    return (img[..., 0] > 180) & (img[..., 1] < 90) & (img[..., 2] < 90)


def test_framing_puts_the_scene_in_the_middle_of_the_picture_despite_far_outliers():
    pts, cols = table_and_cube(far_points=40)
    img = splat(pts, cols, framing_pose(pts), (240, 320))
    ys, xs = np.nonzero(red_mask(img))
    assert len(xs) > 30  # the cube is visible and not a dot
    assert abs(xs.mean() - 160) < 40 and abs(ys.mean() - 120) < 40
    grey = np.all(img == 150, axis=-1)
    assert 0.1 < grey.mean() < 0.95  # the table fills a good part of the frame


def test_grid_has_a_column_per_step_with_the_cube_where_each_cloud_puts_it():
    steps = []
    for k, x in enumerate((0.0, 0.1, 0.2)):
        rgb = np.zeros((64, 64, 3), np.uint8)
        steps.append(StepView(t_s=0.2 * (k + 1), imagined=table_and_cube((x, 0.0)),
                              observed=table_and_cube((0.0, 0.0)) if k < 2 else None,
                              imagined_rgb=rgb, observed_rgb=rgb, imagined_depth=np.ones((64, 64)),
                              observed_depth=np.ones((64, 64))))
    img = future_grid(steps, "/tmp/xwam_test_grid.png", panel_hw=(120, 160))
    assert img.shape[1] == 3 * (160 + 4) and img.shape[0] == 120 * 2 + 60 * 2
    col = lambda k, row: img[row * 120:(row + 1) * 120, k * 164:k * 164 + 160]  # noqa: E731
    centroid = lambda panel: np.nonzero(red_mask(panel))[1].mean()  # noqa: E731
    # observed cube stays put; the imagined one moves along +x, which this camera shows as a horizontal shift
    assert abs(centroid(col(0, 0)) - centroid(col(1, 0))) < 2
    assert abs(centroid(col(2, 1)) - centroid(col(0, 1))) > 10
    assert not red_mask(col(2, 0)).any()  # step 3 not observed: a grey panel, no cloud


def test_real_and_imagined_depth_share_one_colour_scale():
    real = np.tile(np.linspace(0.5, 1.0, 64), (64, 1))
    step = StepView(t_s=0.2, imagined=table_and_cube(), observed=table_and_cube(), imagined_rgb=np.zeros((64, 64, 3),
                    np.uint8), observed_rgb=np.zeros((64, 64, 3), np.uint8), imagined_depth=real * 0.5,
                    observed_depth=real)
    img = future_grid([step], "/tmp/xwam_test_depth.png", panel_hw=(120, 160))
    strip = img[120 * 2 + 60:, :160]
    left, right = strip[:, :80].astype(int), strip[:, 80:].astype(int)
    # half the depth must not look the same (it would on per-image scales: the ramp's shape is identical)
    assert np.abs(left[30:, 10:70] - right[30:, 10:70]).mean() > 20
