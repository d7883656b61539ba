# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""DP3 point-cloud encoder and state MLP (Ze et al. 2024, `PointNetEncoderXYZ`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PointCloudEncoder(nn.Module):
    """Per-point MLP (Linear + LayerNorm + ReLU per layer), max-pool over points, projection.

    Input (B, P, C) float32 with C = `in_channels` (3: xyz in m; 6: xyz + rgb in [0, 1]).
    Output (B, `out_dim`). The max-pool makes the output invariant to the order of the points.
    """

    def __init__(
        self, in_channels: int = 3, hidden_dims: Sequence[int] = (64, 128, 256), out_dim: int = 64
    ) -> None:
        super().__init__()
        if in_channels <= 0 or not hidden_dims or min(hidden_dims) <= 0 or out_dim <= 0:
            raise ValueError(
                f"PointCloudEncoder needs positive sizes, got in_channels="
                f"{in_channels}, hidden_dims={tuple(hidden_dims)}, out_dim={out_dim}"
            )
        self.in_channels = in_channels
        self.out_dim = out_dim
        layers: list[nn.Module] = []
        width = in_channels
        for dim in hidden_dims:
            layers += [nn.Linear(width, dim), nn.LayerNorm(dim), nn.ReLU()]
            width = dim
        self.mlp = nn.Sequential(*layers)
        self.final_projection = nn.Sequential(nn.Linear(width, out_dim), nn.LayerNorm(out_dim))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """(B, P, C) -> (B, out_dim)."""
        if points.dim() != 3 or points.shape[-1] != self.in_channels:
            raise ValueError(
                f"PointCloudEncoder expects (B, P, {self.in_channels}), got {tuple(points.shape)}"
            )
        features = self.mlp(points)  # (B, P, hidden_dims[-1])
        return self.final_projection(features.amax(dim=1))


class StateEncoder(nn.Module):
    """MLP over the robot state: Linear + ReLU between layers, no activation after the last.

    Input (B, state_dim) float32 (normalised state); output (B, hidden_dims[-1]).
    """

    def __init__(self, state_dim: int, hidden_dims: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        if state_dim <= 0 or not hidden_dims or min(hidden_dims) <= 0:
            raise ValueError(
                f"StateEncoder needs positive sizes, got state_dim={state_dim}, "
                f"hidden_dims={tuple(hidden_dims)}"
            )
        self.state_dim = state_dim
        self.out_dim = hidden_dims[-1]
        layers: list[nn.Module] = []
        width = state_dim
        for i, dim in enumerate(hidden_dims):
            layers.append(nn.Linear(width, dim))
            if i < len(hidden_dims) - 1:
                layers.append(nn.ReLU())
            width = dim
        self.mlp = nn.Sequential(*layers)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        """(B, state_dim) -> (B, out_dim)."""
        if state.dim() != 2 or state.shape[-1] != self.state_dim:
            raise ValueError(
                f"StateEncoder expects (B, {self.state_dim}), got {tuple(state.shape)}"
            )
        return self.mlp(state)
