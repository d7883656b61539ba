# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Neural networks of the core (ROS-free).

Encoders, the denoisers (ConditionalUnet1D, MlpDenoiser), factory.
"""

from __future__ import annotations

import importlib
from typing import Any

from sdm_policy_core.keys import ACTION, AGENT_POS, IMAGE, OBSERVATION_KEYS, POINT_CLOUD

# The networks import torch; they load on first use so that `sdm_policy_core.models.keys` (and
# with it the torch-free runtime pieces) imports on a robot's install without torch.
_LAZY = {
    "build_denoiser": "factory",
    "build_observation_encoder": "factory",
    "count_parameters": "factory",
    "FiLMResidualBlock": "mlp_denoiser",
    "MlpDenoiser": "mlp_denoiser",
    "ObservationEncoder": "obs_encoder",
    "observation_feature_dim": "obs_encoder",
    "PointCloudEncoder": "pointnet",
    "StateEncoder": "pointnet",
    "RandomCrop": "resnet",
    "ResNet18Encoder": "resnet",
    "ResNet18GN": "resnet",
    "ConditionalResidualBlock1D": "unet1d",
    "ConditionalUnet1D": "unet1d",
    "Conv1dBlock": "unet1d",
    "SinusoidalPosEmb": "unet1d",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTION",
    "AGENT_POS",
    "IMAGE",
    "OBSERVATION_KEYS",
    "POINT_CLOUD",
    "ConditionalResidualBlock1D",
    "ConditionalUnet1D",
    "Conv1dBlock",
    "FiLMResidualBlock",
    "MlpDenoiser",
    "ObservationEncoder",
    "PointCloudEncoder",
    "RandomCrop",
    "ResNet18Encoder",
    "ResNet18GN",
    "SinusoidalPosEmb",
    "StateEncoder",
    "build_denoiser",
    "build_observation_encoder",
    "count_parameters",
    "observation_feature_dim",
]
