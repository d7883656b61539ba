# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The batch keys under their former address: the vocabulary moved to `sdm_policy_core.keys`.

The vocabulary moved there with the dataset-array and ROS-topic names, which the data tools
and the ROS layer import without this package. Kept so that code importing
`sdm_policy_core.models.keys` still works.
"""

from __future__ import annotations

from sdm_policy_core.keys import ACTION, AGENT_POS, IMAGE, OBSERVATION_KEYS, POINT_CLOUD

__all__ = ["ACTION", "AGENT_POS", "IMAGE", "OBSERVATION_KEYS", "POINT_CLOUD"]
