# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""sdm_policy_core: ROS-free models, SDM distillation, training, data and evaluation."""
