"""Instruction encoders. The real model uses UMT5-XXL (4096-d, 512 tokens) from a local directory; tiny configs use a
small deterministic byte-level encoder so the same code path runs on a laptop CPU. Embeddings are cached per
instruction: a policy sees the same instruction for many queries."""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn


class TextEncoder(nn.Module):
    """Base: ``encode(list[str]) -> [B, text_len, text_dim]`` with an LRU cache."""

    cache_size = 32

    def __init__(self):
        super().__init__()
        self._cache: OrderedDict = OrderedDict()

    def _encode_one(self, text: str) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        out = []
        for t in texts:
            if t not in self._cache:
                self._cache[t] = self._encode_one(t)
                if len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        return torch.stack(out)

    def clear_cache(self) -> None:
        self._cache.clear()


class TinyTextEncoder(TextEncoder):
    """Byte embeddings + one transformer layer; deterministic from its weights (saved with our checkpoints)."""

    def __init__(self, text_dim: int, text_len: int, seed: int = 0):
        super().__init__()
        self.text_dim, self.text_len = text_dim, text_len
        g = torch.Generator().manual_seed(seed)
        self.embed = nn.Embedding(257, text_dim)
        nn.init.normal_(self.embed.weight, std=1.0, generator=g)
        self.layer = nn.TransformerEncoderLayer(text_dim, nhead=2 if text_dim % 2 == 0 else 1,
                                                dim_feedforward=2 * text_dim, batch_first=True, dropout=0.0)

    @classmethod
    def for_config(cls, cfg, seed: int = 0) -> "TinyTextEncoder":
        return cls(cfg.text_dim, cfg.text_len, seed)

    def _encode_one(self, text: str) -> torch.Tensor:
        ids = list(text.encode("utf-8"))[: self.text_len] or [256]  # 256 = "empty" token
        x = self.embed(torch.tensor(ids, device=self.embed.weight.device))[None]
        self.layer.eval()
        return self.layer(x)[0]  # [n, text_dim]; the DiT pads to text_len

    def encode(self, texts):
        emb = [super(TinyTextEncoder, self).encode([t])[0] for t in texts]
        n = max(e.shape[0] for e in emb)
        return torch.stack([torch.cat([e, e.new_zeros(n - e.shape[0], e.shape[1])]) for e in emb])

    def save_pretrained(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        from safetensors.torch import save_file
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / "model.safetensors"))
        (path / "config.json").write_text(json.dumps({"kind": "tiny", "text_dim": self.text_dim,
                                                      "text_len": self.text_len}))


class UMT5TextEncoder(TextEncoder):
    """UMT5-XXL encoder + tokenizer from a local directory (transformers format); never downloads."""

    def __init__(self, model, tokenizer, text_len: int = 512):
        super().__init__()
        self.model, self.tokenizer, self.text_len = model.eval(), tokenizer, text_len

    @classmethod
    def from_local(cls, path, text_len: int = 512, dtype=torch.bfloat16) -> "UMT5TextEncoder":
        from transformers import AutoTokenizer, UMT5EncoderModel
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = UMT5EncoderModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
        return cls(model, tok, text_len)

    def _encode_one(self, text: str) -> torch.Tensor:
        ids = self.tokenizer([text], max_length=self.text_len, truncation=True, return_tensors="pt")
        dev = next(self.model.parameters()).device
        hidden = self.model(input_ids=ids.input_ids.to(dev), attention_mask=ids.attention_mask.to(dev))
        n = int(ids.attention_mask.sum())
        return hidden.last_hidden_state[0, :n].float()  # Wan keeps only the real tokens, then zero-pads

    def encode(self, texts):
        emb = [super(UMT5TextEncoder, self).encode([t])[0] for t in texts]
        n = max(e.shape[0] for e in emb)
        return torch.stack([torch.cat([e, e.new_zeros(n - e.shape[0], e.shape[1])]) for e in emb])

    def save_pretrained(self, path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps({"kind": "umt5", "path": str(path)}))


def load_text_encoder(path, cfg) -> TextEncoder:
    """Text encoder saved next to a checkpoint: ``text/config.json`` says which kind."""
    from safetensors.torch import load_file

    from .loading import CheckpointError
    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file}: missing text encoder config")
    meta = json.loads(cfg_file.read_text())
    if meta.get("kind") == "tiny":
        enc = TinyTextEncoder(cfg.text_dim, cfg.text_len)
        enc.load_state_dict(load_file(str(path / "model.safetensors")))
        return enc
    if meta.get("kind") == "umt5":
        return UMT5TextEncoder.from_local(meta.get("local_dir", path), cfg.text_len)
    raise CheckpointError(f"{cfg_file}: unknown text encoder kind {meta.get('kind')!r}")
