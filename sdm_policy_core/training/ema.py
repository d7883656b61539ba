# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Exponential moving average of a model's weights, shared by teacher training and distillation.

The deployed teacher and the deployed SDM generator are both EMA copies.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class Ema:
    """Exponential moving average of a model with Diffusion Policy's power warm-up.

    decay(n) = clip(1 - (1 + n / inv_gamma) ** -power, min_decay, max_decay) with
    n = optimisation_step - update_after_step - 1 (decay 0, i.e. a copy, while n <= 0).
    `update(model)` must be called after every optimiser step of `model`; `self.model` is the
    averaged copy (eval mode, no gradients). Buffers are copied, not averaged.
    """

    def __init__(
        self,
        model: nn.Module,
        power: float = 0.75,
        max_decay: float = 0.9999,
        min_decay: float = 0.0,
        inv_gamma: float = 1.0,
        update_after_step: int = 0,
    ) -> None:
        if not 0.0 <= min_decay <= max_decay < 1.0:
            raise ValueError(
                f"EMA decays must satisfy 0 <= min_decay <= max_decay < 1, "
                f"got min_decay={min_decay}, max_decay={max_decay}"
            )
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power = power
        self.max_decay = max_decay
        self.min_decay = min_decay
        self.inv_gamma = inv_gamma
        self.update_after_step = update_after_step
        self.optimization_step = 0
        self.decay = 0.0

    def get_decay(self, optimization_step: int) -> float:
        """Return the decay used for the update at `optimization_step` (0-based)."""
        step = max(0, optimization_step - self.update_after_step - 1)
        if step <= 0:
            return 0.0
        value = 1.0 - (1.0 + step / self.inv_gamma) ** -self.power
        return max(self.min_decay, min(value, self.max_decay))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average toward `model` (same architecture as the averaged copy)."""
        self.decay = self.get_decay(self.optimization_step)
        ema_params = list(self.model.parameters())
        params = list(model.parameters())
        if len(ema_params) != len(params):
            raise ValueError("EMA.update got a model with a different parameter list")
        for ema_p, p in zip(ema_params, params, strict=True):
            if p.requires_grad:
                ema_p.lerp_(p.detach().to(ema_p.dtype), 1.0 - self.decay)
            else:
                ema_p.copy_(p.detach())
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
        self.optimization_step += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimization_step": self.optimization_step,
            "decay": self.decay,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimization_step = int(state["optimization_step"])
        self.decay = float(state["decay"])
