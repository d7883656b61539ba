# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The 2-D teacher (Diffusion Policy on images) trains and runs through PolicyRuntime.

The 2-D teacher (Diffusion Policy on images: ResNet-18 with GroupNorm + random crop) trains
from the `img` key of a dataset and runs through PolicyRuntime on camera frames.
"""

from __future__ import annotations

import numpy as np
import torch

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.data.synthetic import make_reaching_dataset
from sdm_policy_core.models import ResNet18GN
from sdm_policy_core.runtime import PolicyRuntime


def test_image_teacher_trains_and_acts_on_frames(tmp_path):
    data = tmp_path / "img.zarr"
    make_reaching_dataset(data, episodes=4, steps=12, num_points=16, image_size=40)
    out = tmp_path / "run"
    code = sdm(
        [
            "train",
            "--dataset",
            str(data),
            "--out",
            str(out),
            "--no-progress",
            "model.encoder=image",
            "model.preset=cpu_small",
            "model.horizon=4",
            "model.n_action_steps=3",
            "model.down_dims=[32,64]",
            "model.image_crop=[36,36]",
            "model.diffusion_step_embed_dim=32",
            "diffusion.prediction_type=epsilon",
            "train.batch_size=8",
            "train.max_steps=3",
            "train.val_fraction=0",
            "train.threads=1",
            "train.log_every=1",
        ]
    )
    assert code == 0
    runtime = PolicyRuntime(out / "checkpoints" / "latest", threads=1)
    assert runtime.spec.image_shape == (3, 40, 40) and runtime.spec.point_cloud_shape is None
    assert any(isinstance(m, ResNet18GN) for m in runtime.policy.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in runtime.policy.modules())
    frame = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    chunk = runtime.step({"image": frame, "agent_pos": np.zeros(4, np.float32)})
    assert chunk.actions.shape == (3, 4) and np.isfinite(chunk.actions).all()
    assert runtime.policy.cfg.diffusion.prediction_type == "epsilon"
