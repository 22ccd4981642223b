"""LatentCodec (diffusers' Wan2.2 VAE) and the text encoders, on tiny real models saved to and loaded from disk."""
import json

import pytest
import torch

from xwam_ros.model.config import get_preset
from xwam_ros.model.loading import CheckpointError, load_vae
from xwam_ros.model.text import TinyTextEncoder, UMT5TextEncoder, load_text_encoder
from xwam_ros.model.vae import LatentCodec


@pytest.fixture(scope="module")
def cfg():
    return get_preset("tiny")


@pytest.fixture(scope="module")
def codec(cfg):
    return LatentCodec.tiny(cfg, seed=1)


def _video(cfg, b=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, cfg.num_views, 3, cfg.num_frames, cfg.height, cfg.width, generator=g) * 2 - 1


def test_codec_shapes_and_views_are_encoded_independently(codec, cfg):
    video = _video(cfg)
    z = codec.encode(video)
    assert z.shape == (1, cfg.latent_channels, cfg.latent_frames, cfg.num_views, cfg.latent_h, cfg.latent_w)
    assert codec.decode(z).shape == video.shape
    other = video.clone()
    other[:, 0] = -other[:, 0]  # change view 0 only
    z2 = codec.encode(other)
    assert torch.equal(z2[:, :, :, 1:], z[:, :, :, 1:]) and not torch.allclose(z2[:, :, :, 0], z[:, :, :, 0])
    z_first = codec.encode(video[:, :, :, :1])  # causal VAE: latent frame 0 is the first image alone
    torch.testing.assert_close(z_first[:, :, 0], z[:, :, 0], atol=1e-5, rtol=1e-4)


def test_tiny_codec_at_stride_8_keeps_an_8x8_grid_and_a_mismatch_is_named(cfg):
    c8 = cfg.replace(vae_stride=(4, 8, 8))
    codec8 = LatentCodec.tiny(c8, seed=0, base_dim=8)
    z = codec8.encode(_video(c8))
    assert tuple(z.shape) == (1, c8.latent_channels, c8.latent_frames, c8.num_views, 8, 8) == \
        (1, 16, 3, 3, c8.latent_h, c8.latent_w)
    assert codec8.decode(z).shape == (1, c8.num_views, 3, c8.num_frames, c8.height, c8.width)
    with pytest.raises(CheckpointError, match=r"stride \(4, 8\).*vae_stride \(4, 16, 16\)"):
        codec8.check_matches(cfg)
    with pytest.raises(ValueError, match="vae_stride"):
        LatentCodec.tiny(cfg.replace(vae_stride=(4, 4, 4)))


def test_codec_applies_latent_statistics(tmp_path, codec, cfg):
    c = cfg.latent_channels
    mean, std = torch.linspace(-1, 1, c), torch.linspace(0.5, 2.0, c)
    codec.vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
    try:
        codec.save_pretrained(tmp_path / "vae")
    finally:
        codec.vae.register_to_config(latents_mean=[0.0] * c, latents_std=[1.0] * c)
    loaded = load_vae(tmp_path / "vae")
    video = _video(cfg, seed=2)
    raw = codec.encode(video)  # identity statistics
    z = loaded.encode(video)
    torch.testing.assert_close(z, (raw - mean.view(1, c, 1, 1, 1, 1)) / std.view(1, c, 1, 1, 1, 1), atol=1e-5,
                               rtol=1e-5)
    torch.testing.assert_close(loaded.decode(z), codec.decode(raw), atol=1e-5, rtol=1e-4)


def test_vae_loading_errors(tmp_path, codec):
    with pytest.raises(CheckpointError, match="config.json"):
        load_vae(tmp_path / "missing")
    codec.save_pretrained(tmp_path / "vae")
    for f in (tmp_path / "vae").glob("*.safetensors"):
        f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="cannot load the VAE"):
        load_vae(tmp_path / "vae")
    wan21 = tmp_path / "wan21"
    from diffusers import AutoencoderKLWan
    AutoencoderKLWan(base_dim=8, z_dim=4, num_res_blocks=1, latents_mean=[0.0] * 4,
                     latents_std=[1.0] * 4).save_pretrained(str(wan21))
    with pytest.raises(CheckpointError, match="not a Wan2.2 VAE"):
        load_vae(wan21)


def test_tiny_text_encoder_pads_caches_and_roundtrips(tmp_path, cfg):
    enc = TinyTextEncoder.for_config(cfg, seed=0)
    out = enc.encode(["open the drawer", ""])
    assert out.shape == (2, cfg.text_len, cfg.text_dim) and out.dtype == torch.float32
    assert out[0, :15].abs().sum() > 0 and out[0, 15:].abs().sum() == 0 and out[1, 1:].abs().sum() == 0
    assert torch.equal(enc.encode(["open the drawer"])[0], out[0])
    assert not torch.allclose(enc.encode(["close the drawer"])[0], out[0])
    assert "open the drawer" in enc._cache
    for i in range(enc.cache_size):
        enc.encode([f"task {i}"])
    assert "open the drawer" not in enc._cache and len(enc._cache) == enc.cache_size
    long = enc.encode(["x" * (cfg.text_len + 10)])
    assert long.shape == (1, cfg.text_len, cfg.text_dim)
    enc.save_pretrained(tmp_path / "text")
    again = load_text_encoder(tmp_path / "text", cfg)
    assert torch.equal(again.encode(["open the drawer", ""]), out)
    assert not torch.equal(TinyTextEncoder.for_config(cfg, seed=1).encode(["open the drawer"])[0], out[0])


def test_text_loading_errors(tmp_path, cfg):
    with pytest.raises(CheckpointError, match="config.json"):
        load_text_encoder(tmp_path, cfg)
    (tmp_path / "config.json").write_text(json.dumps({"kind": "clip"}))
    with pytest.raises(CheckpointError, match="unknown text encoder kind 'clip'"):
        load_text_encoder(tmp_path, cfg)
    TinyTextEncoder(cfg.text_dim + 2, cfg.text_len).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="does not match"):
        load_text_encoder(tmp_path, cfg)


def _tiny_umt5_dir(path):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    words = ["<pad>", "</s>", "<unk>", "pick", "the", "cup", "open", "drawer"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(str(path))
    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=len(words), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                     relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1)
    UMT5EncoderModel(cfg).save_pretrained(str(path))


def test_umt5_encoder_from_local_directory(tmp_path):
    pytest.importorskip("transformers")
    _tiny_umt5_dir(tmp_path / "umt5")
    enc = UMT5TextEncoder.from_local(tmp_path / "umt5", text_len=8, dtype=torch.float32)
    out = enc.encode(["pick the cup", "open the drawer"])
    assert out.shape == (2, 8, 16)
    assert out[0, :4].abs().sum(-1).min() > 0 and out[0, 4:].abs().sum() == 0  # 3 words + </s>, then zeros
    # the real tokens equal a direct transformers call
    ids = enc.tokenizer(["pick the cup"], return_tensors="pt")
    ref = enc.model(input_ids=ids.input_ids, attention_mask=ids.attention_mask).last_hidden_state[0]
    torch.testing.assert_close(out[0, :4], ref, atol=1e-6, rtol=1e-6)
    enc.save_pretrained(tmp_path / "ckpt_text")
    cfg = get_preset("tiny", text_dim=16, text_len=8)
    again = load_text_encoder(tmp_path / "ckpt_text", cfg)
    assert isinstance(again, UMT5TextEncoder)
    with pytest.raises(CheckpointError, match="UMT5"):
        UMT5TextEncoder.from_local(tmp_path / "nothing")


def _to_original_names(sd: dict) -> dict:
    """diffusers AutoencoderKLWan names -> the original Wan2.2 module layout (written from that layout: blocks are
    Sequentials of residual blocks followed by one resample; the middle is resblock, attention, resblock)."""
    res = {"norm1.gamma": "residual.0.gamma", "conv1.weight": "residual.2.weight", "conv1.bias": "residual.2.bias",
           "norm2.gamma": "residual.3.gamma", "conv2.weight": "residual.6.weight", "conv2.bias": "residual.6.bias",
           "conv_shortcut.weight": "shortcut.weight", "conv_shortcut.bias": "shortcut.bias"}
    n_res = {}
    for k in sd:
        p = k.split(".")
        if p[1] in ("down_blocks", "up_blocks") and p[3] == "resnets":
            n_res[(p[0], p[2])] = max(n_res.get((p[0], p[2]), 0), int(p[4]) + 1)
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        top = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
        if p[0] in top:
            new = f"{top[p[0]]}.{p[1]}"
        elif p[1] == "conv_in":
            new = f"{p[0]}.conv1.{p[2]}"
        elif p[1] == "norm_out":
            new = f"{p[0]}.head.0.gamma"
        elif p[1] == "conv_out":
            new = f"{p[0]}.head.2.{p[2]}"
        elif p[1] == "mid_block" and p[2] == "resnets":
            new = f"{p[0]}.middle.{2 * int(p[3])}.{res['.'.join(p[4:])]}"
        elif p[1] == "mid_block":
            new = f"{p[0]}.middle.1.{'.'.join(p[4:])}"
        else:
            outer = "downsamples" if p[0] == "encoder" else "upsamples"
            if p[3] == "resnets":
                new = f"{p[0]}.{outer}.{p[2]}.{outer}.{p[4]}.{res['.'.join(p[5:])]}"
            else:  # downsampler / upsampler: the last module of the block
                new = f"{p[0]}.{outer}.{p[2]}.{outer}.{n_res[(p[0], p[2])]}.{'.'.join(p[4:])}"
        out[new] = v
    return out


def test_original_wan22_vae_file_converts_to_the_same_model(tmp_path, codec, cfg):
    from xwam_ros.model.vae import WAN22_VAE_CONFIG

    small = dict(base_dim=16, decoder_base_dim=16, z_dim=cfg.latent_channels, num_res_blocks=1,
                 latents_mean=[0.0] * cfg.latent_channels, latents_std=[1.0] * cfg.latent_channels)
    original = _to_original_names(codec.vae.state_dict())
    assert "encoder.downsamples.0.downsamples.0.residual.0.gamma" in original
    assert len(original) == len(codec.vae.state_dict())
    torch.save(original, tmp_path / "Wan2.2_VAE.pth")
    loaded = LatentCodec.from_original(tmp_path / "Wan2.2_VAE.pth", **small)
    video = _video(cfg, seed=3)
    assert torch.equal(loaded.encode(video), codec.encode(video))
    assert len(WAN22_VAE_CONFIG["latents_mean"]) == len(WAN22_VAE_CONFIG["latents_std"]) == 48
    # a damaged or incomplete file names the file and the first missing key
    del original["decoder.head.2.bias"]
    torch.save(original, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match=r"partial\.pth: missing key 'decoder\.conv_out\.bias'"):
        LatentCodec.from_original(tmp_path / "partial.pth", **small)
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_vae(tmp_path / "bad.pth")


def _hf_to_wan_t5_names(sd: dict) -> dict:
    """transformers UMT5 encoder names -> Wan's T5Encoder layout (token_embedding, blocks.i.{norm1, attn, norm2, ffn,
    pos_embedding}, norm)."""
    out = {"token_embedding.weight": sd["shared.weight"], "norm.weight": sd["encoder.final_layer_norm.weight"]}
    parts = {"layer.0.layer_norm": "norm1", "layer.0.SelfAttention.relative_attention_bias": "pos_embedding.embedding",
             "layer.1.layer_norm": "norm2", "layer.1.DenseReluDense.wi_0": "ffn.gate.0",
             "layer.1.DenseReluDense.wi_1": "ffn.fc1", "layer.1.DenseReluDense.wo": "ffn.fc2"}
    for k, v in sd.items():
        if not k.startswith("encoder.block."):
            continue
        i, rest = k[len("encoder.block."):].split(".", 1)
        rest = rest[: -len(".weight")]
        name = parts.get(rest) or rest.replace("layer.0.SelfAttention.", "attn.")
        out[f"blocks.{i}.{name}.weight"] = v
    return out


def test_umt5_from_wan_original_file_equals_the_transformers_model(tmp_path):
    _tiny_umt5_dir(tmp_path / "umt5")
    ref = UMT5TextEncoder.from_local(tmp_path / "umt5", text_len=8, dtype=torch.float32)
    original = _hf_to_wan_t5_names(ref.model.state_dict())
    assert "blocks.0.ffn.gate.0.weight" in original and "blocks.0.pos_embedding.embedding.weight" in original
    torch.save(original, tmp_path / "models_t5_umt5-xxl-enc-bf16.pth")
    enc = UMT5TextEncoder.from_original(tmp_path / "models_t5_umt5-xxl-enc-bf16.pth", tmp_path / "umt5", text_len=8,
                                        dtype=torch.float32)
    texts = ["pick  the cup", "open the drawer"]
    torch.testing.assert_close(enc.encode(texts), ref.encode(texts), atol=0, rtol=0)
    assert torch.equal(enc.encode(["pick the cup"]), enc.encode(["pick  the cup "]))  # Wan's whitespace cleaning
    del original["blocks.0.ffn.fc2.weight"]
    torch.save(original, tmp_path / "partial.pth")
    missing = r"partial\.pth: missing key 'encoder\.block\.0\.layer\.1\.DenseReluDense\.wo"
    with pytest.raises(CheckpointError, match=missing):
        UMT5TextEncoder.from_original(tmp_path / "partial.pth", tmp_path / "umt5")


def test_official_file_carries_a_usable_vae_and_text_encoder(tmp_path, codec, cfg):
    from xwam_ros.model.loading import load_official_xwam
    from xwam_ros.model.transformer import XWAMTransformer

    _tiny_umt5_dir(tmp_path / "umt5")
    ref_text = UMT5TextEncoder.from_local(tmp_path / "umt5", text_len=8, dtype=torch.float32)
    net_cfg = get_preset("tiny", num_layers=2, num_depth_layers=1)
    net = XWAMTransformer(net_cfg)
    module = {f"model.{k}": v for k, v in net.state_dict().items()}
    module.update({f"vae.model.{k}": v for k, v in _to_original_names(codec.vae.state_dict()).items()})
    module.update({f"text_encoder.model.{k}": v for k, v in _hf_to_wan_t5_names(ref_text.model.state_dict()).items()})
    f = tmp_path / "last.ckpt" / "checkpoint" / "mp_rank_00_model_states.pt"
    f.parent.mkdir(parents=True)
    torch.save({"module": module}, f)
    _, vae_sd, text_sd = load_official_xwam(tmp_path / "last.ckpt", net_cfg)
    small = dict(base_dim=16, decoder_base_dim=16, z_dim=cfg.latent_channels, num_res_blocks=1,
                 latents_mean=[0.0] * cfg.latent_channels, latents_std=[1.0] * cfg.latent_channels)
    vae = LatentCodec.from_original_state_dict(vae_sd, str(f), **small)
    video = _video(cfg, seed=4)
    assert torch.equal(vae.encode(video), codec.encode(video))
    text = UMT5TextEncoder.from_original_state_dict(text_sd, tmp_path / "umt5", text_len=8, dtype=torch.float32)
    assert torch.equal(text.encode(["open the drawer"]), ref_text.encode(["open the drawer"]))
    with pytest.raises(CheckpointError, match="not a Wan UMT5 encoder"):
        UMT5TextEncoder.from_original_state_dict(vae_sd, tmp_path / "umt5")
