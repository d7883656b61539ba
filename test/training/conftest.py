"""A tiny synthetic dataset and fast training settings shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdm_policy_core.data.synthetic import make_reaching_dataset

FAST = [
    "model.preset=cpu_small",
    "model.down_dims=[32,64]",
    "model.pointnet_dims=[16,32]",
    "model.diffusion_step_embed_dim=32",
    "model.horizon=8",
    "model.n_action_steps=4",
    "train.batch_size=16",
    "train.lr=1e-3",
    "train.warmup_steps=2",
    "train.log_every=2",
    "train.val_fraction=0.25",
    "train.threads=1",
]


@pytest.fixture(scope="session")
def reaching_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "reach.zarr"
    make_reaching_dataset(path, episodes=8, steps=16, num_points=32, seed=0)
    return path
