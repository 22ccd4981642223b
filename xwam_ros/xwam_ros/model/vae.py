"""The video autoencoder: diffusers' AutoencoderKLWan in its Wan2.2 form (residual, 2x2 pixel patchify, 4x16x16
stride), plus the latent mean/std normalisation the DiT expects, (z - mean) / std. Every camera view is encoded as
its own video (the VAE is causal in time: latent frame 0 is the first image alone)."""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from torch import nn


def _error(msg: str):
    from .loading import CheckpointError

    return CheckpointError(msg)


class LatentCodec(nn.Module):
    def __init__(self, vae: AutoencoderKLWan):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean if vae.config.latents_mean else [0.0] * z, dtype=torch.float32)
        std = torch.tensor(vae.config.latents_std if vae.config.latents_std else [1.0] * z, dtype=torch.float32)
        if mean.numel() != z or std.numel() != z:
            raise ValueError(f"VAE latent statistics have {mean.numel()}/{std.numel()} values, expected z_dim {z}")
        self.register_buffer("mean", mean.view(1, z, 1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, z, 1, 1, 1), persistent=False)

    @property
    def latent_channels(self) -> int:
        return self.vae.config.z_dim

    @classmethod
    def tiny(cls, cfg, seed: int = 0, base_dim: int = 16) -> "LatentCodec":
        """A small member of the Wan2.2 VAE family (same code path as the 5B's VAE) for CPU configs."""
        if tuple(cfg.vae_stride) != (4, 16, 16):
            raise ValueError(f"XWAMConfig.vae_stride: the Wan2.2 VAE family has (4, 16, 16), got {cfg.vae_stride}")
        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(seed)
            vae = AutoencoderKLWan(base_dim=base_dim, decoder_base_dim=base_dim, z_dim=cfg.latent_channels,
                                   num_res_blocks=1, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
                                   scale_factor_temporal=4, scale_factor_spatial=16,
                                   latents_mean=[0.0] * cfg.latent_channels, latents_std=[1.0] * cfg.latent_channels)
        return cls(vae)

    @classmethod
    def from_pretrained(cls, path, dtype: torch.dtype = torch.float32) -> "LatentCodec":
        """A diffusers AutoencoderKLWan directory (save_pretrained layout), local files only."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise _error(f"{path / 'config.json'}: missing; expected a diffusers AutoencoderKLWan directory")
        try:
            vae = AutoencoderKLWan.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
        except (OSError, ValueError, RuntimeError) as exc:
            raise _error(f"{path}: cannot load the VAE ({type(exc).__name__}: {exc})") from exc
        if not vae.config.is_residual or vae.config.patch_size != 2:
            raise _error(f"{path / 'config.json'}: not a Wan2.2 VAE (is_residual={vae.config.is_residual}, "
                         f"patch_size={vae.config.patch_size})")
        return cls(vae)

    def save_pretrained(self, path) -> None:
        self.vae.save_pretrained(str(path))

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, V, 3, F, H, W] in [-1, 1] -> normalised latents [B, C, T, V, h, w] (posterior mode)."""
        if video.ndim != 6 or video.shape[2] != 3:
            raise ValueError(f"video must be [B, V, 3, F, H, W], got {tuple(video.shape)}")
        b, v = video.shape[:2]
        dtype = next(self.vae.parameters()).dtype
        z = self.vae.encode(video.flatten(0, 1).to(dtype)).latent_dist.mode().float()
        z = (z - self.mean) / self.std
        return z.unflatten(0, (b, v)).permute(0, 2, 3, 1, 4, 5)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised [B, C, T, V, h, w] -> [B, V, 3, F, H, W] in about [-1, 1]."""
        b, v = latents.shape[0], latents.shape[3]
        z = latents.permute(0, 3, 1, 2, 4, 5).flatten(0, 1).float() * self.std + self.mean
        dtype = next(self.vae.parameters()).dtype
        x = self.vae.decode(z.to(dtype)).sample.float()
        return x.unflatten(0, (b, v))
