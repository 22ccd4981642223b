"""Instruction encoders: ``encode(list[str]) -> [B, text_len, text_dim]`` float32, real tokens then zeros (Wan pads
the UMT5 output to text_len with zeros and the DiT cross-attends to all text_len positions, so the padding matters).

The real model uses UMT5-XXL (4096-d, 512 tokens) from a local directory; tiny configs use a small deterministic
byte-level encoder whose weights are saved with our checkpoints. Embeddings are cached per instruction (LRU): a
policy sees the same instruction for many queries.
"""
from __future__ import annotations

import json
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

    def _encode_one(self, text: str) -> torch.Tensor:
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
            raise CheckpointError(f"{path / 'model.safetensors'}: does not match the tiny text encoder ({exc})") from exc
        return enc
    if kind == "umt5":
        return UMT5TextEncoder.from_local(meta.get("local_dir") or path, cfg.text_len)
    raise CheckpointError(f"{path / 'config.json'}: unknown text encoder kind {kind!r}")
