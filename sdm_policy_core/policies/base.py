# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""What every policy shares: encoder, normaliser, noise schedule, and the chunk to execute.

The observation encoder, the normaliser, the noise schedule and the cut of an action sequence
into the chunk to execute.

`DiffusionPolicy` (the teacher: a denoiser and its samplers) and `SdmPolicy` (the student: a
one-step generator) are its two subclasses; neither is the other.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from sdm_policy_core.config import ExperimentConfig
from sdm_policy_core.diffusion import NoiseSchedule
from sdm_policy_core.keys import ACTION, AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.models import build_observation_encoder
from sdm_policy_core.normalizer import LinearNormalizer
from sdm_policy_core.policies.observation import check_observation


class Policy(nn.Module, metaclass=abc.ABCMeta):
    """Observation batch -> condition -> (subclass: sampler) -> action chunk in robot units.

    Submodules (checkpoint prefixes): `encoder`, `normalizer`; subclasses add their network.
    `normalizer` must hold stats for "action" and "agent_pos" (fit on the training set) before
    training or inference; "point_cloud" is normalised when it holds stats for it (DP3 fits
    per-channel limits on the cloud too), else fed in metres as it is.
    """

    def __init__(self, cfg: ExperimentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = build_observation_encoder(cfg.obs, cfg.model)
        self.normalizer = LinearNormalizer()
        self.schedule = NoiseSchedule(cfg.diffusion)

    @property
    def n_obs_steps(self) -> int:
        return self.cfg.model.n_obs_steps

    @property
    def action_shape(self) -> tuple[int, int]:
        return self.cfg.model.horizon, self.cfg.obs.action_dim

    # -- observation -> condition ----------------------------------------------------------------
    def encode(self, obs: Mapping[str, Tensor]) -> Tensor:
        """Global condition (B, To * F) from the first To steps of a raw observation batch."""
        To = self.n_obs_steps
        batch = check_observation({k: v[:, :To] for k, v in obs.items()}, self.cfg.obs, To)
        flat: dict[str, Tensor] = {}
        state = obs[AGENT_POS][:, :To].float()
        flat[AGENT_POS] = self.normalizer.normalize(AGENT_POS, state).reshape(batch * To, -1)
        if POINT_CLOUD in obs and self.cfg.obs.point_cloud_shape is not None:
            cloud = obs[POINT_CLOUD][:, :To].float()
            if POINT_CLOUD in self.normalizer:
                channels = self.normalizer.stats(POINT_CLOUD)["scale"].shape[0]
                cloud = self.normalizer.normalize(POINT_CLOUD, cloud[..., :channels])
            flat[POINT_CLOUD] = cloud.reshape(batch * To, *cloud.shape[2:])
        if IMAGE in obs and self.cfg.obs.image_shape is not None:
            image = obs[IMAGE][:, :To]
            flat[IMAGE] = image.reshape(batch * To, *image.shape[2:])
        return self.encoder(flat).reshape(batch, -1)

    # -- sampling (the subclass's network) ------------------------------------------------------
    @abc.abstractmethod
    def sample_normalized(
        self,
        cond: Tensor,
        sampler: str,
        steps: int,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
    ) -> Tensor:
        """Normalised action sequences (B, H, Da) for conditions (B, To * F)."""

    @abc.abstractmethod
    def predict_action(
        self,
        obs: Mapping[str, Tensor],
        sampler: str | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
        initial_noise: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Return {"action_pred": (B, H, Da), "action": (B, n_action_steps, Da)} in robot units.

        `initial_noise` (B, H, Da) replaces the sampler's draw of its starting noise.
        """

    def _to_chunk(self, naction: Tensor) -> dict[str, Tensor]:
        action = self.normalizer.unnormalize(ACTION, naction)
        start = self.n_obs_steps - 1
        end = start + self.cfg.model.n_action_steps
        return {"action_pred": action, ACTION: action[:, start:end]}
