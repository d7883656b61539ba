# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The fixed-seed teacher and SDM checkpoints behind the frozen reference outputs.

Built by the training recipes from fixed seeds; the models of
`test/core/policies/test_policies_reference.py`, `test/core/test_control_reference.py` and
`test/core/deploy/test_session.py`. Also where the committed reference files live and whether
this run regenerates them (`SDM_REGENERATE_REFERENCE=1`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from sdm_policy_core.checkpoint import checkpoint_config, save_checkpoint
from sdm_policy_core.config import load_config
from sdm_policy_core.normalizer import LinearNormalizer
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.training.distributed import DistContext
from sdm_policy_core.training.recipes import SdmRecipe, TeacherRecipe

REFERENCE = Path(__file__).resolve().parent / "reference"
REGENERATE = os.environ.get("SDM_REGENERATE_REFERENCE") == "1"
POINTS, STATE, ACTION, BATCH = 16, 4, 3, 4
OVERRIDES = [
    "model.preset=cpu_small",
    "model.encoder=dp3",
    "model.down_dims=[16,32]",
    "model.pointnet_dims=[8,16]",
    "model.state_mlp_dims=[8,8]",
    "model.encoder_output_dim=8",
    "model.diffusion_step_embed_dim=8",
    "model.horizon=4",
    "model.n_obs_steps=2",
    "model.n_action_steps=2",
    f"obs.point_cloud_shape=[{POINTS},3]",
    "obs.image_shape=null",
    f"obs.state_dim={STATE}",
    f"obs.action_dim={ACTION}",
    "train.seed=3",
    "train.warmup_steps=0",
    "train.max_steps=10",
    "distill.corrector_steps_per_generator_step=1",
]


def _batch(rng: np.random.Generator) -> dict:
    """Build a training batch {"obs": {...}, "action": (B, H, Da)} in robot units."""
    return {
        "obs": {
            "point_cloud": torch.from_numpy(rng.uniform(-0.5, 0.5, (BATCH, 2, POINTS, 3))).float(),
            "agent_pos": torch.from_numpy(rng.uniform(-1, 1, (BATCH, 2, STATE))).float(),
        },
        "action": torch.from_numpy(rng.uniform(-2, 2, (BATCH, 4, ACTION))).float(),
    }


def build_checkpoints(out: Path) -> dict[str, Path]:
    """Build teacher and SDM checkpoints from fixed seeds with the training recipes.

    Teacher and SDM checkpoints built from fixed seeds by the training recipes (the models of
    test_policies_reference, test_control_reference and test_session).
    """
    cfg = load_config(overrides=OVERRIDES)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    rng = np.random.default_rng(5)
    teacher = TeacherRecipe(cfg, _fit_normalizer(rng), ctx)
    for step in range(2):
        teacher.train_step(_batch(rng), step)
    paths = {"teacher": out / "teacher", "sdm": out / "sdm"}
    save_checkpoint(
        paths["teacher"], checkpoint_config(cfg, "teacher", 2), teacher.export_tensors()
    )
    student = SdmRecipe(cfg, load_policy(paths["teacher"]), ctx, paths["teacher"])
    for step in range(3):
        student.train_step(_batch(rng), step)
    save_checkpoint(
        paths["sdm"],
        checkpoint_config(cfg, "sdm", 3, **student.config_extra()),
        student.export_tensors(),
    )
    return paths


def _fit_normalizer(rng: np.random.Generator) -> LinearNormalizer:
    normalizer = LinearNormalizer()
    normalizer.fit(
        {
            "action": rng.uniform(-2, 2, (64, ACTION)),
            "agent_pos": rng.uniform(-1, 1, (64, STATE)),
        }
    )
    return normalizer
