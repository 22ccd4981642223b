"""XWAMPolicy: the façade the ROS node, the bag evaluator, the simulator loop and the trainer's validation call.

One query = one index-aligned denoising run (see schedule.py). ``predict_action_chunk()`` stops after ``action_steps`` calls with
the depth branch off and returns the denormalised action chunk and predicted states; the video is left half-denoised
in an opaque resumable state. ``continue_imagination()`` runs the remaining calls from that state -- with the depth
branch only on the last call, which is exact because the main branch never reads depth tokens and only the last
call's depth latent is decoded -- and decodes RGB and inverse depth through the VAE. ``imagine()`` is both in one go.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..geometry.depth import inverse_depth_to_metric
from .attention import SourceWatch
from .normalize import Normalizer
from .schedule import AsyncSchedule, DenoiseState, LinearUniPC


@dataclass
class Observation:
    rgb: np.ndarray  # [V, H, W, 3] uint8, views in config order, model size
    state: np.ndarray  # [S] physical units
    instruction: str = ""
    depth: np.ndarray | None = None  # [V, H, W] metres; evaluation only, not a model input


@dataclass
class PolicyResult:
    actions: np.ndarray  # [num_actions, action_dim] physical units
    states: np.ndarray  # [num_states, state_dim] physical units (state 0 is the given one)
    latency: float
    timings: dict
    action_steps: int
    resume: object = field(default=None, repr=False)  # opaque: what continue_imagination needs


@dataclass
class Imagination:
    rgb: np.ndarray  # [V, F, H, W, 3] uint8 (frame 0 reconstructs the observation)
    depth: np.ndarray  # [V, F, H, W] float32 metres
    actions: np.ndarray
    states: np.ndarray
    latency: float
    video_steps: int
    timings: dict


@dataclass
class _Resume:
    state: DenoiseState
    cond_latent: torch.Tensor
    text_cache: object
    uncond_cache: object
    seed: int
    state0: torch.Tensor | None = None  # normalised current state, re-imposed after every state step


class XWAMPolicy:
    def __init__(self, transformer, codec, text_encoder, normalizer: Normalizer, config, device="cpu",
                 dtype=torch.float32):
        self.config = config
        self.device = torch.device(device)
        self.dtype = dtype
        self.transformer = transformer.to(self.device, dtype).eval()
        self.codec = codec.to(self.device).eval() if hasattr(codec, "to") else codec
        if hasattr(self.codec, "check_matches"):
            self.codec.check_matches(config)
        self.text_encoder = text_encoder.to(self.device).eval() if hasattr(text_encoder, "to") else text_encoder
        self.normalizer = normalizer
        if normalizer.action_dim != config.action_dim or normalizer.state_dim != config.state_dim:
            raise ValueError(f"normalizer dims ({normalizer.action_dim}, {normalizer.state_dim}) do not match the "
                             f"config (action_dim {config.action_dim}, state_dim {config.state_dim})")
        self.schedule = AsyncSchedule(config.video_steps, config.action_steps, config.shift)
        self._text_caches: OrderedDict = OrderedDict()  # instruction -> (weights key, kept sources, TextCache)

    # --- construction ----------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config, seed: int = 0, normalizer: Normalizer | None = None, device="cpu"):
        """A randomly initialised policy (demos, tests, the starting point of training from scratch)."""
        from .text import TinyTextEncoder
        from .transformer import XWAMTransformer
        from .vae import LatentCodec

        config.validate()
        with torch.random.fork_rng(devices=[]):  # seeded initialisation without touching the caller's global RNG
            torch.manual_seed(seed)
            net = XWAMTransformer(config)
        codec = LatentCodec.tiny(config, seed=seed)
        text = TinyTextEncoder.for_config(config, seed=seed)
        norm = normalizer or Normalizer.identity(config.action_dim, config.state_dim)
        return cls(net, codec, text, norm, config, device=device)

    @classmethod
    def from_pretrained(cls, path, device="cpu", dtype=torch.float32):
        from .loading import CheckpointError, load_checkpoint
        from .text import load_text_encoder
        from .vae import LatentCodec

        path = Path(path)
        net, config, norm_dict, _ = load_checkpoint(path)
        if norm_dict is None:
            raise CheckpointError(f"{path / 'normalization.json'}: missing; a policy needs its normalisation stats")
        codec = LatentCodec.from_pretrained(path / "vae") if (path / "vae").is_dir() else LatentCodec.tiny(config)
        text = load_text_encoder(path / "text", config)
        return cls(net, codec, text, Normalizer.from_dict(norm_dict), config, device=device, dtype=dtype)

    def save_pretrained(self, path) -> None:
        from .loading import save_checkpoint

        path = Path(path)
        save_checkpoint(path, self.transformer, self.config, normalizer=self.normalizer.to_dict())
        self.codec.save_pretrained(path / "vae")
        self.text_encoder.save_pretrained(path / "text")

    def to(self, device) -> "XWAMPolicy":
        """Move the transformer, the VAE and the text encoder (all three run in a query) to ``device``."""
        self.device = torch.device(device)
        self.transformer.to(self.device)
        for name in ("codec", "text_encoder"):
            mod = getattr(self, name)
            if hasattr(mod, "to"):
                setattr(self, name, mod.to(self.device))
        return self

    def for_imagination(self) -> "XWAMPolicy":
        """The same policy (shared transformer weights; it keeps no state between calls) with its own video codec,
        for a second thread: diffusers' Wan VAE keeps its causal-convolution feature cache on the module between
        the chunks of one encode/decode, so two threads sharing one codec would corrupt each other's frames."""
        own = copy.copy(self)
        own.codec = copy.deepcopy(self.codec)
        return own

    def reset(self) -> None:
        """No recurrent state across queries (X-WAM has no history); kept for API symmetry with other policies."""

    # --- helpers ---------------------------------------------------------------------------------------------------
    def _check_obs(self, obs: Observation) -> None:
        c = self.config
        want = (c.num_views, c.height, c.width, 3)
        if obs.rgb.shape != want or obs.rgb.dtype != np.uint8:
            raise ValueError(f"observation rgb must be uint8 {want}, got {obs.rgb.dtype} {obs.rgb.shape}")
        if obs.state.shape != (c.state_dim,) or not np.all(np.isfinite(obs.state)):
            raise ValueError(f"observation state must be {c.state_dim} finite values, got {obs.state}")

    def _encode_frame0(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb).to(self.device).float().div(127.5).sub(1.0)  # [V,H,W,3] -> [-1, 1]
        x = x.permute(0, 3, 1, 2)[None, :, :, None]  # [1, V, 3, 1, H, W]
        return self.codec.encode(x).to(self.device, self.dtype)  # [1, C, 1, V, h, w]

    def _text_params(self):
        """The parameters a TextCache depends on: the text MLP and every block's cross-attention k, v, norm_k."""
        net = self.transformer
        blocks = list(net.blocks) + list(net.extra_blocks[0])
        mods = [net.text_embedding] + [m for b in blocks for m in (b.cross_attn.k, b.cross_attn.v, b.cross_attn.norm_k)]
        return [p for m in mods for p in m.parameters()]

    def _text(self, instruction: str):
        """The instruction's cross-attention K/V for every block, computed once per instruction and reused until a
        weight it depends on changes (training between validations, ``load_state_dict``, ``.to()``)."""
        entry = self._text_caches.get(instruction)
        if entry is None:
            entry = self._text_caches[instruction] = [SourceWatch(), None]
        if entry[0].changed(self._text_params()) or entry[1] is None:
            entry[1] = None  # an error below leaves no stale K/V behind the new key
            emb = self.text_encoder.encode([instruction]).to(self.device, self.dtype)
            entry[1] = self.transformer.prepare_text(emb)
        self._text_caches.move_to_end(instruction)
        while len(self._text_caches) > 8:
            self._text_caches.popitem(last=False)
        return entry[1]

    def _net(self, st: DenoiseState, r: _Resume, t_video: int, t_action: int, run_depth: bool):
        """One network call at integer timesteps (the official convention: the scheduler's int64 timesteps);
        frame 0 and state 0 are clean conditions at timestep 0."""
        c = self.config
        video = st.video.clone()
        video[:, :, 0] = r.cond_latent[:, :, 0]
        tv = torch.full((1, c.latent_frames), int(t_video), dtype=torch.int64, device=self.device)
        tv[:, 0] = 0
        ta = torch.full((1, c.num_actions), int(t_action), dtype=torch.int64, device=self.device)
        tp = torch.full((1, c.num_states), int(t_action), dtype=torch.int64, device=self.device)
        tp[:, 0] = 0
        out = self.transformer(video, tv, None, st.actions, ta, st.states, tp, run_depth=run_depth,
                               text_cache=r.text_cache)
        if c.cfg_scale != 1.0 and r.uncond_cache is not None:
            un = self.transformer(video, tv, None, st.actions, ta, st.states, tp, run_depth=False,
                                  text_cache=r.uncond_cache)
            g = c.cfg_scale
            out.video = un.video + g * (out.video - un.video)
            out.actions = un.actions + g * (out.actions - un.actions)
            out.states = un.states + g * (out.states - un.states)
        return out

    def _call(self, st: DenoiseState, r: _Resume, i: int, run_depth: bool):
        out = self._net(st, r, *self.schedule.timesteps_at(i), run_depth)
        st.video = st.video_sched.step(out.video.float(), st.video_sched.timesteps[i], st.video.float()).prev_sample
        st.video = st.video.to(self.dtype)
        if i < self.config.action_steps:
            # actions and states share one schedule and UniPC is elementwise: one solver step for both (each step
            # of diffusers' UniPC costs about a millisecond of Python, as much as a tiny-preset network call)
            a_t = st.action_sched.timesteps[i]
            na = st.actions[0].numel()
            joint = lambda a, s: torch.cat([a.float().flatten(1), s.float().flatten(1)], dim=1)  # noqa: E731
            nxt = st.action_sched.step(joint(out.actions, out.states), a_t, joint(st.actions, st.states)).prev_sample
            st.actions = nxt[:, :na].reshape(st.actions.shape).to(self.dtype)
            st.states = nxt[:, na:].reshape(st.states.shape).to(self.dtype)
            st.states[:, 0] = r.state0
        st.calls_done = i + 1
        return out

    # --- public API ------------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_action_chunk(self, obs: Observation, seed: int = 0, depth_every_call: bool = False) -> PolicyResult:
        """The action chunk after ``action_steps`` calls, without depth and without finishing the video.

        ``depth_every_call`` runs the depth branch on every call -- only to time the paper's synchronous baseline
        (its outputs are discarded; actions are identical either way)."""
        res = self.denoise_actions(obs, seed, depth_every_call)
        acts = self.normalizer.denormalize_actions(res.actions[0].float().cpu().numpy())
        sts = self.normalizer.denormalize_states(res.states[0].float().cpu().numpy())
        sts[0] = obs.state
        return dataclasses.replace(res, actions=acts, states=sts)

    @torch.inference_mode()
    def denoise_actions(self, obs: Observation, seed: int = 0, depth_every_call: bool = False) -> PolicyResult:
        """``predict_action_chunk`` before leaving the device: actions [1, Ta, A] and states [1, Tp, S] are the
        normalised tensors on the policy's device (so the whole query can run, e.g., on the meta device)."""
        c = self.config
        self._check_obs(obs)
        t0 = time.perf_counter()
        cond = self._encode_frame0(obs.rgb)
        t1 = time.perf_counter()
        text_cache = self._text(obs.instruction)
        uncond = self._text("") if c.cfg_scale != 1.0 else None
        t2 = time.perf_counter()
        g = torch.Generator().manual_seed(int(seed))
        shape_v = (1, c.latent_channels, c.latent_frames, c.num_views, c.latent_h, c.latent_w)
        video = torch.randn(shape_v, generator=g).to(self.device, self.dtype)
        actions = torch.randn((1, c.num_actions, c.action_dim), generator=g).to(self.device, self.dtype)
        states = torch.randn((1, c.num_states, c.state_dim), generator=g).to(self.device, self.dtype)
        state0 = torch.from_numpy(self.normalizer.normalize_states(obs.state)).to(self.device, self.dtype)
        states[:, 0] = state0
        video_sched, action_sched = LinearUniPC(c.video_steps, c.shift), LinearUniPC(c.action_steps, c.shift)
        # state_sched stays None: states step jointly with the actions on action_sched (see _call)
        st = DenoiseState(video, actions, states, video_sched, action_sched, None)
        r = _Resume(st, cond, text_cache, uncond, int(seed), state0)
        for i in range(c.action_steps):
            self._call(st, r, i, run_depth=depth_every_call)
        t3 = time.perf_counter()
        timings = {"encode": t1 - t0, "text": t2 - t1, "denoise": t3 - t2, "total": t3 - t0}
        return PolicyResult(st.actions, st.states, t3 - t0, timings, c.action_steps, resume=r)

    @torch.inference_mode()
    def continue_imagination(self, result: PolicyResult) -> Imagination:
        """Finish the video from where ``predict_action_chunk()`` stopped (the result is not modified) and decode RGB-D."""
        c = self.config
        t0 = time.perf_counter()
        video, depth_latent, st = self._finish(result)
        t1 = time.perf_counter()
        rgb = self.codec.decode(video.float())[0]  # [V, 3, F, H, W]
        inv = self.codec.decode(depth_latent.float())[0].mean(dim=1)  # pseudo-RGB inverse depth -> [V, F, H, W]
        t2 = time.perf_counter()
        rgb_u8 = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 4, 1).cpu().numpy()
        depth = inverse_depth_to_metric(inv.cpu().numpy(), *c.depth_bounds())
        acts = self.normalizer.denormalize_actions(st.actions[0].float().cpu().numpy())
        sts = self.normalizer.denormalize_states(st.states[0].float().cpu().numpy())
        timings = {"denoise": t1 - t0, "decode": t2 - t1}
        return Imagination(rgb_u8, depth, acts, sts, result.latency + (t2 - t0), c.video_steps, timings)

    @torch.inference_mode()
    def denoise_video(self, result: PolicyResult) -> tuple[torch.Tensor, torch.Tensor]:
        """The remaining calls from where ``predict_action_chunk()`` stopped, without decoding: (video latent
        [1, C, T, V, h, w] with frame 0 the condition, depth latent of the last call). The result is not modified."""
        video, depth, _ = self._finish(result)
        return video, depth

    def _finish(self, result: PolicyResult):
        c = self.config
        if not isinstance(result.resume, _Resume):
            raise ValueError("this PolicyResult carries no resumable state")
        r = copy.copy(result.resume)
        st = r.state.clone()
        out = None
        for i in range(st.calls_done, c.video_steps):
            out = self._call(st, r, i, run_depth=(i == c.video_steps - 1))
        if out is None:  # action_steps == video_steps: the last call already happened without depth
            out = self._net(st, r, *self.schedule.timesteps_at(c.video_steps - 1), run_depth=True)
        video = st.video.clone()
        video[:, :, 0] = r.cond_latent[:, :, 0]
        return video, out.depth, st

    def imagine(self, obs: Observation, seed: int = 0) -> Imagination:
        """All ``video_steps`` calls (actions finish after ``action_steps``), depth, decoded RGB-D."""
        res = self.predict_action_chunk(obs, seed)
        imag = self.continue_imagination(res)
        imag.states[0] = obs.state
        return imag

    def set_action_steps(self, action_steps: int) -> None:
        """Switch between ANS's asynchronous inference (few action calls) and the synchronous baseline
        (``action_steps == video_steps``: actions follow the video's full schedule)."""
        self.config = dataclasses.replace(self.config, action_steps=int(action_steps)).validate()
        self.schedule = AsyncSchedule(self.config.video_steps, self.config.action_steps, self.config.shift)

    def describe(self) -> str:
        c = self.config
        return json.dumps({"views": list(c.view_names), "size": [c.height, c.width], "action_steps": c.action_steps,
                           "video_steps": c.video_steps, "params": sum(p.numel() for p in self.transformer.parameters())})
