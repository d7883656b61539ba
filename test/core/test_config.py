# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Configs load strictly and every invalid value is named, with what is valid."""

from __future__ import annotations

import pytest
import torch

from sdm_policy_core.config import (
    PRESETS,
    ConfigError,
    DeploymentConfig,
    ExperimentConfig,
    from_dict,
    load_config,
)
from sdm_policy_core.policies import DiffusionPolicy, ObservationError


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.preset=huge",
            "model.preset must be one of ['cpu_small', 'dp3', 'simple_dp3'], got 'huge'",
        ),
        ("model.horizon=10", "model.horizon=10 must be divisible by 4"),
        ("model.n_obs_steps=0", "model.n_obs_steps must be in [1, horizon=16], got 0"),
        (
            "model.n_action_steps=16",
            "model.n_action_steps must be in [1, horizon - n_obs_steps + 1 = 15], got 16",
        ),
        (
            "diffusion.prediction_type=v",
            "diffusion.prediction_type must be 'sample' or 'epsilon', got 'v'",
        ),
        ("train.batch_size=0", "train.batch_size must be > 0, got 0"),
        ("train.device=tpu", "train.device must be cpu, cuda, cuda:N or auto, got 'tpu'"),
        ("train.max_steps=many", "train.max_steps must be an integer, got 'many'"),
        ("distill.t_max=100", "distill.t_max=100 must be < diffusion.num_train_timesteps=100"),
        (
            "distill.corrector_steps_per_generator_step=0",
            "distill.corrector_steps_per_generator_step must be >= 1, got 0",
        ),
        ("obs.point_cloud_shape=[512, 4]", "obs.point_cloud_shape must be (P, 3) or (P, 6)"),
        ("model.bogus=1", "unknown config key(s) ['model.bogus']"),
        ("train", "override 'train' must look like section.key=value"),
    ],
)
def test_invalid_values_are_named(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert message in str(err.value)


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "model:\n  preset: cpu_small\n  horizon: 4\n  n_action_steps: 3\ntrain:\n  max_steps: 10\n"
    )
    cfg = load_config(path, ["train.max_steps=20", "model.down_dims=[32, 64, 128]"])
    assert cfg.model.preset == "cpu_small" and cfg.model.horizon == 4
    assert cfg.train.max_steps == 20 and cfg.model.down_dims == (32, 64, 128)
    assert cfg.model.pointnet_dims == PRESETS["cpu_small"]["pointnet_dims"]
    assert from_dict(ExperimentConfig, cfg.to_dict()) == cfg  # what checkpoints store
    bad = tmp_path / "bad.yaml"
    bad.write_text("trian:\n  max_steps: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['trian'\]"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_deployment_config_validates():
    with pytest.raises(ConfigError, match="sampler must be one of"):
        DeploymentConfig(sampler="two-step")
    with pytest.raises(ConfigError, match=r"stale_age_s must be in \(0, 60\], got 0"):
        DeploymentConfig(stale_age_s=0)


def test_paper_horizons_4_2_3_run_end_to_end():
    cfg = load_config(
        overrides=[
            "model.preset=cpu_small",
            "model.horizon=4",
            "model.n_obs_steps=2",
            "model.n_action_steps=3",
            "obs.point_cloud_shape=[64, 3]",
        ]
    )
    policy = DiffusionPolicy(cfg)
    policy.normalizer.fit({"action": torch.rand(50, 4), "agent_pos": torch.rand(50, 4)})
    obs = {"point_cloud": torch.randn(2, 2, 64, 3), "agent_pos": torch.rand(2, 2, 4)}
    loss = policy.compute_loss({"obs": obs, "action": torch.rand(2, 4, 4)})
    loss.backward()
    out = policy.predict_action(obs, "ddim", 3)
    assert out["action"].shape == (2, 3, 4) and out["action_pred"].shape == (2, 4, 4)
    with pytest.raises(
        ObservationError,
        match=r"'point_cloud' has shape \(2, 2, 60, 3\), "
        r"expected \(B, 2, 64, 3\)",
    ):
        policy.predict_action({**obs, "point_cloud": torch.randn(2, 2, 60, 3)})
    nan = obs["agent_pos"].clone()
    nan[0, 1, 2] = float("nan")
    with pytest.raises(ObservationError, match="NaN"):
        policy.predict_action({**obs, "agent_pos": nan})
