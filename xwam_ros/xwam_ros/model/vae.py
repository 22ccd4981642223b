"""The video autoencoder: diffusers' AutoencoderKLWan in its Wan2.2 form (residual, 2x2 pixel patchify, 4x16x16
stride), plus the latent mean/std normalisation the DiT expects, (z - mean) / std. Every camera view is encoded as
its own video (the VAE is causal in time: latent frame 0 is the first image alone)."""
from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, WanRMS_norm, patchify
from torch import nn

from .attention import FusedWeights, SourceWatch


# The released Wan2.2 VAE (Wan2.2-TI2V-5B): architecture and the per-channel latent statistics the DiT was trained
# with. The original .pth holds only weights, so the statistics live here.
WAN22_VAE_CONFIG = dict(
    base_dim=160, decoder_base_dim=256, z_dim=48, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
    scale_factor_temporal=4, scale_factor_spatial=16,
    latents_mean=[-0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
                  0.0891, 0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
                  -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313,
                  -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
                  0.3573, -0.0548, -0.1681, -0.0667],
    latents_std=[0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
                 0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
                 0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
                 0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744])

# original Wan residual-block parameter names -> diffusers'
_RESIDUAL = {"residual.0.gamma": "norm1.gamma", "residual.2.weight": "conv1.weight", "residual.2.bias": "conv1.bias",
             "residual.3.gamma": "norm2.gamma", "residual.6.weight": "conv2.weight", "residual.6.bias": "conv2.bias",
             "shortcut.weight": "conv_shortcut.weight", "shortcut.bias": "conv_shortcut.bias"}
_RULES = [  # (pattern on the original key, function of the match -> diffusers key)
    (r"conv1\.(weight|bias)", lambda m: f"quant_conv.{m[1]}"),
    (r"conv2\.(weight|bias)", lambda m: f"post_quant_conv.{m[1]}"),
    (r"(encoder|decoder)\.conv1\.(weight|bias)", lambda m: f"{m[1]}.conv_in.{m[2]}"),
    (r"(encoder|decoder)\.head\.0\.gamma", lambda m: f"{m[1]}.norm_out.gamma"),
    (r"(encoder|decoder)\.head\.2\.(weight|bias)", lambda m: f"{m[1]}.conv_out.{m[2]}"),
    (r"(encoder|decoder)\.middle\.([02])\.(.+)",
     lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) // 2}.{_RESIDUAL.get(m[3], m[3])}"),
    (r"(encoder|decoder)\.middle\.1\.(.+)", lambda m: f"{m[1]}.mid_block.attentions.0.{m[2]}"),
    (r"encoder\.downsamples\.(\d+)\.downsamples\.(\d+)\.((?:residual|shortcut)\..+)",
     lambda m: f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{_RESIDUAL.get(m[3], m[3])}"),
    (r"encoder\.downsamples\.(\d+)\.downsamples\.\d+\.((?:resample|time_conv)\..+)",
     lambda m: f"encoder.down_blocks.{m[1]}.downsampler.{m[2]}"),
    (r"decoder\.upsamples\.(\d+)\.upsamples\.(\d+)\.((?:residual|shortcut)\..+)",
     lambda m: f"decoder.up_blocks.{m[1]}.resnets.{m[2]}.{_RESIDUAL.get(m[3], m[3])}"),
    (r"decoder\.upsamples\.(\d+)\.upsamples\.\d+\.((?:resample|time_conv)\..+)",
     lambda m: f"decoder.up_blocks.{m[1]}.upsampler.{m[2]}"),
]


def convert_wan22_vae_keys(original: dict) -> dict:
    """Original Wan2.2 VAE state dict (``Wan2.2_VAE.pth``) -> diffusers AutoencoderKLWan names. Keys no rule
    matches are kept, so a strict load reports them."""
    out = {}
    for key, val in original.items():
        new = key
        for pat, fn in _RULES:
            m = re.fullmatch(pat, key)
            if m:
                new = fn(m)
                break
        out[new] = val
    return out


def strip_common_prefix(sd: dict, prefixes) -> dict:
    """Remove a wrapper prefix (e.g. ``model.``) when every key carries it."""
    for pre in prefixes:
        if sd and all(k.startswith(pre) for k in sd):
            return {k[len(pre):]: v for k, v in sd.items()}
    return sd


def _error(msg: str):
    from .loading import CheckpointError

    return CheckpointError(msg)


# LatentCodec.tiny's spatial strides: (dim_mult, temporal downsample per stage) of the Wan2.2 VAE code path
_TINY_STAGES = {16: ([1, 2, 4, 4], [False, True, True]), 8: ([1, 2, 2], [True, True])}
TINY_SPATIAL_STRIDES = tuple(sorted(_TINY_STAGES))


class FirstFrameCausalConv3d(WanCausalConv3d):
    """diffusers' WanCausalConv3d with one exact shortcut. A single frame with no cached frames before it (latent
    frame 0: the first chunk of every encode and decode, so every policy query's frame-0 encode) is padded in time
    with kernel-1 zero frames, which meet every kernel slice but the last: the output is a 2D convolution with that
    slice, at 1/3 of the arithmetic for 3-frame kernels (the tiny preset's 3-view frame-0 encode, 1 thread: 17.9 ->
    14.1 ms at stride 16; at stride 8 other work dominates and it is unchanged). Same parameters and state dict;
    everything else runs diffusers' forward."""

    def forward(self, x, cache_x=None) -> torch.Tensor:
        kt = self.kernel_size[0]
        if cache_x is None and x.shape[2] == 1 and self._padding[4] == kt - 1 and self.stride[0] == 1 \
                and self.dilation[0] == 1:
            pad = self._padding  # (w, w, h, h, time, 0): symmetric in space, so the convolution pads (no copy)
            x2d, w2d = x[:, :, 0], self.weight[:, :, kt - 1]
            args = (self.stride[1:], (pad[2], pad[0]), self.dilation[1:], self.groups)
            if torch.is_grad_enabled():
                return F.conv2d(x2d, w2d, self.bias, *args).unsqueeze(2)
            w2d = self.__dict__.setdefault("_frame0_weight", FusedWeights()).get([w2d])  # contiguous, cached
            if _ONEDNN_CONV and x2d.device.type == "cpu" and x2d.dtype == torch.float32:
                packed = self.__dict__.setdefault("_frame0_packed", _PackedConvWeight()).get(self.weight, w2d,
                                                                                               x2d.shape, *args)
                return torch.ops.mkldnn._convolution_pointwise(x2d, packed, self.bias, args[1], args[0], args[2],
                                                               args[3], "none", [], "").unsqueeze(2)
            return F.conv2d(x2d, w2d, self.bias, *args).unsqueeze(2)
        return super().forward(x, cache_x)


_ONEDNN_CONV = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise")


class _PackedConvWeight:
    """A 2D kernel in oneDNN's blocked layout, reordered once per input shape. ``F.conv2d`` on a CPU reorders the
    plain weight on every call, which dominates the tiny VAE's small convolutions (64 channels at 4x4: 162 vs
    104 us per call, 1 thread). Rebuilt when the source weight changes (new storage or in-place update)."""

    def __init__(self):
        self._watch, self._packed = SourceWatch(), {}

    # oneDNN tensors have no storage to copy or pickle; a copied module (XWAMPolicy.with_own_codec deep-copies the
    # codec) has weights of its own anyway and packs them on first use
    def __deepcopy__(self, memo) -> "_PackedConvWeight":
        return _PackedConvWeight()

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def get(self, source: torch.Tensor, weight: torch.Tensor, input_shape, stride, padding, dilation,
            groups) -> torch.Tensor:
        """``weight`` (the 2D kernel) packed for ``input_shape``; ``source`` is the parameter it comes from."""
        if self._watch.changed((source,)):
            self._packed = {}
        shape = tuple(input_shape)
        if shape not in self._packed:
            self._packed[shape] = torch.ops.mkldnn._reorder_convolution_weight(
                weight, list(padding), list(stride), list(dilation), groups, list(shape))
        return self._packed[shape]


class ChannelRMSNorm(WanRMS_norm):
    """diffusers' WanRMS_norm with the channel norm as a sum of squares: ``F.normalize`` over dim 1 of a
    [B, C, T, H, W] tensor takes torch's strided vector-norm kernel, 30x slower than the sum here (407 vs 13 us at
    [3, 16, 1, 32, 32], 1 thread) and a quarter of the tiny VAE's encode. Same math: x / max(|x|, 1e-12) * sqrt(C) *
    gamma + bias, in float32 for half-precision inputs; same parameters and state dict."""

    def forward(self, x) -> torch.Tensor:
        if not self.channel_first:
            return super().forward(x)
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        inv = torch.rsqrt((xf * xf).sum(dim=1, keepdim=True).clamp_min(1e-24))  # 1 / max(|x|, 1e-12)
        return (xf * inv).to(x.dtype) * (self.scale * self.gamma) + self.bias


_FAST = {WanCausalConv3d: FirstFrameCausalConv3d, WanRMS_norm: ChannelRMSNorm}


def use_fast_paths(vae: AutoencoderKLWan) -> AutoencoderKLWan:
    """Give every causal convolution of ``vae`` the frame-0 shortcut and every norm the sum-of-squares form
    (subclasses: isinstance checks, deep copies and state dicts are unchanged)."""
    for m in vae.modules():
        if type(m) in _FAST:
            m.__class__ = _FAST[type(m)]
    return vae


class LatentCodec(nn.Module):
    def __init__(self, vae: AutoencoderKLWan):
        super().__init__()
        self.vae = use_fast_paths(vae).eval().requires_grad_(False)
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

    def encoder_key(self) -> str:
        """A hash of everything that determines the (normalised) latents: encoder weights, latent statistics and
        strides. The decoder is not in it: refining the decoder keeps cached latents valid."""
        import hashlib
        h = hashlib.sha1(repr((self.vae.config.z_dim, self.vae.config.scale_factor_spatial,
                               self.vae.config.scale_factor_temporal)).encode())
        for name in ("encoder", "quant_conv"):
            for k, v in sorted(getattr(self.vae, name).state_dict().items()):
                h.update(k.encode())
                h.update(v.detach().float().cpu().numpy().tobytes())
        for t in (self.mean, self.std):
            h.update(t.cpu().numpy().tobytes())
        return h.hexdigest()

    def check_matches(self, cfg) -> "LatentCodec":
        """Raise if the model config expects other latents than this autoencoder makes."""
        c = self.vae.config
        if c.z_dim != cfg.latent_channels or c.scale_factor_spatial != cfg.vae_stride[1] \
                or c.scale_factor_temporal != cfg.vae_stride[0]:
            raise _error(f"the VAE makes {c.z_dim} channels at stride ({c.scale_factor_temporal}, "
                         f"{c.scale_factor_spatial}) but the model config expects {cfg.latent_channels} channels at "
                         f"vae_stride {tuple(cfg.vae_stride)}")
        return self

    @classmethod
    def tiny(cls, cfg, seed: int = 0, base_dim: int = 16) -> "LatentCodec":
        """A small member of the Wan2.2 VAE family (the 5B VAE's code path: residual blocks, 2x2 patchify, 4x in
        time) for CPU configs. vae_stride (4, 16, 16) is Wan2.2's three 2x downsamples; (4, 8, 8) drops the last
        one, which keeps an 8x8 latent grid per view at 64x64 frames (a quarter of the encoder cost of 128x128)."""
        stages = _TINY_STAGES
        if tuple(cfg.vae_stride)[0] != 4 or cfg.vae_stride[1] != cfg.vae_stride[2] or cfg.vae_stride[1] not in stages:
            raise ValueError(f"XWAMConfig.vae_stride: the tiny Wan2.2-family VAE has (4, 16, 16) or (4, 8, 8), "
                             f"got {cfg.vae_stride}")
        dim_mult, temporal = stages[cfg.vae_stride[1]]
        g = torch.random.fork_rng()
        with g:
            torch.manual_seed(seed)
            vae = AutoencoderKLWan(base_dim=base_dim, decoder_base_dim=base_dim, z_dim=cfg.latent_channels,
                                   dim_mult=dim_mult, temperal_downsample=temporal,
                                   num_res_blocks=1, is_residual=True, in_channels=12, out_channels=12, patch_size=2,
                                   scale_factor_temporal=4, scale_factor_spatial=cfg.vae_stride[1],
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

    @classmethod
    def from_original(cls, path, dtype: torch.dtype = torch.float32, **config) -> "LatentCodec":
        """The original ``Wan2.2_VAE.pth`` (Wan's own module layout), converted to diffusers names. ``config``
        overrides WAN22_VAE_CONFIG (only for non-standard VAEs, e.g. tests)."""
        from .loading import check_state_dict

        path = Path(path)
        if not path.is_file():
            raise _error(f"{path}: file not found (expected the original Wan2.2_VAE.pth)")
        try:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated zip, bad pickle, ...
            raise _error(f"{path}: cannot be read as a torch checkpoint ({type(exc).__name__}: {exc})") from exc
        if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
            sd = sd["state_dict"]
        if not isinstance(sd, dict):
            raise _error(f"{path}: expected a state dict, found {type(sd).__name__}")
        return cls.from_original_state_dict(sd, str(path), dtype, **config)

    @classmethod
    def from_original_state_dict(cls, sd: dict, source: str = "state dict", dtype: torch.dtype = torch.float32,
                                 **config) -> "LatentCodec":
        """An original-layout Wan2.2 VAE state dict, e.g. the ``vae.`` part returned by ``load_official_xwam``
        (a wrapper prefix such as ``model.`` shared by every key is removed)."""
        from .loading import check_state_dict

        sd = strip_common_prefix(sd, ("model.",))
        vae = AutoencoderKLWan(**{**WAN22_VAE_CONFIG, **config})
        sd = convert_wan22_vae_keys(sd)
        check_state_dict(vae, sd, source)
        vae.load_state_dict(sd, strict=True)
        return cls(vae.to(dtype))

    def save_pretrained(self, path) -> None:
        self.vae.save_pretrained(str(path))

    # encode/decode run on the module's device and return on the caller's: the policy keeps everything on one
    # device, the latent cache hands in and stores CPU tensors while the codec may sit on a GPU.
    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """[B, V, 3, F, H, W] in [-1, 1] -> normalised latents [B, C, T, V, h, w] (posterior mode), on the input's
        device."""
        if video.ndim != 6 or video.shape[2] != 3:
            raise ValueError(f"video must be [B, V, 3, F, H, W], got {tuple(video.shape)}")
        b, v = video.shape[:2]
        w = next(self.vae.parameters())
        z = self._posterior_mode(video.flatten(0, 1).to(w.device, w.dtype)).float()
        z = (z - self.mean) / self.std
        return z.unflatten(0, (b, v)).permute(0, 2, 3, 1, 4, 5).to(video.device)

    def _posterior_mode(self, x: torch.Tensor) -> torch.Tensor:
        """diffusers' ``encode(x).latent_dist.mode()``. A single frame (every policy query's frame 0) goes through the
        encoder once without its chunk cache: with one frame the first chunk is the whole input, and with no cache
        every causal convolution and downsampler behaves as in that first chunk (zero history, no time conv) while
        the copies diffusers keeps for a next chunk are skipped (test_vae_text: equal to diffusers' encode)."""
        vae = self.vae
        if x.shape[2] != 1 or vae.use_tiling:
            return vae.encode(x).latent_dist.mode()
        if vae.config.patch_size is not None:
            x = patchify(x, patch_size=vae.config.patch_size)
        return vae.quant_conv(vae.encoder(x)).chunk(2, dim=1)[0]  # the posterior's mean

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised [B, C, T, V, h, w] -> [B, V, 3, F, H, W] in about [-1, 1], on the input's device."""
        b, v = latents.shape[0], latents.shape[3]
        w = next(self.vae.parameters())
        z = latents.permute(0, 3, 1, 2, 4, 5).flatten(0, 1).to(w.device).float() * self.std + self.mean
        x = self.vae.decode(z.to(w.dtype)).sample.float()
        return x.unflatten(0, (b, v)).to(latents.device)
