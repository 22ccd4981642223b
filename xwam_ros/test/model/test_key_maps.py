"""The VAE and T5 key maps against the real module key sets, at the released models' sizes.

Source side: the parameter names and shapes of the official Wan2.2 VAE (``WanVAE_``, z 48, dim 160) and UMT5-XXL
encoder (``T5Encoder``, 24 layers) modules, as the official X-WAM code builds them (test/model/data/README.md).
Target side: diffusers' AutoencoderKLWan and transformers' UMT5EncoderModel, instantiated at the same sizes on the
meta device (no memory, no download). A map is right when it sends the one set exactly onto the other.
"""
import json
from pathlib import Path

import torch

from xwam_ros.model.text import convert_wan_umt5_keys, umt5_config_from_original
from xwam_ros.model.vae import WAN22_VAE_CONFIG, convert_wan22_vae_keys

DATA = Path(__file__).parent / "data"


def _official(name: str) -> dict:
    shapes = json.loads((DATA / f"official_{name}_keys.json").read_text())
    return {k: torch.empty(s, device="meta") for k, s in shapes.items()}


def _shapes(sd: dict) -> dict:
    return {k: tuple(v.shape) for k, v in sd.items()}


def test_wan22_vae_map_lands_on_diffusers_autoencoder_keys():
    from diffusers import AutoencoderKLWan

    with torch.device("meta"):
        target = AutoencoderKLWan(**WAN22_VAE_CONFIG).state_dict()
    official = _official("wan22_vae")
    mapped = convert_wan22_vae_keys(official)
    assert len(mapped) == len(official), "two original keys map to one name"
    assert sorted(set(mapped) - set(target))[:5] == [] and sorted(set(target) - set(mapped))[:5] == []
    assert _shapes(mapped) == _shapes(target)


def test_umt5_map_lands_on_transformers_encoder_keys():
    from transformers import UMT5Config, UMT5EncoderModel

    official = _official("umt5_xxl_encoder")
    # google/umt5-xxl's published encoder configuration
    real = UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                      relative_attention_num_buckets=32, relative_attention_max_distance=128,
                      feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    derived = umt5_config_from_original(official, UMT5Config)
    for f in ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_heads", "relative_attention_num_buckets",
              "relative_attention_max_distance", "feed_forward_proj", "tie_word_embeddings"):
        assert getattr(derived, f) == getattr(real, f), f
    with torch.device("meta"):
        target = UMT5EncoderModel(real).state_dict()
    mapped = convert_wan_umt5_keys(official)
    assert sorted(set(mapped) - set(target))[:5] == [] and sorted(set(target) - set(mapped))[:5] == []
    assert _shapes(mapped) == _shapes(target)


def test_umt5_map_is_semantically_right_on_the_official_encoder_output():
    """Key sets cannot see a swap of same-shaped tensors (gate vs fc1); outputs can. A tiny official T5Encoder with
    order-1 random weights (official_tiny_t5.safetensors) against transformers' UMT5EncoderModel with our map."""
    from safetensors.torch import load_file
    from transformers import UMT5Config, UMT5EncoderModel

    d = load_file(str(DATA / "official_tiny_t5.safetensors"))
    original = {k[len("weights."):]: v for k, v in d.items() if k.startswith("weights.")}
    model = UMT5EncoderModel(umt5_config_from_original(original, UMT5Config)).eval()
    model.load_state_dict(convert_wan_umt5_keys(original), strict=True)
    with torch.no_grad():
        out = model(input_ids=d["ids"], attention_mask=d["mask"]).last_hidden_state
    valid = d["mask"].bool()
    # measured: 0 with 1 thread, 3.3e-6 with 2 (outputs of order 1); 1e-4 leaves 30x for other CPUs
    torch.testing.assert_close(out[valid], d["output"][valid], atol=1e-4, rtol=0)
