"""Loading weights from local files only: our checkpoints, the official X-WAM DeepSpeed file, and the
Wan2.2-TI2V-5B base release. Every failure names the file and the first offending key or shape."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import XWAMConfig

# parts X-WAM adds to Wan2.2; absent from the base release and initialised as the paper says
NEW_PREFIXES = ("view_embedding.", "extra_blocks.", "extra_heads.", "action_", "proprio_")
# Wan's config.json names -> ours
_WAN_CONFIG_KEYS = {"dim": "dim", "ffn_dim": "ffn_dim", "num_heads": "num_heads", "num_layers": "num_layers",
                    "text_dim": "text_dim", "text_len": "text_len", "freq_dim": "freq_dim", "in_dim": "latent_channels",
                    "out_dim": "latent_channels", "eps": "eps"}


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match the model; the message names file and key."""


def check_state_dict(model: torch.nn.Module, sd: dict, source: str, allow_missing=()) -> None:
    """Strict comparison with a precise first mismatch (PyTorch's message lists everything, unordered)."""
    own = model.state_dict()
    for k, v in own.items():
        if k not in sd:
            if not k.startswith(tuple(allow_missing)):
                raise CheckpointError(f"{source}: missing key {k!r} (expected shape {tuple(v.shape)})")
        elif tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(f"{source}: key {k!r} has shape {tuple(sd[k].shape)}, model expects {tuple(v.shape)}")
    extra = [k for k in sd if k not in own]
    if extra:
        raise CheckpointError(f"{source}: unexpected key {extra[0]!r} ({len(extra)} unexpected in total)")


def _load_safetensors(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({exc})") from exc


# --- our own checkpoints ----------------------------------------------------------------------------------------------
def save_checkpoint(path, model, cfg: XWAMConfig, normalizer: dict | None = None, extras: dict | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (+ ``normalization.json``) atomically (temp dir, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({"xwam": cfg.to_dict(), **(extras or {})}, indent=1))
        if normalizer is not None:
            (tmp / "normalization.json").write_text(json.dumps(normalizer, indent=1))
        if path.exists():  # keep subdirectories written by others (vae/, text/) by merging into the new dir
            for child in path.iterdir():
                if not (tmp / child.name).exists():
                    shutil.move(str(child), tmp / child.name)
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def load_config(path) -> tuple[XWAMConfig, dict]:
    f = Path(path) / "config.json"
    if not f.is_file():
        raise CheckpointError(f"{f}: file not found")
    try:
        meta = json.loads(f.read_text())
        return XWAMConfig.from_dict(meta["xwam"]), meta
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{f}: invalid X-WAM config ({exc})") from exc


def load_checkpoint(path):
    """-> (XWAMTransformer, XWAMConfig, normalisation dict or None, extras dict)."""
    from .transformer import XWAMTransformer

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    cfg, meta = load_config(path)
    sd = _load_safetensors(path / "model.safetensors")
    model = XWAMTransformer(cfg)
    check_state_dict(model, sd, str(path / "model.safetensors"))
    model.load_state_dict(sd, strict=True)
    norm = None
    nf = path / "normalization.json"
    if nf.is_file():
        try:
            norm = json.loads(nf.read_text())
        except json.JSONDecodeError as exc:
            raise CheckpointError(f"{nf}: invalid JSON ({exc})") from exc
    return model, cfg, norm, {k: v for k, v in meta.items() if k != "xwam"}


# --- the official X-WAM release ---------------------------------------------------------------------------------------
def find_deepspeed_file(path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    for cand in (p / "checkpoint" / "mp_rank_00_model_states.pt", p / "mp_rank_00_model_states.pt"):
        if cand.is_file():
            return cand
    raise CheckpointError(f"{p}: no mp_rank_00_model_states.pt found (expected <step>.ckpt/checkpoint/...)")


def split_official_state(module_sd: dict) -> tuple[dict, dict, dict]:
    """The training module's dict -> (DiT with ``model.`` stripped, ``vae.`` part, ``text_encoder.`` part)."""
    parts = {"model.": {}, "vae.": {}, "text_encoder.": {}}
    for k, v in module_sd.items():
        for pre, d in parts.items():
            if k.startswith(pre):
                d[k[len(pre):]] = v
                break
    return parts["model."], parts["vae."], parts["text_encoder."]


def load_official_xwam(path, cfg: XWAMConfig):
    """Official X-WAM DeepSpeed/Lightning output -> (XWAMTransformer, vae_sd, text_encoder_sd)."""
    from .transformer import XWAMTransformer

    f = find_deepspeed_file(path)
    try:
        blob = torch.load(str(f), map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for truncated zips and pickles
        raise CheckpointError(f"{f}: cannot be read as a torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(blob, dict) or "module" not in blob:
        raise CheckpointError(f"{f}: no 'module' entry (keys: {list(blob)[:5] if isinstance(blob, dict) else type(blob)})")
    dit, vae_sd, text_sd = split_official_state(blob["module"])
    if not dit:
        raise CheckpointError(f"{f}: no key starts with 'model.' in 'module'")
    model = XWAMTransformer(cfg)
    check_state_dict(model, dit, str(f))
    model.load_state_dict(dit, strict=True)
    return model, vae_sd, text_sd


# --- the Wan2.2-TI2V-5B base release ----------------------------------------------------------------------------------
def check_wan_config(path: Path, cfg: XWAMConfig) -> None:
    f = path / "config.json"
    if not f.is_file():
        raise CheckpointError(f"{f}: file not found")
    wan = json.loads(f.read_text())
    for theirs, ours in _WAN_CONFIG_KEYS.items():
        if theirs in wan and wan[theirs] != getattr(cfg, ours):
            raise CheckpointError(f"{f}: {theirs} = {wan[theirs]} but the X-WAM config has {ours} = {getattr(cfg, ours)}")


def load_wan_shards(path: Path) -> dict:
    index = path / "diffusion_pytorch_model.safetensors.index.json"
    if not index.is_file():
        index = path / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        sd = {}
        for shard in sorted(set(weight_map.values())):
            sd.update(_load_safetensors(path / shard))
        missing = [k for k in weight_map if k not in sd]
        if missing:
            raise CheckpointError(f"{index}: key {missing[0]!r} listed but not found in its shard")
        return sd
    singles = sorted(path.glob("*.safetensors"))
    if not singles:
        raise CheckpointError(f"{path}: no safetensors shards and no index file")
    sd = {}
    for s in singles:
        sd.update(_load_safetensors(s))
    return sd


def load_wan22_base(path, cfg: XWAMConfig):
    """Wan2.2-TI2V-5B backbone + X-WAM's new parts initialised as in the paper (depth branch = last M blocks)."""
    from .transformer import XWAMTransformer

    path = Path(path)
    check_wan_config(path, cfg)
    sd = load_wan_shards(path)
    model = XWAMTransformer(cfg)
    check_state_dict(model, sd, str(path), allow_missing=NEW_PREFIXES)
    model.load_state_dict(sd, strict=False)
    model.init_new_parts()
    model.init_depth_branch_from_main()
    return model
