# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""sdm_policy_ros: the ROS 2 layer (nodes and message conversions) over sdm_policy_core."""
