# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The SDM student: the teacher's frozen encoder and normaliser + a one-step generator."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor

from sdm_policy_core.config import ExperimentConfig
from sdm_policy_core.diffusion import randn
from sdm_policy_core.models import build_denoiser
from sdm_policy_core.policies.base import Policy
from sdm_policy_core.policies.diffusion_policy import DiffusionPolicy
from sdm_policy_core.policies.one_step import OneStepGenerator


class SdmPolicy(Policy):
    """One-step policy. Submodules (checkpoint prefixes): `encoder`, `normalizer`, `generator`.

    `generator` maps noise (B, H, Da) and the observation condition to a normalised action
    sequence in ONE denoiser call at `generator.timestep` — the timestep it was trained at.
    Built from a teacher (its encoder, normaliser and denoiser weights are copied), or empty with
    the same architecture for loading a checkpoint. It holds no denoiser of its own and has no
    multi-step sampler: those are the teacher's.
    """

    def __init__(self, cfg: ExperimentConfig, teacher: DiffusionPolicy | None = None) -> None:
        super().__init__(cfg)
        # Built, then overwritten by the teacher's weights or a checkpoint's: the same random
        # draws as the teacher's construction, so seeded runs stay reproducible.
        denoiser = build_denoiser(cfg.obs, cfg.model)
        if teacher is not None:
            self.encoder.load_state_dict(teacher.encoder.state_dict())
            self.normalizer = copy.deepcopy(teacher.normalizer)
            denoiser.load_state_dict(teacher.denoiser.state_dict())
        self.generator = OneStepGenerator(denoiser, self.schedule, cfg.distill.generator_timestep)

    def sample_normalized(
        self,
        cond: Tensor,
        sampler: str = "one-step",
        steps: int = 1,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
    ) -> Tensor:
        """Normalised action sequences (B, H, Da): exactly one generator call."""
        if sampler != "one-step":
            raise ValueError(
                f"an SDM checkpoint samples with 'one-step' only, got {sampler!r}; "
                "use the teacher checkpoint for ddim/ddpm"
            )
        if initial_noise is None:
            shape = (cond.shape[0], *self.action_shape)
            initial_noise = randn(shape, generator, cond.device, cond.dtype)
        return self.generator(initial_noise, cond)

    @torch.no_grad()
    def predict_action(
        self,
        obs: Mapping[str, Tensor],
        sampler: str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
    ) -> dict[str, Tensor]:
        naction = self.sample_normalized(
            self.encode(obs), sampler or "one-step", 1, generator, initial_noise
        )
        if self.cfg.diffusion.clip_sample:  # as the teacher's samplers do
            naction = naction.clamp(-1.0, 1.0)
        return self._to_chunk(naction)
