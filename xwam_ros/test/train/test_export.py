"""Exported checkpoints: no optimizer state, a float16 VAE that still encodes like the original, a model card."""
import json

import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.policy import XWAMPolicy
from xwam_ros.train.export import export_policy


def test_export_is_small_and_equivalent(tmp_path):
    cfg = get_preset("tiny")
    src = tmp_path / "src"
    XWAMPolicy.from_config(cfg, seed=3).save_pretrained(src)
    (src / "trainer_state.pt").write_bytes(b"optimizer")
    dst = export_policy(src, tmp_path / "dst", {"made_by": "test"})
    assert not (dst / "trainer_state.pt").exists()
    assert json.loads((dst / "MODEL_CARD.json").read_text())["made_by"] == "test"
    a, b = XWAMPolicy.from_pretrained(src), XWAMPolicy.from_pretrained(dst)
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*.safetensors"))  # noqa: E731
    assert size(dst) < 0.7 * size(src)
    x = torch.rand(1, 3, 3, 9, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    za, zb = a.codec.encode(x), b.codec.encode(x)
    assert (za - zb).abs().max() < 5e-3 * za.abs().mean().clamp_min(1e-3)
    sa, sb = a.transformer.state_dict(), b.transformer.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
