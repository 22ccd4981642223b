import json

import numpy as np
import pytest

from xwam_ros.model.normalize import Normalizer


def _data(seed=0):
    rng = np.random.default_rng(seed)
    actions = rng.normal(0.2, [1.0, 0.1, 0.0], size=(5000, 3))  # last dim constant (zero width)
    states = np.concatenate([rng.uniform(-3, 5, (5000, 2)), rng.normal(0, 1, (5000, 4))], axis=1)
    return actions, states


def test_round_trip_and_json():
    a, s = _data()
    n = Normalizer.fit(a, s, passthrough_state_dims=(2, 3, 4, 5))
    n2 = Normalizer.from_dict(json.loads(json.dumps(n.to_dict())))
    assert np.allclose(n2.denormalize_actions(n2.normalize_actions(a)), a, atol=1e-5)
    assert np.allclose(n2.denormalize_states(n2.normalize_states(s)), s, atol=1e-4)


def test_actions_are_symmetric_scale_only():
    a, s = _data()
    n = Normalizer.fit(a, s)
    assert np.all(n.action_low == -n.action_high)
    assert np.all(n.normalize_actions(np.zeros(3)) == 0)
    na = n.normalize_actions(a)
    assert np.quantile(np.abs(na[:, 0]), 0.98) <= 1.0 + 1e-6


def test_states_map_quantiles_to_unit_range_and_passthrough_untouched():
    a, s = _data()
    n = Normalizer.fit(a, s, passthrough_state_dims=(3,))
    ns = n.normalize_states(s)
    assert np.allclose(np.quantile(ns[:, 0], [0.01, 0.99]), [-1, 1], atol=1e-3)
    assert np.allclose(ns[:, 3], s[:, 3], atol=1e-6)


def test_zero_width_dim_is_finite():
    a, s = _data()
    n = Normalizer.fit(a, s)
    assert np.all(np.isfinite(n.normalize_actions(a)))


def test_bad_dicts():
    with pytest.raises(ValueError, match="missing key"):
        Normalizer.from_dict({"action": {"low": [1]}})
    with pytest.raises(ValueError, match="symmetric"):
        Normalizer(np.array([-1.0]), np.array([2.0]), np.zeros(1), np.ones(1))
