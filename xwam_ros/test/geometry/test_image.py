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
