# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Reports of evaluation runs: markdown + plots (the main job's report.md)."""
