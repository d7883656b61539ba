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


@pytest.fixture(scope="session")
def teacher_ckpt(reaching_dataset, tmp_path_factory) -> Path:
    """A teacher trained for 40 steps on the reaching data (checkpoints/latest)."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("teacher")
    code = sdm(
        [
            "train",
            "--dataset",
            str(reaching_dataset),
            "--out",
            str(out),
            "--no-progress",
            *FAST,
            "train.max_steps=40",
            "train.val_every=20",
            "train.checkpoint_every=20",
        ]
    )
    assert code == 0
    return out / "checkpoints" / "latest"


@pytest.fixture(scope="session")
def sdm_ckpt(reaching_dataset, teacher_ckpt, tmp_path_factory) -> Path:
    """That teacher distilled for 20 steps (checkpoints/latest)."""
    from sdm_policy_core.cli import main as sdm

    out = tmp_path_factory.mktemp("sdm")
    code = sdm(
        [
            "distill",
            "--teacher",
            str(teacher_ckpt),
            "--dataset",
            str(reaching_dataset),
            "--out",
            str(out),
            "--no-progress",
            "train.max_steps=20",
            "train.batch_size=16",
            "train.val_every=10",
            "train.checkpoint_every=10",
            "train.threads=1",
        ]
    )
    assert code == 0
    return out / "checkpoints" / "latest"
