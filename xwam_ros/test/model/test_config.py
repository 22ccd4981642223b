import json

import pytest

from xwam_ros.model.config import XWAMConfig, get_preset


def test_presets_validate_and_have_the_paper_sizes():
    big = get_preset("xwam-5b")
    assert (big.dim, big.num_layers, big.num_heads, big.ffn_dim, big.latent_channels) == (3072, 30, 24, 14336, 48)
    assert (big.num_depth_layers, big.num_views, big.action_dim, big.state_dim) == (10, 3, 14, 16)
    assert (big.num_actions, big.num_states, big.num_frames, big.height, big.width) == (32, 9, 9, 256, 320)
    assert (big.latent_frames, big.latent_h, big.latent_w, big.head_dim) == (3, 16, 20, 128)
    assert (big.text_dim, big.text_len) == (4096, 512)
    assert big.action_hz == pytest.approx(20.0) and big.video_fps == pytest.approx(5.0)  # RoboCasa: 20 Hz, 5 fps
    mid, tiny = get_preset("mid"), get_preset("tiny")
    assert (mid.dim, mid.num_layers, mid.num_heads, mid.height, mid.width) == (512, 8, 8, 128, 160)
    assert tiny.dim <= 96 and tiny.num_layers == 4 and tiny.num_views == 3
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("huge")


def test_overrides_change_views_and_sizes():
    c = get_preset("tiny", view_names=("a", "b"), view_kinds=("static", "wrist"), height=96)
    assert c.num_views == 2 and c.latent_h == 6 and c.seq_len == c.latent_frames * 2 * 3 * 2 + 32 + 9


@pytest.mark.parametrize("change, field", [
    (dict(num_heads=3), "num_heads"),  # 64 not divisible by 3
    (dict(dim=36, num_heads=4), "num_heads"),  # head dim 9 cannot be split into rotation pairs
    (dict(height=72), "height"),
    (dict(width=48), "width"),
    (dict(num_frames=8, num_states=8, num_actions=28), "num_frames"),
    (dict(num_actions=30), "num_actions"),
    (dict(num_states=5), "num_states"),
    (dict(num_depth_layers=5), "num_depth_layers"),
    (dict(view_kinds=("static", "wrist")), "view_kinds"),
    (dict(view_kinds=("static", "static", "fisheye")), "view_kinds"),
    (dict(view_names=("a", "a", "b")), "view_names"),
    (dict(depth_near=2.0, depth_far=1.0), "depth_near"),
    (dict(depth_ranges=((0.1, 1.0),)), "depth_ranges"),  # one pair for three views
    (dict(depth_ranges=((0.1, 1.0), (1.0, 0.5), (0.03, 0.4))), "depth_ranges"),
    (dict(depth_ranges=((0.1, 1.0), (0.5, "far"), (0.03, 0.4))), "depth_ranges"),
    (dict(action_steps=60), "action_steps"),
    (dict(dim=0), "dim"),
    (dict(patch_size=(2, 2, 2)), "patch_size"),
    (dict(shift=0.0), "shift"),
    (dict(cfg_scale=-1.0), "cfg_scale"),
    (dict(action_dt=0.0), "action_dt"),
    (dict(eps=0.0), "eps"),
    (dict(vae_stride=(4, 16)), "vae_stride"),
])
def test_validate_names_the_bad_field(change, field):
    with pytest.raises(ValueError, match=rf"XWAMConfig\.{field}\b"):
        get_preset("tiny", **change)


def test_depth_bounds_per_view_or_shared():
    c = get_preset("tiny", depth_near=0.2, depth_far=2.0)
    assert [b.tolist() for b in c.depth_bounds()] == [[0.2] * 3, [2.0] * 3]
    c = get_preset("tiny", depth_ranges=[[0.4, 3], [0.5, 4], [0.03, 0.5]])  # lists, as YAML gives them
    assert c.depth_ranges == ((0.4, 3.0), (0.5, 4.0), (0.03, 0.5))
    assert [b.tolist() for b in c.depth_bounds()] == [[0.4, 0.5, 0.03], [3.0, 4.0, 0.5]]


def test_dict_roundtrip_is_json_and_rejects_unknown_fields():
    c = get_preset("tiny", extras={"robot": "panda"}, depth_ranges=((0.4, 3.0), (0.5, 4.0), (0.03, 0.5)))
    d = json.loads(json.dumps(c.to_dict()))
    assert XWAMConfig.from_dict(d) == c
    with pytest.raises(ValueError, match="unknown fields"):
        XWAMConfig.from_dict({**d, "bogus": 1})
    bad = {**d, "num_actions": 3}
    with pytest.raises(ValueError, match="num_actions"):
        XWAMConfig.from_dict(bad)


def test_former_names_are_read_once_and_never_twice():
    d = get_preset("tiny").to_dict()
    d["proprio_dim"] = d.pop("state_dim")  # a checkpoint saved before the rename / the official config's names
    d["action_num"] = d.pop("actions_per_frame")
    cfg = XWAMConfig.from_dict(d)
    assert (cfg.state_dim, cfg.actions_per_frame) == (get_preset("tiny").state_dim, 4)
    with pytest.raises(ValueError, match="both 'proprio_dim' and its new name 'state_dim'"):
        XWAMConfig.from_dict({**d, "state_dim": 3})
