"""The recipe end to end at smoke size on real simulator episodes: VAE, stats, X-WAM, export."""
import json

import numpy as np
import pytest

from xwam_ros.data.clips import cut_clip
from xwam_ros.data.episodes import EpisodeDataset
from xwam_ros.model.policy import Observation, XWAMPolicy
from xwam_ros.model.config import get_preset
from xwam_ros.model.vae import LatentCodec
from xwam_ros.train.recipe import SHIPPED, SMOKE, model_overrides, recipe_main, run_recipe


@pytest.mark.slow  # a few steps of every stage (~1 min)
def test_smoke_recipe_exports_a_policy_on_the_measured_depth_ranges(sim_dataset, tmp_path):
    kw = {k: v for k, v in SMOKE.items() if k != "episodes"}
    summary = run_recipe(tmp_path / "r", seed=0, episodes=2, data=sim_dataset, log=lambda *_: None, **kw)
    assert set(summary) >= {"vae_s", "decoder_s", "train_s", "loss_first", "loss_last", "checkpoint"}
    policy = XWAMPolicy.from_pretrained(tmp_path / "r" / "export")
    c = policy.config
    assert tuple(c.vae_stride) == (4, 8, 8) and (c.latent_h, c.latent_w) == (8, 8)  # the default latent stride
    # each camera's range comes from its own depths: the wrist camera's is centimetres, the static ones' metres
    data = EpisodeDataset(sim_dataset)[0]
    near, far = c.depth_bounds()
    for v in range(c.num_views):
        d = data.depth[v][np.isfinite(data.depth[v])]
        assert np.mean((d >= near[v]) & (d <= far[v])) > 0.98, c.view_names[v]
    wrist = c.view_kinds.index("wrist")
    assert far[wrist] < 0.6 < near[c.view_kinds.index("static")] * 2
    card = json.loads((tmp_path / "r" / "export" / "MODEL_CARD.json").read_text())
    assert card["recipe"]["vae_base"] == SMOKE["vae_base"]
    clip = cut_clip(data, 0, c)
    imag = policy.imagine(Observation(clip.rgb[:, 0], clip.states[0], clip.instruction), seed=0)
    assert imag.depth.shape[0] == c.num_views and np.isfinite(imag.depth).all()


@pytest.mark.slow  # a few steps of every stage, twice the X-WAM stage (~1 min)
def test_shipped_lift_tiny_recipe_continues_training_on_the_same_latents(sim_dataset, tmp_path):
    out = tmp_path / "r"
    assert recipe_main(["--shipped", "lift_tiny", "--smoke", "--data", str(sim_dataset), "--episodes", "2",
                        "--out", str(out)]) == 0
    card = json.loads((out / "export" / "MODEL_CARD.json").read_text())
    assert card["recipe"]["latent_stride"] == 16 and card["recipe"]["depth_range"] == "global"
    assert card["recipe"]["continue_steps"] == 2 and card["recipe"]["checkpoint"] == str(out / "continue" / "last")
    cont = card["continue_config"]
    assert cont["init_from"] == str(out / "run" / "last") and cont["lr"] == SHIPPED["lift_tiny"]["continue_lr"]
    assert cont["seed"] == card["train_config"]["seed"] + 1 and cont["steps"] == 2
    # the continuation kept the checkpoint's normalisation stats and autoencoder: one latent-cache key for both runs
    keys = {f.stem.rsplit("_", 1)[1] for f in (out / "latent_cache").glob("clip_*.pt")}
    assert len(keys) == 1, keys
    c = XWAMPolicy.from_pretrained(out / "export").config
    assert (c.latent_h, c.latent_w) == (4, 4) and c.depth_ranges == ()  # one range for every camera
    near, far = c.depth_bounds()
    assert len(set(map(float, near))) == 1 and len(set(map(float, far))) == 1


@pytest.mark.parametrize("stride, grid", [(8, 8), (16, 4)])
def test_latent_stride_sets_the_vae_and_the_latent_grid(stride, grid):
    cfg = get_preset("tiny", **model_overrides(stride))
    assert (cfg.latent_h, cfg.latent_w) == (grid, grid)
    codec = LatentCodec.tiny(cfg, base_dim=4).check_matches(cfg)  # the VAE the recipe trains fits the model
    assert codec.vae.config.scale_factor_spatial == stride


def test_a_latent_stride_the_tiny_vae_lacks_is_refused():
    with pytest.raises(ValueError, match="latent stride 4"):
        model_overrides(4)
    with pytest.raises(ValueError, match="depth range 'metric'"):
        model_overrides(8, "metric")
