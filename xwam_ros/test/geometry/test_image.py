"""The one resize used by the live node, replay and training clips."""
import numpy as np
import pytest

from xwam_ros.geometry.image import resize_rgbd


def test_resize_scales_K_and_keeps_depth_values():
    rgb = np.zeros((480, 640, 3), np.uint8)
    depth = np.full((480, 640), 1.5, np.float32)
    K = np.array([[500.0, 0, 319.5], [0, 500, 239.5], [0, 0, 1]])
    r, d, K2 = resize_rgbd(rgb, depth, K, (64, 80))
    assert r.shape == (64, 80, 3) and d.shape == (64, 80) and np.all(d == 1.5)
    assert np.isclose(K2[0, 0], 500 * 80 / 640) and np.isclose(K2[0, 2], 39.5)
    with pytest.raises(ValueError, match="sizes differ"):
        resize_rgbd(rgb, depth[:10], K, (64, 80))


def test_colour_shrink_is_an_area_average_through_a_2x_pyramid():
    """One exact 2x step equals OpenCV's area resize; a large shrink (640x480 -> 64x64, a camera to the model) stays
    within a few grey levels of the direct area resize on a camera-like image, and growing is linear."""
    import cv2

    from xwam_ros.geometry.image import resize_colour
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert np.array_equal(resize_colour(img, (64, 64)), cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA))
    yy, xx = np.mgrid[0:480, 0:640]
    smooth = np.stack([(xx * 255 // 639), (yy * 255 // 479), ((xx + yy) % 256)], -1).astype(np.uint8)
    camera = np.clip(smooth.astype(int) + rng.integers(-8, 9, smooth.shape), 0, 255).astype(np.uint8)
    got = resize_colour(camera, (64, 64))
    direct = cv2.resize(camera, (64, 64), interpolation=cv2.INTER_AREA)
    assert got.shape == (64, 64, 3) and np.abs(got.astype(int) - direct).mean() < 1.0
    assert np.abs(got.astype(int) - direct)[1:-1, 1:-1, :2].max() <= 3  # the two ramps: a box filter's values
    assert resize_colour(camera, (480, 640)) is camera
    assert resize_colour(img[:32, :32], (64, 64)).shape == (64, 64, 3)
