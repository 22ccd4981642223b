"""Loading weights from local files only -- never the network.

* our checkpoints: ``model.safetensors`` + ``config.json`` (+ ``normalization.json``), written atomically;
* the official X-WAM release: DeepSpeed/Lightning ``<step>.ckpt/checkpoint/mp_rank_00_model_states.pt`` whose
  ``"module"`` dict holds the DiT under ``model.`` (plus the frozen ``vae.`` and ``text_encoder.``);
* the Wan2.2-TI2V-5B base release: ``config.json`` + safetensors (sharded with an index, or one file) in the original
  Wan naming; X-WAM's new parts are initialised as in the paper and the depth branch copies the last M blocks.

Every failure raises ``CheckpointError`` naming the file and the first offending key or shape.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config import XWAMConfig

# parts X-WAM adds to Wan2.2: absent from the base release
NEW_PREFIXES = ("view_embedding.", "extra_blocks.", "extra_heads.", "action_", "proprio_")
# Wan's config.json names -> ours
_WAN_CONFIG_KEYS = {"dim": "dim", "ffn_dim": "ffn_dim", "num_heads": "num_heads", "num_layers": "num_layers",
                    "text_dim": "text_dim", "text_len": "text_len", "freq_dim": "freq_dim", "in_dim": "latent_channels",
                    "out_dim": "latent_channels", "eps": "eps", "patch_size": "patch_size"}
DEEPSPEED_FILE = "mp_rank_00_model_states.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match the model; the message names file and key."""


# --- helpers ---------------------------------------------------------------------------------------------------------
def check_state_dict(model: torch.nn.Module, sd: dict, source: str, allow_missing=()) -> None:
    """Strict comparison that reports the FIRST mismatch in model order (torch's message lists all, unordered)."""
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


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found ({what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({exc})") from exc


def _load_safetensors(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({exc})") from exc


def _safetensors_shapes(files: list[Path]) -> dict:
    """key -> (file, meta tensor of the stored shape), read from the headers only (no tensor data)."""
    out = {}
    for f in files:
        if not f.is_file():
            raise CheckpointError(f"{f}: file not found")
        try:
            with safe_open(str(f), framework="pt") as h:
                for k in h.keys():
                    out[k] = (f, torch.empty(h.get_slice(k).get_shape(), device="meta"))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{f}: corrupt or truncated safetensors file ({exc})") from exc
    return out


def _fill_streaming(model, shapes: dict, source: str, allow_missing=(), skip=()) -> None:
    """Check every key and shape first (first mismatch reported), then copy tensor by tensor so the peak memory is
    the model plus one tensor -- the 5B checkpoints are tens of GB."""
    shapes = {k: v for k, v in shapes.items() if k not in skip}
    check_state_dict(model, {k: t for k, (_, t) in shapes.items()}, source, allow_missing)
    own = model.state_dict()
    by_file: dict = {}
    for k, (f, _) in shapes.items():
        by_file.setdefault(f, []).append(k)
    with torch.no_grad():
        for f, keys in by_file.items():
            try:
                with safe_open(str(f), framework="pt") as h:
                    for k in keys:
                        own[k].copy_(h.get_tensor(k))
            except (SafetensorError, OSError, RuntimeError) as exc:
                raise CheckpointError(f"{f}: corrupt or truncated safetensors file ({exc})") from exc


def _empty_model(cfg: XWAMConfig, dtype: torch.dtype):
    """Build the model without allocating random weights twice (matters at 6.6B parameters)."""
    from .transformer import XWAMTransformer

    with torch.device("meta"):
        model = XWAMTransformer(cfg)
    return model.to(dtype).to_empty(device="cpu")


def _fill(model, sd: dict, source: str, allow_missing=()) -> None:
    check_state_dict(model, sd, source, allow_missing)
    own = model.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v)  # casts to the model's dtype


# --- our own checkpoints ---------------------------------------------------------------------------------------------
def save_checkpoint(path, model, cfg: XWAMConfig, normalizer: dict | None = None, extras: dict | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` (+ ``normalization.json`` from the given dict) atomically:
    everything goes to a temporary sibling directory that is renamed over ``path``; subdirectories already in
    ``path`` (``vae/``, ``text/``) are carried over."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp.", dir=path.parent))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
                  str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({"xwam": cfg.to_dict(), **(extras or {})}, indent=1))
        if normalizer is not None:
            (tmp / "normalization.json").write_text(json.dumps(normalizer, indent=1))
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _swap_in(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.replace(tmp, path)
        return
    for child in path.iterdir():  # keep what we did not rewrite
        if not (tmp / child.name).exists():
            shutil.copytree(child, tmp / child.name) if child.is_dir() else shutil.copy2(child, tmp / child.name)
    old = path.with_name(f".{path.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def load_config(path) -> tuple[XWAMConfig, dict]:
    f = Path(path) / "config.json"
    meta = _read_json(f, "X-WAM config")
    try:
        return XWAMConfig.from_dict(meta["xwam"]), meta
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{f}: invalid X-WAM config ({exc})") from exc


def load_checkpoint(path, dtype: torch.dtype = torch.float32):
    """-> (XWAMTransformer in eval mode, XWAMConfig, normalisation dict or None, extras dict)."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    cfg, meta = load_config(path)
    shapes = _safetensors_shapes([path / "model.safetensors"])
    model = _empty_model(cfg, dtype)
    _fill_streaming(model, shapes, str(path / "model.safetensors"))
    norm = _read_json(path / "normalization.json", "normalisation") if (path / "normalization.json").exists() else None
    return model.eval(), cfg, norm, {k: v for k, v in meta.items() if k != "xwam"}


# --- the official X-WAM release --------------------------------------------------------------------------------------
def find_deepspeed_file(path) -> Path:
    p = Path(path)
    if p.is_file():
        return p
    for cand in (p / "checkpoint" / DEEPSPEED_FILE, p / DEEPSPEED_FILE):
        if cand.is_file():
            return cand
    raise CheckpointError(f"{p}: no {DEEPSPEED_FILE} found (expected <step>.ckpt/checkpoint/{DEEPSPEED_FILE})")


def split_official_state(module_sd: dict) -> tuple[dict, dict, dict]:
    """The training module's dict -> (DiT with ``model.`` stripped, ``vae.`` part, ``text_encoder.`` part)."""
    parts = {"model.": {}, "vae.": {}, "text_encoder.": {}}
    for k, v in module_sd.items():
        for pre, d in parts.items():
            if k.startswith(pre):
                d[k[len(pre):]] = v
                break
    return parts["model."], parts["vae."], parts["text_encoder."]


def _torch_load(f: Path, trust_pickle: bool):
    try:
        return torch.load(str(f), map_location="cpu", weights_only=not trust_pickle, mmap=True)
    except RuntimeError as exc:
        if "mmap" in str(exc):  # legacy (non-zip) format cannot be memory-mapped
            return torch.load(str(f), map_location="cpu", weights_only=not trust_pickle)
        raise


def load_official_xwam(path, cfg: XWAMConfig, dtype: torch.dtype = torch.float32, trust_pickle: bool = False):
    """Official X-WAM DeepSpeed/Lightning output (the file or a directory holding it) ->
    (XWAMTransformer, vae state dict, text encoder state dict). ``trust_pickle`` allows full unpickling for files
    that carry non-tensor objects; only use it on files you trust."""
    f = find_deepspeed_file(path)
    try:
        blob = _torch_load(f, trust_pickle)
    except Exception as exc:  # torch raises many types for truncated zips and pickles
        hint = " (pass trust_pickle=True if you trust this file)" if "weights_only" in str(exc) else ""
        raise CheckpointError(f"{f}: cannot be read as a torch checkpoint ({type(exc).__name__}: {exc}){hint}") from exc
    if not isinstance(blob, dict) or "module" not in blob:
        got = list(blob)[:5] if isinstance(blob, dict) else type(blob).__name__
        raise CheckpointError(f"{f}: no 'module' entry (found {got})")
    dit, vae_sd, text_sd = split_official_state(blob["module"])
    if not dit:
        raise CheckpointError(f"{f}: no key of 'module' starts with 'model.'")
    model = _empty_model(cfg, dtype)
    _fill(model, dit, str(f))
    return model.eval(), vae_sd, text_sd


# --- the Wan2.2-TI2V-5B base release ---------------------------------------------------------------------------------
def check_wan_config(path: Path, cfg: XWAMConfig) -> None:
    f = path / "config.json"
    wan = _read_json(f, "Wan config")
    for theirs, ours in _WAN_CONFIG_KEYS.items():
        want = getattr(cfg, ours)
        got = tuple(wan[theirs]) if isinstance(wan.get(theirs), list) else wan.get(theirs)
        if theirs in wan and got != want:
            raise CheckpointError(f"{f}: {theirs} = {wan[theirs]} but the X-WAM config has {ours} = {want}")


def wan_shard_shapes(path: Path) -> dict:
    """key -> (shard file, meta tensor) of a (possibly sharded) safetensors checkpoint; an index must be fully
    backed by its shards."""
    for name in ("diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json"):
        index = path / name
        if index.is_file():
            weight_map = _read_json(index, "shard index").get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise CheckpointError(f"{index}: no 'weight_map'")
            shapes = _safetensors_shapes([path / f for f in sorted(set(weight_map.values()))])
            for k, f in weight_map.items():
                if k not in shapes or shapes[k][0] != path / f:
                    raise CheckpointError(f"{path / f}: key {k!r} listed in {index.name} is not in its shard")
            return shapes
    singles = sorted(path.glob("*.safetensors"))
    if not singles:
        raise CheckpointError(f"{path}: no safetensors file and no shard index")
    return _safetensors_shapes(singles)


def load_wan22_base(path, cfg: XWAMConfig, dtype: torch.dtype = torch.float32, seed: int = 0):
    """Wan2.2-TI2V-5B backbone (original naming) + X-WAM's new parts: view embedding, action/state MLPs and depth
    head from N(0, 0.02); depth blocks as copies of the last M main blocks."""
    from .transformer import XWAMTransformer

    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: Wan2.2 directory not found")
    check_wan_config(path, cfg)
    shapes = wan_shard_shapes(path)
    new_in_file = [k for k in shapes if k.startswith(NEW_PREFIXES)]
    if new_in_file:
        raise CheckpointError(f"{path}: {new_in_file[0]!r} is an X-WAM key; use load_official_xwam/load_checkpoint")
    model = _empty_model(cfg, dtype)
    # some exports keep RoPE tables ("freqs"); we rebuild them
    _fill_streaming(model, shapes, str(path), allow_missing=NEW_PREFIXES, skip=("freqs",))
    torch.manual_seed(seed)
    XWAMTransformer.init_new_parts(model)
    model.init_depth_branch_from_main()
    return model


def load_vae(path, dtype: torch.dtype = torch.float32):
    """A Wan2.2 VAE -> LatentCodec, from a diffusers directory (``config.json`` + weights), the original
    ``Wan2.2_VAE.pth`` file, or a directory holding that file (e.g. the Wan2.2-TI2V-5B release)."""
    from .vae import LatentCodec

    path = Path(path)
    if path.is_file():
        return LatentCodec.from_original(path, dtype=dtype)
    if (path / "Wan2.2_VAE.pth").is_file():  # the release directory's config.json is the DiT's, not the VAE's
        return LatentCodec.from_original(path / "Wan2.2_VAE.pth", dtype=dtype)
    return LatentCodec.from_pretrained(path, dtype=dtype)
