# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""State-only (low-dimensional) policies: data, errors, the MLP denoiser, old checkpoints.

State-only (low-dimensional) policies: the observation kind read from the dataset, clear
errors for datasets that cannot train, the MLP denoiser, and old checkpoints still loading.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sdm_policy_core.config import ConfigError, ExperimentConfig, from_dict, load_config
from sdm_policy_core.data import DatasetError, ReplayBuffer
from sdm_policy_core.models import MlpDenoiser, build_denoiser, build_observation_encoder
from sdm_policy_core.runtime import PolicyRuntime
from sdm_policy_core.training.data import make_datasets, resolve_encoder
from test.conftest import write_dataset

TINY = ["model.horizon=4", "model.n_action_steps=2", "train.val_fraction=0"]


def _state_only(path: Path, steps: int = 12) -> Path:
    rng = np.random.default_rng(0)
    state = rng.normal(size=(steps, 3)).astype(np.float32)
    action = rng.normal(size=(steps, 2)).astype(np.float32)
    return write_dataset(path, state=state, action=action)


def test_a_state_only_dataset_trains_a_state_only_policy_without_a_flag(tmp_path):
    path = _state_only(tmp_path / "s.zarr")
    cfg, train, _ = make_datasets(load_config(None, TINY), path)
    assert cfg.model.encoder == "state"
    assert cfg.obs.point_cloud_shape is None and cfg.obs.image_shape is None
    assert (cfg.obs.state_dim, cfg.obs.action_dim) == (3, 2)
    item = train[0]
    assert set(item["obs"]) == {"agent_pos"} and item["obs"]["agent_pos"].shape == (4, 3)
    # other arrays choose the other encoders; an explicit encoder is kept
    cloud = np.zeros((12, 8, 3), np.float32)
    image = np.zeros((12, 16, 16, 3), np.uint8)
    state, action = np.zeros((12, 3), np.float32), np.zeros((12, 2), np.float32)
    both = write_dataset(
        tmp_path / "b.zarr", point_cloud=cloud, img=image, state=state, action=action
    )
    imgs = write_dataset(tmp_path / "i.zarr", img=image, state=state, action=action)
    auto = load_config(None, TINY)
    assert resolve_encoder(auto, both).model.encoder == "dp3"
    assert resolve_encoder(auto, imgs).model.encoder == "image"
    explicit = load_config(None, [*TINY, "model.encoder=image"])
    assert resolve_encoder(explicit, both).model.encoder == "image"
    assert resolve_encoder(load_config(None, ["model.encoder=state"]), both).model.encoder == (
        "state"
    )


def test_datasets_that_cannot_train_are_refused_naming_the_arrays(tmp_path):
    cfg = load_config(None, TINY)
    action = np.zeros((12, 2), np.float32)
    only_action = write_dataset(tmp_path / "a.zarr", action=action)
    with pytest.raises(DatasetError, match=r"has no data/state .*it has data/\['action'\]"):
        make_datasets(cfg, only_action)
    short = write_dataset(tmp_path / "t.zarr", state=np.zeros((11, 3), np.float32), action=action)
    with pytest.raises(DatasetError, match=r"different numbers of time steps.*'action': 12"):
        make_datasets(cfg, short)
    with pytest.raises(DatasetError, match=r"'state': 11"):
        make_datasets(cfg, short)
    state_only = _state_only(tmp_path / "s.zarr")
    dp3 = load_config(None, [*TINY, "model.encoder=dp3"])
    with pytest.raises(DatasetError, match=r"model.encoder=dp3 needs data/point_cloud"):
        make_datasets(dp3, state_only)
    with pytest.raises(ConfigError, match=r"model\.encoder must be one of"):
        load_config(None, ["model.encoder=lidar"])


def test_the_mlp_denoiser_is_a_drop_in_denoiser_without_the_unets_horizon_rule():
    with pytest.raises(ConfigError, match="divisible"):
        load_config(None, ["model.horizon=10", "model.down_dims=[8,16,32]"])
    cfg = load_config(
        None,
        [
            "obs.point_cloud_shape=null",
            "obs.state_dim=3",
            "obs.action_dim=2",
            "model.denoiser=mlp",
            "model.mlp_hidden_dim=32",
            "model.mlp_blocks=2",
            "model.horizon=10",
            "model.down_dims=[8,16,32]",
            "model.state_encoder=identity",
        ],
    )
    encoder = build_observation_encoder(cfg.obs, cfg.model)
    assert encoder.feature_dim == 3 and not list(encoder.parameters())  # identity: the state
    state = torch.randn(5, 3)
    torch.testing.assert_close(encoder({"agent_pos": state}), state)
    net = build_denoiser(cfg.obs, cfg.model)
    assert isinstance(net, MlpDenoiser) and net.global_cond_dim == 2 * 3
    torch.manual_seed(0)
    x, cond = torch.randn(4, 10, 2), torch.randn(4, 6)
    out = net(x, torch.tensor([0, 10, 50, 99]), cond)
    assert out.shape == (4, 10, 2)
    assert not torch.allclose(out, net(x, torch.tensor([0, 10, 50, 99]), cond + 1.0))
    assert not torch.allclose(out, net(x, 5, cond))  # the timestep is an input
    with pytest.raises(ValueError, match=r"sample must be \(B, 10, 2\)"):
        net(torch.randn(4, 8, 2), 0, cond)
    with pytest.raises(ValueError, match=r"global_cond must be \(4, 6\)"):
        net(x, 0, torch.randn(4, 5))


def test_checkpoints_from_before_the_new_model_keys_still_load(teacher_ckpt, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(teacher_ckpt, old)
    config = json.loads((old / "config.json").read_text())
    for key in ("denoiser", "mlp_hidden_dim", "mlp_blocks", "state_encoder"):
        config["model"].pop(key)
    config["model"]["encoder"] = "dp3"  # what every checkpoint before 'auto' holds
    (old / "config.json").write_text(json.dumps(config))
    cfg = from_dict(ExperimentConfig, {k: config[k] for k in ("obs", "model", "diffusion")})
    assert (cfg.model.denoiser, cfg.model.state_encoder) == ("unet", "mlp")
    obs = {
        "point_cloud": np.random.default_rng(0).normal(size=(32, 3)).astype(np.float32),
        "agent_pos": np.zeros(4, np.float32),
    }
    got = PolicyRuntime(old, seed=3).step(obs).actions
    np.testing.assert_array_equal(got, PolicyRuntime(teacher_ckpt, seed=3).step(obs).actions)


def test_recorded_rollouts_of_a_state_only_policy_keep_state_and_action_only(tmp_path):
    from sdm_policy_core.eval.rollout import visited_episode

    steps = {"state": [np.zeros(2)] * 3, "action": [np.ones(2)] * 3}
    arrays = visited_episode(steps)
    assert set(arrays) == {"state", "action"} and arrays["state"].dtype == np.float32
    buffer = ReplayBuffer.create_empty()
    buffer.add_episode(arrays)
    assert buffer.n_steps == 3
