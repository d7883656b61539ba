# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Build a policy from a checkpoint directory (never a pickle)."""

from __future__ import annotations

from pathlib import Path

import torch

from sdm_policy_core.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from sdm_policy_core.config import ConfigError
from sdm_policy_core.policies.base import Policy
from sdm_policy_core.policies.diffusion_policy import DiffusionPolicy
from sdm_policy_core.policies.sdm_policy import SdmPolicy


def policy_from_checkpoint(ckpt: Checkpoint) -> Policy:
    """Build a `DiffusionPolicy` ('teacher') or `SdmPolicy` ('sdm') with the checkpoint's weights.

    In eval mode, on the device the tensors were loaded to. Strict: a missing or unexpected
    tensor is an error naming it.
    """
    try:
        cfg = ckpt.experiment_config()
    except ConfigError as err:
        raise CheckpointError(
            f"{ckpt.path}/config.json is not a valid configuration: {err}"
        ) from None
    if ckpt.kind == "teacher":
        policy: Policy = DiffusionPolicy(cfg)
        parts = {"encoder": policy.encoder, "denoiser": policy.denoiser}
    else:
        policy = SdmPolicy(cfg)
        parts = {"encoder": policy.encoder, "generator": policy.generator}
    parts["normalizer"] = policy.normalizer
    for prefix, module in parts.items():
        stored = any(name.startswith(prefix + ".") for name in ckpt.tensors)
        if not stored and not module.state_dict():  # e.g. a state-only identity encoder
            continue
        try:
            module.load_state_dict(ckpt.sub_state_dict(prefix + "."), strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"{ckpt.path}/model.safetensors does not fit the architecture in its "
                f"config.json ({prefix}): {err}"
            ) from None
    device = next(iter(ckpt.tensors.values())).device if ckpt.tensors else torch.device("cpu")
    return policy.to(device).eval().requires_grad_(False)


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> Policy:
    """`policy_from_checkpoint(load_checkpoint(path))` without the training state."""
    return policy_from_checkpoint(load_checkpoint(path, device=device, load_training_state=False))
