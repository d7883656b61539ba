# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The one-step generator G_θ: a denoiser called once, at one fixed timestep, on pure noise.

It is what an SDM checkpoint deploys (`SdmPolicy.generator`) and what distillation trains
(`distill.SdmDistiller`); it lives with the policies so that deployment never imports the
distiller. Shapes: noise and actions `(B, T, D)` (batch, horizon, action dim).
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from sdm_policy_core.diffusion import NoiseSchedule


class OneStepGenerator(nn.Module):
    """G_θ: a copy of the teacher's denoiser evaluated at one fixed timestep on pure noise.

    `forward(z (B,T,D), cond) -> x0 (B,T,D)` makes exactly one denoiser call, at `self.timestep`,
    in training and in sampling alike (the authors' code trains at t=100 and samples at t=99; here
    there is only one attribute to read). An epsilon-predicting teacher's output is converted to
    x0 with the schedule's alpha/sigma at that timestep, stored as plain floats so the module
    needs no schedule object (and exports on its own).

    Epsilon teachers at t = T-1: with `squaredcos_cap_v2` alpha_{T-1} ≈ 5e-4, so x0 =
    (z - sigma·ε̂)/alpha amplifies the network's error ~2000x and distillation does not converge
    (toy: energy distance 2.8 vs 0.007 at t = 85). Use a timestep with alpha >= ~0.05 there
    (`distill.generator_timestep` ≈ T - 15); a warning says so.
    """

    def __init__(
        self, denoiser: nn.Module, schedule: NoiseSchedule, timestep: int | None = None
    ) -> None:
        super().__init__()
        T = schedule.num_train_timesteps
        timestep = T - 1 if timestep is None else int(timestep)
        if not 0 <= timestep < T:
            raise ValueError(f"generator timestep must be in [0, {T - 1}], got {timestep}")
        self.denoiser = copy.deepcopy(denoiser)
        self.timestep = timestep
        self.prediction_type = schedule.prediction_type
        alpha_bar = float(schedule.alphas_cumprod[timestep])
        self.alpha = math.sqrt(alpha_bar)
        self.sigma = math.sqrt(1.0 - alpha_bar)
        if self.prediction_type == "epsilon" and self.alpha < 0.01:
            warnings.warn(
                f"one-step generator of an epsilon-prediction teacher at timestep {timestep}: "
                f"alpha_t={self.alpha:.1e}, so its x0 = (z - sigma*eps)/alpha amplifies errors "
                f"{1 / self.alpha:.0f}x; set distill.generator_timestep to about {T - 15}",
                stacklevel=2,
            )

    def forward(self, z: Tensor, cond: Any) -> Tensor:
        """x0 (B, T, D) from noise z (B, T, D) and the condition, in one denoiser call."""
        t = torch.full((z.shape[0],), self.timestep, dtype=torch.long, device=z.device)
        output = self.denoiser(z, t, cond).to(z.dtype)  # float32 out even under autocast
        if self.prediction_type == "sample":
            return output
        return (z - self.sigma * output) / self.alpha
