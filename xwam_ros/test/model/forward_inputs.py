"""Seeded inputs of one transformer forward at a config (shared by the device and fast-path tests)."""
import torch


def forward_inputs(c, seed: int = 0) -> tuple:
    """(video latents, video timesteps (frame 0 clean), text context, actions, action timesteps, states, state
    timesteps) as XWAMTransformer.forward takes them."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(1, c.latent_channels, c.latent_frames, c.num_views, c.latent_h, c.latent_w, generator=g)
    tv = torch.full((1, c.latent_frames), 700)
    tv[:, 0] = 0
    return (v, tv, torch.randn(1, 5, c.text_dim, generator=g), torch.randn(1, c.num_actions, c.action_dim, generator=g),
            torch.full((1, c.num_actions), 500), torch.randn(1, c.num_states, c.state_dim, generator=g),
            torch.full((1, c.num_states), 500))
