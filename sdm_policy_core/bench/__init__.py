# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Benchmarks behind `sdm bench`: each runs on a bare checkout and writes machine-readable JSON."""
