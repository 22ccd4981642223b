"""`xwam-ros info`: the meta-device count agrees with an independent closed-form count of the transformer's work."""
import pytest
import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.footprint import info_main, measure
from xwam_ros.model.transformer import XWAMTransformer


def closed_form_call_flop(cfg) -> float:
    """Matmul FLOPs of one denoising call (text K/V cached, no depth), written from the architecture, not the code:
    per block self-attention projections, attention over L tokens, cross-attention over the text, the FFN; per token
    the timestep embedding and its 6-way modulation projection."""
    L, D, F, Lt, N = cfg.seq_len, cfg.dim, cfg.ffn_dim, cfg.text_len, cfg.num_layers
    block = 8 * D * D * L + 4 * L * L * D + 4 * D * D * L + 4 * L * Lt * D + 4 * D * F * L
    per_token_time = 2 * L * (cfg.freq_dim * D + D * D) + 12 * D * D * L
    return (N * block + per_token_time) / 1e12


@pytest.mark.parametrize("preset", ["tiny", pytest.param("mid", marks=pytest.mark.slow)])  # mid: ~6 s
def test_meta_count_matches_a_real_instance_and_the_closed_form(preset):
    fp = measure(preset)
    cfg = get_preset(preset)
    real = XWAMTransformer(cfg)
    assert fp.params == sum(p.numel() for p in real.parameters())
    assert fp.depth_branch_params == sum(p.numel() for n, p in real.named_parameters() if n.startswith("extra_"))
    # the remainder (patch embedding, heads, action/state MLPs) is small next to the blocks
    assert fp.call_tflop == pytest.approx(closed_form_call_flop(cfg), rel=0.05)
    assert fp.depth_call_tflop > fp.call_tflop  # the depth branch adds M blocks when asked for, never otherwise
    assert fp.weight_bytes["bfloat16"] == 2 * fp.params


@pytest.mark.slow
def test_the_paper_model_at_761_tokens(capsys):
    fp = measure("xwam-5b")
    assert fp.tokens == 761
    assert 6.0e9 < fp.params < 7.0e9  # 5B Wan2.2 main branch + a copy of its last 10 blocks
    assert fp.call_tflop == pytest.approx(closed_form_call_flop(get_preset("xwam-5b")), rel=0.01)
    ideal = fp.ideal_latency_s(1000.0, 10, 50)
    assert ideal["action_s"] == pytest.approx((fp.text_tflop + 10 * fp.call_tflop) / 1000.0)
    assert info_main(["--preset", "xwam-5b"]) == 0
    assert "761" in capsys.readouterr().out
