# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The diffusion teacher: DP3 (point clouds) or Diffusion Policy (images).

observation encoder (per step) -> global condition (B, To * F) -> ConditionalUnet1D denoiser over
the normalised action sequence (B, horizon, Da), with a diffusers noise schedule.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from sdm_policy_core.config import ExperimentConfig
from sdm_policy_core.diffusion import randint, randn
from sdm_policy_core.keys import ACTION, OBS
from sdm_policy_core.models import build_denoiser
from sdm_policy_core.policies.base import Policy


class DiffusionPolicy(Policy):
    """Teacher policy. Submodules (checkpoint prefixes): `encoder`, `denoiser`, `normalizer`."""

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__(cfg)
        self.denoiser = build_denoiser(cfg.obs, cfg.model)

    # -- training --------------------------------------------------------------------------------
    def compute_loss(
        self,
        batch: Mapping,
        noise: Tensor | None = None,
        timesteps: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Diffusion loss (scalar) of a batch {"obs": {...}, "action": (B, H, Da)}.

        noise (B, H, Da) and timesteps (B,) may be given (the trainer draws them per global
        batch so that data-parallel runs match single-process ones); else drawn here.
        """
        cond = self.encode(batch[OBS])
        x0 = self.normalizer.normalize(ACTION, batch[ACTION].float())
        if noise is None:  # drawn on the generator's device, then moved (CPU generator + GPU ok)
            noise = randn(tuple(x0.shape), generator, x0.device, x0.dtype)
        if timesteps is None:
            T = self.schedule.num_train_timesteps
            timesteps = randint(0, T, (x0.shape[0],), generator, x0.device)
        x_t = self.schedule.add_noise(x0, noise, timesteps)
        prediction = self.denoiser(x_t, timesteps, cond)
        target = x0 if self.schedule.prediction_type == "sample" else noise
        return F.mse_loss(prediction, target)

    forward = compute_loss  # what DistributedDataParallel calls

    # -- inference -------------------------------------------------------------------------------
    def sample_normalized(
        self,
        cond: Tensor,
        sampler: str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
        *,
        spacing: str | None = None,
        naive_timestep: int | None = None,
    ) -> Tensor:
        """Normalised action sequences (B, H, Da) for conditions (B, To * F).

        sampler: "ddim" (K = steps), "ddpm" (steps, normally 100) or "one-step": the teacher's
        naive single call (x0 at `naive_timestep`, default the largest, no distillation) — the
        honest baseline; for an epsilon-prediction teacher call it at its student's timestep.
        None / 0: the config's defaults (`DiffusionConfig.sampler_for`).
        spacing: where ddim/ddpm steps lie, "leading" or "trailing" (None: the config's).
        """
        sampler, steps = self.cfg.diffusion.sampler_for("teacher", sampler, steps)
        shape = (cond.shape[0], *self.action_shape)
        if sampler == "one-step":
            return self.schedule.naive_one_step(
                self.denoiser,
                shape,
                cond,
                naive_timestep,
                generator=generator,
                initial_noise=initial_noise,
            )
        return self.schedule.sample(
            self.denoiser,
            shape,
            cond,
            sampler,
            steps,
            generator,
            initial_noise=initial_noise,
            spacing=spacing,
        )

    @torch.no_grad()
    def predict_action(
        self,
        obs: Mapping[str, Tensor],
        sampler: str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
        *,
        spacing: str | None = None,
        naive_timestep: int | None = None,
    ) -> dict[str, Tensor]:
        """Predict an action chunk in robot units from a raw observation batch.

        Sampler options as in `sample_normalized`; `initial_noise` (B, H, Da) replaces the
        starting noise.

        Returns {"action_pred": (B, H, Da) the whole predicted sequence,
                 "action": (B, n_action_steps, Da) the actions to execute, starting at the
                 newest observation step (index n_obs_steps - 1 of the sequence)}.
        """
        naction = self.sample_normalized(
            self.encode(obs),
            sampler,
            steps,
            generator,
            initial_noise,
            spacing=spacing,
            naive_timestep=naive_timestep,
        )
        return self._to_chunk(naction)
