# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Sample-based distances between action distributions."""

from __future__ import annotations

import torch
from torch import Tensor


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance 2·E‖X-Y‖ - E‖X-X'‖ - E‖Y-Y'‖ between samples x (N, D) and y (M, D).

    Unbiased within-sample terms (the diagonal is excluded), so two samples of one distribution
    give ~0 (it can be slightly negative). Zero iff the distributions are equal; quadratic in
    memory (N·M distances): use a few thousand samples at most.
    """
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"expected (N, D) and (M, D) samples, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("energy_distance needs at least 2 samples on each side")
    x, y = x.double(), y.double()
    n, m = x.shape[0], y.shape[0]
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return float(2.0 * xy - xx - yy)
