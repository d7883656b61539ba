# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A residual MLP denoiser over the flattened action sequence (`model.denoiser=mlp`).

The same interface as ConditionalUnet1D — `(sample (B, T, D), timestep, global_cond (B, G)) ->
(B, T, D)` — for low-dimensional policies on CPUs: the sequence (T * D values) is one vector,
every residual block is FiLM-conditioned on (diffusion-step embedding ⊕ global observation
condition). A few hundred thousand multiply-adds per sample instead of the U-Net's convolutions
over the horizon; no divisibility constraint on the horizon.
"""

from __future__ import annotations

import torch
from torch import nn

from sdm_policy_core.models.unet1d import DiffusionStepEncoder


class FiLMResidualBlock(nn.Module):
    """x + Linear(Mish(FiLM(Linear(Mish(LayerNorm(x)))))): (B, H), cond (B, C) -> (B, H).

    FiLM: the condition (Mish -> Linear) gives a per-feature scale and bias; the block applies
    (1 + scale) * h + bias, so a zero condition leaves h unchanged.
    """

    def __init__(self, hidden_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden_dim)
        self.fc1 = nn.Linear(hidden_dim, hidden_dim)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * hidden_dim))
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.fc1(self.act(self.norm(x)))
        scale, bias = self.film(cond).chunk(2, dim=-1)
        h = (1.0 + scale) * h + bias
        return x + self.fc2(self.act(h))


class MlpDenoiser(nn.Module):
    """Predict eps or x0 of a whole action sequence with a FiLM-conditioned residual MLP.

    input_dim: action dimension D. horizon: sequence length T (the MLP reads T * D values).
    global_cond_dim: size of the flattened observation features (0: unconditional).
    """

    def __init__(
        self,
        input_dim: int,
        horizon: int,
        global_cond_dim: int,
        diffusion_step_embed_dim: int = 64,
        hidden_dim: int = 512,
        n_blocks: int = 4,
    ) -> None:
        super().__init__()
        if min(input_dim, horizon, hidden_dim, n_blocks) <= 0 or global_cond_dim < 0:
            raise ValueError(
                f"MlpDenoiser needs positive sizes, got input_dim={input_dim}, horizon={horizon}, "
                f"hidden_dim={hidden_dim}, n_blocks={n_blocks}, global_cond_dim={global_cond_dim}"
            )
        self.input_dim, self.horizon = input_dim, horizon
        self.global_cond_dim = global_cond_dim
        self.diffusion_step_encoder = DiffusionStepEncoder(
            diffusion_step_embed_dim, global_cond_dim
        )
        cond_dim = self.diffusion_step_encoder.cond_dim
        flat = horizon * input_dim
        self.input_projection = nn.Linear(flat, hidden_dim)
        self.blocks = nn.ModuleList(
            [FiLMResidualBlock(hidden_dim, cond_dim) for _ in range(n_blocks)]
        )
        self.output_projection = nn.Sequential(
            nn.LayerNorm(hidden_dim), nn.Mish(), nn.Linear(hidden_dim, flat)
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        global_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Map sample (B, T, D), timestep (B,) or scalar, global_cond (B, G) -> (B, T, D)."""
        if sample.dim() != 3 or sample.shape[1:] != (self.horizon, self.input_dim):
            raise ValueError(
                f"sample must be (B, {self.horizon}, {self.input_dim}), got {tuple(sample.shape)}"
            )
        B = sample.shape[0]
        cond = self.diffusion_step_encoder.condition(timestep, B, global_cond)
        x = self.input_projection(sample.reshape(B, -1))
        for block in self.blocks:
            x = block(x, cond)
        return self.output_projection(x).reshape(B, self.horizon, self.input_dim)
