# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Observation encoder: point cloud (DP3) and/or image (Diffusion Policy) features + state.

State alone for low-dimensional policies.

One observation step is encoded at a time; callers fold the time axis into the batch
((B, To, ...) -> (B * To, ...)) and unfold the result into the global condition
(B, To * feature_dim).
"""

from __future__ import annotations

import torch
from torch import nn

from sdm_policy_core.config import ConfigError, ModelConfig, ObservationSpec
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.models.pointnet import PointCloudEncoder, StateEncoder
from sdm_policy_core.models.resnet import ResNet18Encoder


def _point_channels(obs: ObservationSpec, model: ModelConfig) -> int:
    """Channels the point encoder reads: 6 with colour, else 3 (xyz)."""
    assert obs.point_cloud_shape is not None
    channels = obs.point_cloud_shape[1]
    if model.use_pc_color and channels != 6:
        raise ConfigError(
            f"model.use_pc_color=true needs obs.point_cloud_shape (P, 6), "
            f"got {obs.point_cloud_shape}"
        )
    return 6 if model.use_pc_color else 3


def observation_feature_dim(obs: ObservationSpec, model: ModelConfig) -> int:
    """Size of one step's feature: cloud and/or image feature + state feature."""
    dim = obs.state_dim if model.state_encoder == "identity" else model.state_mlp_dims[-1]
    if obs.point_cloud_shape is not None:
        dim += model.encoder_output_dim
    if obs.image_shape is not None:
        dim += model.encoder_output_dim
    return dim


class ObservationEncoder(nn.Module):
    """Encode one observation step per batch row: dict of tensors -> (N, feature_dim).

    Batch keys (see `keys.py`), N = batch * n_obs_steps:
        "point_cloud": (N, P, C) float32, xyz in m (+ rgb in [0, 1] if C = 6), when obs has one;
        "image": (N, 3, H, W) uint8 in [0, 255] or float in [0, 1], when obs has one;
        "agent_pos": (N, state_dim) float32, normalised state.
    Output: concatenation [cloud feature, image feature, state feature] (those present).
    With a 6-channel cloud and `model.use_pc_color=False` only the xyz channels are read.
    The state feature is StateEncoder's MLP, or the normalised state itself
    (`model.state_encoder=identity`).
    """

    def __init__(self, obs: ObservationSpec, model: ModelConfig) -> None:
        super().__init__()
        self.point_channels: int | None = None
        self.point_encoder: PointCloudEncoder | None = None
        self.image_encoder: ResNet18Encoder | None = None
        if obs.point_cloud_shape is not None:
            self.point_channels = _point_channels(obs, model)
            self.point_encoder = PointCloudEncoder(
                self.point_channels, model.pointnet_dims, model.encoder_output_dim
            )
        if obs.image_shape is not None:
            crop = model.image_crop
            if crop is not None and (
                len(crop) != 2
                or crop[0] > obs.image_shape[1]
                or crop[1] > obs.image_shape[2]
                or min(crop) < 16
            ):
                raise ConfigError(
                    f"model.image_crop must be (h, w) with 16 <= h <= H and "
                    f"16 <= w <= W for obs.image_shape {obs.image_shape}, "
                    f"got {crop}"
                )
            self.image_encoder = ResNet18Encoder(model.encoder_output_dim, crop)
        self.state_encoder: nn.Module = (
            nn.Identity()
            if model.state_encoder == "identity"
            else StateEncoder(obs.state_dim, model.state_mlp_dims)
        )
        self.feature_dim = observation_feature_dim(obs, model)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """{"point_cloud": (N, P, C), "image": (N, 3, H, W), "agent_pos": (N, Ds)} -> (N, F)."""
        features: list[torch.Tensor] = []
        if self.point_encoder is not None:
            points = _get(batch, POINT_CLOUD)
            features.append(self.point_encoder(points[..., : self.point_channels]))
        if self.image_encoder is not None:
            features.append(self.image_encoder(_get(batch, IMAGE)))
        features.append(self.state_encoder(_get(batch, AGENT_POS)))
        return torch.cat(features, dim=-1)


def _get(batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in batch:
        raise KeyError(f"observation batch lacks {key!r}; it has {sorted(batch)}")
    return batch[key]
