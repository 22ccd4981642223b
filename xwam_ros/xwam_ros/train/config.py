"""Training configuration: a typed dataclass that validates itself, loadable from YAML with CLI overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..model.noise import SAMPLERS


@dataclass
class TrainConfig:
    preset: str = "tiny"
    model: dict = field(default_factory=dict)  # XWAMConfig overrides
    data: str = "procedural"  # "procedural" (built-in clips) or an episode dataset directory (data/episodes.py)
    num_clips: int = 16  # procedural data only
    val_episodes: int = 4  # dataset data: the last N episodes are held out for validation
    clip_stride: int = 0  # dataset data: steps between clip starts; 0 = the model's actions_per_frame
    sampler: str = "ans"  # ans | independent | synchronous
    p_clean: float = 0.5
    batch_size: int = 4  # global; split evenly over processes
    steps: int = 200
    lr: float = 1e-3
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.01
    warmup: int = 20
    grad_clip: float = 1.0
    gradient_checkpointing: bool = False
    text_dropout: float = 0.1
    depth_loss: bool = True
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 100
    keep_last: int = 2
    out_dir: str = "runs/tiny"
    init_from: str = ""  # our checkpoint dir | official X-WAM file/dir (official:<path>) | Wan2.2 dir (wan:<path>)
    cache_dir: str = ""  # latent cache; default <out_dir>/latent_cache
    vae: str = ""  # LatentCodec directory (diffusers layout); "" = the preset's tiny codec (or init_from's)
    val_every: int = 0  # steps between validations; 0 = off
    val_clips: int = 2  # held-out clips (indices after the training clips)
    val_imagine: bool = False  # also full imagination: PSNR of RGB, AbsRel of depth (slower)

    def validate(self) -> "TrainConfig":
        def bad(name, why):
            raise ValueError(f"TrainConfig.{name}: {why}")
        if self.data != "procedural" and not (Path(self.data) / "meta.json").is_file():
            bad("data", f"must be 'procedural' or an episode dataset directory with meta.json, got {self.data!r}")
        if self.val_episodes < 0 or self.clip_stride < 0:
            bad("val_episodes", "val_episodes and clip_stride must be >= 0")
        if self.sampler not in SAMPLERS:
            bad("sampler", f"must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 0 <= self.p_clean <= 1:
            bad("p_clean", "must be in [0, 1]")
        for name in ("batch_size", "steps", "num_clips", "log_every", "ckpt_every", "keep_last"):
            if int(getattr(self, name)) < 1:
                bad(name, f"must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            bad("lr", "lr and grad_clip must be positive, weight_decay non-negative")
        if not 0 <= self.warmup < self.steps:
            bad("warmup", f"must be in [0, steps={self.steps})")
        if self.val_every < 0 or self.val_clips < (1 if self.val_every else 0):
            bad("val_every", "must be >= 0, with val_clips >= 1 when validation is on")
        if not 0 <= self.text_dropout < 1:
            bad("text_dropout", "must be in [0, 1)")
        return self

    @classmethod
    def load(cls, path=None, overrides: list | None = None) -> "TrainConfig":
        d = yaml.safe_load(Path(path).read_text()) if path else {}
        for item in overrides or []:
            key, _, value = item.partition("=")
            if not _:
                raise ValueError(f"override {item!r} must look like key=value")
            d[key] = yaml.safe_load(value)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown fields {unknown}")
        if "betas" in d:
            d["betas"] = tuple(d["betas"])
        return cls(**d).validate()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d
