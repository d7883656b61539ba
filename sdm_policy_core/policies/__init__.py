# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Policies: the diffusion teacher and the one-step SDM student, behind one interface.

Both take observation batches `{"point_cloud": (B, To, P, C), "agent_pos": (B, To, Ds),
"image": (B, To, 3, H, W) uint8}` in robot units and return action chunks in robot units.
"""

from sdm_policy_core.policies.base import Policy
from sdm_policy_core.policies.diffusion_policy import DiffusionPolicy
from sdm_policy_core.policies.observation import ObservationError, check_observation
from sdm_policy_core.policies.one_step import OneStepGenerator
from sdm_policy_core.policies.sdm_policy import SdmPolicy

__all__ = [
    "DiffusionPolicy",
    "ObservationError",
    "OneStepGenerator",
    "Policy",
    "SdmPolicy",
    "check_observation",
]
