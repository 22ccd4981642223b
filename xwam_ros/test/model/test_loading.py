"""Loaders on small real files in the three layouts (ours, official DeepSpeed, Wan2.2 base), and every error case."""
import json

import pytest
import torch
from safetensors.torch import save_file

from xwam_ros.model.config import get_preset
from xwam_ros.model.loading import (NEW_PREFIXES, CheckpointError, load_checkpoint, load_official_xwam,
                                    load_wan22_base, save_checkpoint)
from xwam_ros.model.transformer import XWAMTransformer


@pytest.fixture(scope="module")
def cfg():
    return get_preset("tiny", num_layers=3, num_depth_layers=1)


@pytest.fixture(scope="module")
def net(cfg):
    torch.manual_seed(3)
    return XWAMTransformer(cfg).eval()


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- our format ------------------------------------------------------------------------------------------------------
def test_checkpoint_roundtrip_keeps_weights_config_normaliser_and_subdirs(tmp_path, net, cfg):
    d = tmp_path / "ckpt"
    norm = {"actions": {"q01": [-1.0] * cfg.action_dim, "q99": [1.0] * cfg.action_dim}}
    save_checkpoint(d, net, cfg, normalizer=norm, extras={"step": 7})
    (d / "vae").mkdir()
    (d / "vae" / "marker.txt").write_text("kept")
    save_checkpoint(d, net, cfg, normalizer=norm, extras={"step": 8})  # overwrite in place
    model, cfg2, norm2, extras = load_checkpoint(d)
    assert cfg2 == cfg and norm2 == norm and extras == {"step": 8} and not model.training
    assert _same_weights(model, net)
    assert (d / "vae" / "marker.txt").read_text() == "kept"
    half = load_checkpoint(d, dtype=torch.bfloat16)[0]
    assert half.blocks[0].ffn[0].weight.dtype == torch.bfloat16
    assert torch.equal(half.blocks[0].ffn[0].weight, net.blocks[0].ffn[0].weight.to(torch.bfloat16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary leftovers


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, net, cfg):
    d = tmp_path / "ckpt"
    save_checkpoint(d, net, cfg, extras={"step": 1})
    with pytest.raises(TypeError):
        save_checkpoint(d, net, cfg, extras={"step": object()})  # not JSON-able: fails after the weights are written
    assert load_checkpoint(d)[3] == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_checkpoint_errors_name_file_and_key(tmp_path, net, cfg):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    d = tmp_path / "c"
    save_checkpoint(d, net, cfg)
    full = (d / "model.safetensors").read_bytes()
    for cut in (1000, len(full) - 100):  # inside the header, and inside the tensor data
        (d / "model.safetensors").write_bytes(full[:cut])
        with pytest.raises(CheckpointError, match=r"model\.safetensors.*(corrupt|truncated)"):
            load_checkpoint(d)
    sd = {k: v for k, v in net.state_dict().items() if k != "blocks.1.ffn.0.bias"}
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing key 'blocks\.1\.ffn\.0\.bias'"):
        load_checkpoint(d)
    sd = dict(net.state_dict())
    sd["view_embedding.weight"] = torch.zeros(5, cfg.dim)
    save_file(sd, str(d / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"'view_embedding\.weight' has shape \(5, 64\)"):
        load_checkpoint(d)
    (d / "config.json").write_text(json.dumps({"xwam": {**cfg.to_dict(), "num_actions": 5}}))
    with pytest.raises(CheckpointError, match=r"config\.json.*num_actions"):
        load_checkpoint(d)
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: invalid JSON"):
        load_checkpoint(d)


# --- official DeepSpeed file -----------------------------------------------------------------------------------------
def _official(tmp_path, net, module=None):
    f = tmp_path / "100.ckpt" / "checkpoint" / "mp_rank_00_model_states.pt"
    f.parent.mkdir(parents=True)
    if module is None:
        module = {f"model.{k}": v for k, v in net.state_dict().items()}
        module["vae.encoder.conv1.weight"] = torch.ones(2)
        module["text_encoder.shared.weight"] = torch.ones(3)
    torch.save({"module": module, "ds_version": "0.16.0", "buffer_names": []}, f)
    return f


def test_official_deepspeed_file_loads_strict_and_splits_frozen_parts(tmp_path, net, cfg):
    _official(tmp_path, net)
    model, vae_sd, text_sd = load_official_xwam(tmp_path / "100.ckpt", cfg)
    assert _same_weights(model, net)
    assert list(vae_sd) == ["encoder.conv1.weight"] and list(text_sd) == ["shared.weight"]
    model_bf16, _, _ = load_official_xwam(tmp_path / "100.ckpt" / "checkpoint", cfg, dtype=torch.bfloat16)
    assert model_bf16.blocks[0].self_attn.q.weight.dtype == torch.bfloat16


def test_official_errors(tmp_path, net, cfg):
    with pytest.raises(CheckpointError, match="mp_rank_00_model_states.pt"):
        load_official_xwam(tmp_path, cfg)
    sd = {f"model.{k}": v for k, v in net.state_dict().items() if not k.startswith("extra_heads")}
    f = _official(tmp_path, net, sd)
    with pytest.raises(CheckpointError, match=r"mp_rank_00_model_states\.pt: missing key 'extra_heads\.0\."):
        load_official_xwam(f, cfg)
    torch.save({"state_dict": {}}, f)
    with pytest.raises(CheckpointError, match="no 'module' entry"):
        load_official_xwam(f, cfg)
    torch.save({"module": {"vae.x": torch.ones(1)}}, f)
    with pytest.raises(CheckpointError, match="'model.'"):
        load_official_xwam(f, cfg)
    _ = f.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_official_xwam(f, cfg)
    with pytest.raises(CheckpointError, match=r"num_layers|missing key|unexpected key"):
        _official(tmp_path / "other", net)
        load_official_xwam(tmp_path / "other" / "100.ckpt", get_preset("tiny", num_layers=4, num_depth_layers=1))


# --- Wan2.2 base release ---------------------------------------------------------------------------------------------
def _wan_dir(tmp_path, net, cfg, shards=2):
    d = tmp_path / "Wan2.2-TI2V-5B"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({
        "_class_name": "WanModel", "model_type": "ti2v", "dim": cfg.dim, "ffn_dim": cfg.ffn_dim,
        "freq_dim": cfg.freq_dim, "in_dim": cfg.latent_channels, "out_dim": cfg.latent_channels,
        "num_heads": cfg.num_heads, "num_layers": cfg.num_layers, "text_len": cfg.text_len, "eps": cfg.eps,
        "patch_size": list(cfg.patch_size), "window_size": [-1, -1], "qk_norm": True, "cross_attn_norm": True}))
    base = {k: v.clone() for k, v in net.state_dict().items() if not k.startswith(NEW_PREFIXES)}
    keys = sorted(base)
    if shards == 1:
        save_file(base, str(d / "diffusion_pytorch_model.safetensors"))
        return d, base
    weight_map = {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: base[k] for k in keys[i::shards]}
        save_file(part, str(d / name))
        weight_map.update({k: name for k in part})
    (d / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return d, base


@pytest.mark.parametrize("shards", [1, 2])
def test_wan22_base_loads_backbone_and_initialises_new_parts(tmp_path, net, cfg, shards):
    d, base = _wan_dir(tmp_path, net, cfg, shards)
    model = load_wan22_base(d, cfg)
    sd = model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in base.items())
    first = cfg.num_layers - cfg.num_depth_layers
    for k, v in sd.items():
        if k.startswith("extra_blocks.0."):
            j, rest = k[len("extra_blocks.0."):].split(".", 1)
            assert torch.equal(v, sd[f"blocks.{first + int(j)}.{rest}"]), k
    for k in ("view_embedding.weight", "action_encoder.0.weight", "proprio_decoder.2.weight",
              "extra_heads.0.head.weight"):
        assert 0.01 < sd[k].std().item() < 0.03, k
    assert sd["action_encoder.0.bias"].abs().max() == 0


def test_wan22_base_errors(tmp_path, net, cfg):
    d, _ = _wan_dir(tmp_path, net, cfg, 2)
    with pytest.raises(CheckpointError, match=r"config\.json: num_layers = 3 but .* num_layers = 4"):
        load_wan22_base(d, get_preset("tiny", num_layers=4, num_depth_layers=1))
    index = json.loads((d / "diffusion_pytorch_model.safetensors.index.json").read_text())
    index["weight_map"]["blocks.9.modulation"] = "diffusion_pytorch_model-00001-of-00002.safetensors"
    (d / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"00001-of-00002\.safetensors: key 'blocks\.9\.modulation'"):
        load_wan22_base(d, cfg)
    (d / "diffusion_pytorch_model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"00002-of-00002\.safetensors: file not found"):
        load_wan22_base(d, cfg)
    with pytest.raises(CheckpointError, match="not found"):
        load_wan22_base(tmp_path / "missing", cfg)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((d / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no safetensors"):
        load_wan22_base(empty, cfg)
    partial = {k: v for k, v in net.state_dict().items() if not k.startswith(NEW_PREFIXES) and k != "head.modulation"}
    save_file(partial, str(empty / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing key 'head\.modulation'"):
        load_wan22_base(empty, cfg)
