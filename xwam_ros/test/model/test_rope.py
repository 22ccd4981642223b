import math

import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.rope import SequenceLayout, apply_rope, rope_angles, rope_split, rope_tables, token_positions


def test_split_of_the_head_dim():
    assert rope_split(128) == (44, 42, 42)  # Wan2.2-TI2V-5B
    assert rope_split(64) == (24, 20, 20)
    assert sum(rope_split(32)) == 32


def test_positions_of_video_actions_and_states():
    cfg = get_preset("xwam-5b")
    layout = SequenceLayout.from_config(cfg)
    pos = token_positions(layout)
    assert pos.shape == (761, 3) and pos.dtype == torch.float64
    video = pos[:720].view(3, 3, 8, 10, 3)  # frame, view, h, w
    assert torch.equal(video[:, 0], video[:, 1]) and torch.equal(video[:, 1], video[:, 2])  # same for every view
    assert video[2, 1, 5, 7].tolist() == [2.0, 5.0, 7.0]
    act, st = pos[720:752], pos[752:]
    assert torch.equal(act[:, 0], torch.arange(32, dtype=torch.float64) / 16) and act[:, 1:].abs().sum() == 0
    assert torch.equal(st[:, 0], torch.arange(9, dtype=torch.float64) / 4) and st[:, 1:].abs().sum() == 0


def test_angles_follow_the_formula_per_axis():
    d = 64
    t_part, h_part, _ = rope_split(d)
    ang = rope_angles(torch.tensor([[1.5, 2.0, 3.0]], dtype=torch.float64), d)
    assert ang.shape == (1, d // 2)
    assert math.isclose(ang[0, 1].item(), 1.5 * 10000 ** (-2 / t_part), rel_tol=1e-12)
    assert math.isclose(ang[0, t_part // 2 + 2].item(), 2.0 * 10000 ** (-4 / h_part), rel_tol=1e-12)
    assert math.isclose(ang[0, t_part // 2 + h_part // 2].item(), 3.0, rel_tol=1e-12)  # w part, frequency 1


def test_rotation_is_complex_multiplication_and_tables_are_cached():
    layout = SequenceLayout(2, 2, 2, 3, 5, 3, 4)
    cos, sin = rope_tables(layout, 24, 10000.0, "cpu")
    assert rope_tables(layout, 24, 10000.0, "cpu")[0] is cos
    x = torch.randn(2, layout.seq_len, 3, 24, dtype=torch.float64)
    got = apply_rope(x, cos.double(), sin.double())
    xc = torch.view_as_complex(x.view(2, layout.seq_len, 3, 12, 2))
    rot = torch.polar(torch.ones_like(cos.double()), torch.atan2(sin.double(), cos.double()))
    want = torch.view_as_real(xc * rot[None, :, None]).flatten(-2)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    assert torch.allclose(got.norm(dim=-1), x.norm(dim=-1))
