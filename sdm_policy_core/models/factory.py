# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Build the networks of a policy from `ObservationSpec` + `ModelConfig`."""

from __future__ import annotations

from torch import nn

from sdm_policy_core.config import ModelConfig, ObservationSpec
from sdm_policy_core.models.mlp_denoiser import MlpDenoiser
from sdm_policy_core.models.obs_encoder import ObservationEncoder, observation_feature_dim
from sdm_policy_core.models.unet1d import ConditionalUnet1D


def build_observation_encoder(obs: ObservationSpec, model: ModelConfig) -> ObservationEncoder:
    """Build the per-step observation encoder; output (N, encoder.feature_dim)."""
    return ObservationEncoder(obs, model)


def build_denoiser(
    obs: ObservationSpec, model: ModelConfig, n_obs_steps: int | None = None
) -> ConditionalUnet1D | MlpDenoiser:
    """Build the denoiser over (B, horizon, action_dim), conditioned on n_obs_steps features.

    ConditionalUnet1D (`model.denoiser=unet`) or MlpDenoiser (`mlp`).

    global_cond_dim = feature_dim * n_obs_steps (n_obs_steps defaults to model.n_obs_steps).
    Build under `with torch.device("meta"):` to size a model without allocating it.
    """
    steps = model.n_obs_steps if n_obs_steps is None else n_obs_steps
    if steps <= 0:
        raise ValueError(f"n_obs_steps must be > 0, got {steps}")
    if model.denoiser == "mlp":
        return MlpDenoiser(
            input_dim=obs.action_dim,
            horizon=model.horizon,
            global_cond_dim=observation_feature_dim(obs, model) * steps,
            diffusion_step_embed_dim=model.diffusion_step_embed_dim,
            hidden_dim=model.mlp_hidden_dim,
            n_blocks=model.mlp_blocks,
        )
    return ConditionalUnet1D(
        input_dim=obs.action_dim,
        global_cond_dim=observation_feature_dim(obs, model) * steps,
        diffusion_step_embed_dim=model.diffusion_step_embed_dim,
        down_dims=model.down_dims,
        kernel_size=model.kernel_size,
        n_groups=model.n_groups,
    )


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Count the parameter elements (works on meta-device modules too)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
