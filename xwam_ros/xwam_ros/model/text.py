"""Instruction encoders: ``encode(list[str]) -> [B, text_len, text_dim]`` float32, real tokens then zeros (Wan pads
the UMT5 output to text_len with zeros and the DiT cross-attends to all text_len positions, so the padding matters).

The real model uses UMT5-XXL (4096-d, 512 tokens) from a local directory; tiny configs use a small deterministic
byte-level encoder whose weights are saved with our checkpoints. Embeddings are cached per instruction (LRU): a
policy sees the same instruction for many queries.
"""
from __future__ import annotations

import html
import json
import re
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn


class TextEncoder(nn.Module):
    """Base class: subclasses implement ``_encode_one(text) -> [n, text_dim]`` (n <= text_len real tokens)."""

    def __init__(self, text_dim: int, text_len: int, cache_size: int = 32):
        super().__init__()
        self.text_dim, self.text_len, self.cache_size = text_dim, text_len, cache_size
        self._cache: OrderedDict = OrderedDict()

    def _encode_one(self, text: str) -> torch.Tensor:
        raise NotImplementedError

    def _padded(self, text: str) -> torch.Tensor:
        emb = self._encode_one(text)[: self.text_len].float()
        out = emb.new_zeros(self.text_len, self.text_dim)
        out[: emb.shape[0]] = emb
        return out

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of instructions")
        out = []
        for t in texts:
            if t not in self._cache:
                self._cache[t] = self._padded(t)
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        return torch.stack(out)

    def clear_cache(self) -> None:
        self._cache.clear()

    def _apply(self, fn, *args, **kwargs):  # moving weights invalidates cached embeddings
        self.clear_cache()
        return super()._apply(fn, *args, **kwargs)


class TinyTextEncoder(TextEncoder):
    """UTF-8 bytes -> embedding -> one transformer layer. Deterministic given its weights (seeded at creation)."""

    EMPTY = 256  # token for the empty instruction (CFG's unconditional text)

    def __init__(self, text_dim: int, text_len: int, seed: int = 0):
        super().__init__(text_dim, text_len)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.embed = nn.Embedding(257, text_dim)
            nn.init.normal_(self.embed.weight, std=1.0)
            self.layer = nn.TransformerEncoderLayer(text_dim, nhead=2 if text_dim % 2 == 0 else 1,
                                                    dim_feedforward=2 * text_dim, batch_first=True, dropout=0.0)
        self.eval()

    @classmethod
    def for_config(cls, cfg, seed: int = 0) -> "TinyTextEncoder":
        return cls(cfg.text_dim, cfg.text_len, seed)

    def _encode_one(self, text: str) -> torch.Tensor:
        ids = list(text.encode("utf-8"))[: self.text_len] or [self.EMPTY]
        x = self.embed(torch.tensor(ids, device=self.embed.weight.device))[None]
        return self.layer.eval()(x)[0]

    def save_pretrained(self, path) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps({"kind": "tiny", "text_dim": self.text_dim,
                                                      "text_len": self.text_len}))


class UMT5TextEncoder(TextEncoder):
    """UMT5 encoder + tokenizer from a local transformers directory (never downloads)."""

    def __init__(self, model, tokenizer, text_len: int = 512, source: str | None = None):
        super().__init__(model.config.d_model, text_len)
        self.model, self.tokenizer, self.source = model.eval(), tokenizer, source

    @classmethod
    def from_local(cls, path, text_len: int = 512, dtype=torch.bfloat16) -> "UMT5TextEncoder":
        from transformers import AutoTokenizer, UMT5EncoderModel

        from .loading import CheckpointError
        path = Path(path)
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path / 'config.json'}: missing; expected a transformers UMT5 directory")
        try:
            tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = UMT5EncoderModel.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot load UMT5 ({type(exc).__name__}: {exc})") from exc
        return cls(model, tok, text_len, source=str(path.resolve()))

    @classmethod
    def from_original(cls, pth, tokenizer_dir, text_len: int = 512, dtype=torch.bfloat16) -> "UMT5TextEncoder":
        """Wan's own ``models_t5_umt5-xxl-enc-bf16.pth`` (its T5Encoder layout) + a local tokenizer directory
        (``google/umt5-xxl`` files). Sizes are read from the weights."""
        from .loading import CheckpointError
        pth = Path(pth)
        if not pth.is_file():
            raise CheckpointError(f"{pth}: file not found (expected models_t5_umt5-xxl-enc-bf16.pth)")
        try:
            sd = torch.load(str(pth), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"{pth}: cannot be read as a torch checkpoint ({type(exc).__name__}: {exc})") from exc
        return cls.from_original_state_dict(sd, tokenizer_dir, text_len, dtype, source=str(pth))

    @classmethod
    def from_original_state_dict(cls, sd: dict, tokenizer_dir, text_len: int = 512, dtype=torch.bfloat16,
                                 source: str = "state dict") -> "UMT5TextEncoder":
        """A Wan-layout UMT5 encoder state dict, e.g. the ``text_encoder.`` part returned by ``load_official_xwam``
        (a wrapper prefix such as ``model.`` shared by every key is removed)."""
        from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

        from .loading import CheckpointError, check_state_dict
        from .vae import strip_common_prefix
        sd = strip_common_prefix(sd, ("model.",))
        try:
            config = umt5_config_from_original(sd, UMT5Config)
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{source}: not a Wan UMT5 encoder, missing key {exc}") from exc
        model = UMT5EncoderModel(config)
        hf = convert_wan_umt5_keys(sd)
        check_state_dict(model, hf, source)
        model.load_state_dict(hf, strict=True)
        try:
            tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{tokenizer_dir}: cannot load the UMT5 tokenizer ({exc})") from exc
        return cls(model.to(dtype), tok, text_len, source=None)

    def _encode_one(self, text: str) -> torch.Tensor:
        text = re.sub(r"\s+", " ", html.unescape(html.unescape(text))).strip()  # Wan's prompt cleaning
        ids = self.tokenizer([text], max_length=self.text_len, truncation=True, return_tensors="pt")
        dev = next(self.model.parameters()).device
        hidden = self.model(input_ids=ids.input_ids.to(dev), attention_mask=ids.attention_mask.to(dev))
        n = int(ids.attention_mask.sum())
        return hidden.last_hidden_state[0, :n].float()  # Wan keeps the real tokens; padding becomes zeros

    def save_pretrained(self, path) -> None:
        """Only a pointer: UMT5-XXL is 11 GB and is never copied into our checkpoints."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"kind": "umt5", "local_dir": self.source}))


def convert_wan_umt5_keys(original: dict) -> dict:
    """Wan's T5Encoder names -> transformers UMT5EncoderModel names (gate.0 = wi_0 (GELU branch), fc1 = wi_1,
    fc2 = wo; one relative-position table per block)."""
    block = {"norm1.weight": "layer.0.layer_norm.weight", "attn.q.weight": "layer.0.SelfAttention.q.weight",
             "attn.k.weight": "layer.0.SelfAttention.k.weight", "attn.v.weight": "layer.0.SelfAttention.v.weight",
             "attn.o.weight": "layer.0.SelfAttention.o.weight",
             "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
             "norm2.weight": "layer.1.layer_norm.weight", "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
             "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
             "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight"}
    out = {}
    for k, v in original.items():
        m = re.fullmatch(r"blocks\.(\d+)\.(.+)", k)
        if k == "token_embedding.weight":
            out["shared.weight"] = v
            out["encoder.embed_tokens.weight"] = v
        elif k == "norm.weight":
            out["encoder.final_layer_norm.weight"] = v
        elif m and m[2] in block:
            out[f"encoder.block.{m[1]}.{block[m[2]]}"] = v
        else:
            out[k] = v  # unknown: reported by the strict check
    return out


def umt5_config_from_original(sd: dict, config_cls):
    vocab, dim = sd["token_embedding.weight"].shape
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    buckets, heads = sd["blocks.0.pos_embedding.embedding.weight"].shape
    return config_cls(vocab_size=vocab, d_model=dim, d_kv=sd["blocks.0.attn.q.weight"].shape[0] // heads,
                      d_ff=sd["blocks.0.ffn.fc1.weight"].shape[0], num_layers=layers, num_heads=heads,
                      relative_attention_num_buckets=buckets, relative_attention_max_distance=128,
                      feed_forward_proj="gated-gelu", dropout_rate=0.0, tie_word_embeddings=False)


def load_text_encoder(path, cfg) -> TextEncoder:
    """The text encoder saved next to a checkpoint: ``text/config.json`` says which kind."""
    from .loading import CheckpointError, _load_safetensors, _read_json

    path = Path(path)
    meta = _read_json(path / "config.json", "text encoder config")
    kind = meta.get("kind")
    if kind == "tiny":
        enc = TinyTextEncoder(cfg.text_dim, cfg.text_len)
        sd = _load_safetensors(path / "model.safetensors")
        try:
            enc.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            msg = f"{path / 'model.safetensors'}: does not match the tiny text encoder ({exc})"
            raise CheckpointError(msg) from exc
        return enc
    if kind == "umt5":
        return UMT5TextEncoder.from_local(meta.get("local_dir") or path, cfg.text_len)
    raise CheckpointError(f"{path / 'config.json'}: unknown text encoder kind {kind!r}")
