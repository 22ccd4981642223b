"""The video autoencoder: diffusers' AutoencoderKLWan in its Wan2.2 form (residual, patchified, 4x16x16 stride),
with the latent mean/std normalisation the DiT expects. Every camera view is its own video."""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKLWan
from torch import nn


class LatentCodec(nn.Module):
    def __init__(self, vae: AutoencoderKLWan):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        z = vae.config.z_dim
        mean = torch.tensor(vae.config.latents_mean if vae.config.latents_mean else [0.0] * z)
        std = torch.tensor(vae.config.latents_std if vae.config.latents_std else [1.0] * z)
        if mean.numel() != z or std.numel() != z:
            raise ValueError(f"VAE latent statistics have {mean.numel()}/{std.numel()} values, expected z_dim {z}")
        self.register_buffer("mean", mean.view(1, z, 1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, z, 1, 1, 1), persistent=False)

    @classmethod
    def tiny(cls, cfg, seed: int = 0, base_dim: int = 16) -> "LatentCodec":
        """A small member of the Wan2.2 VAE family (same code path as the 5B's VAE) for CPU configs."""
        if cfg.vae_stride != (4, 16, 16):
            raise ValueError(f"the Wan2.2 VAE family has stride (4, 16, 16), config has {cfg.vae_stride}")
        torch.manual_seed(seed)
        vae = AutoencoderKLWan(base_dim=base_dim, decoder_base_dim=base_dim, z_dim=cfg.latent_channels,
                               num_res_blocks=1, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
                               scale_factor_temporal=4, scale_factor_spatial=16,
                               latents_mean=[0.0] * cfg.latent_channels, latents_std=[1.0] * cfg.latent_channels)
        return cls(vae)

    @classmethod
    def from_pretrained(cls, path) -> "LatentCodec":
        path = Path(path)
        if not (path / "config.json").is_file():
            from .loading import CheckpointError
            raise CheckpointError(f"{path / 'config.json'}: missing; expected a diffusers AutoencoderKLWan directory")
        return cls(AutoencoderKLWan.from_pretrained(str(path), local_files_only=True))

    def save_pretrained(self, path) -> None:
        self.vae.save_pretrained(str(path))

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, V, 3, F, H, W] in [-1, 1] -> normalised latents [B, C, T, V, h, w] (posterior mean)."""
        b, v = video.shape[:2]
        dtype = next(self.vae.parameters()).dtype
        z = self.vae.encode(video.flatten(0, 1).to(dtype)).latent_dist.mode().float()
        z = (z - self.mean) / self.std
        return z.unflatten(0, (b, v)).permute(0, 2, 3, 1, 4, 5)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised [B, C, T, V, h, w] -> [B, V, 3, F, H, W] in about [-1, 1]."""
        b, v = latents.shape[0], latents.shape[3]
        z = latents.permute(0, 3, 1, 2, 4, 5).flatten(0, 1).float() * self.std + self.mean
        dtype = next(self.vae.parameters()).dtype
        x = self.vae.decode(z.to(dtype)).sample.float()
        return x.unflatten(0, (b, v))
