# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Training loops of the teacher (`sdm train`) and of SDM distillation (`sdm distill`)."""
