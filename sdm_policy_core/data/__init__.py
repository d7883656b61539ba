# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Demonstration data: the zarr replay buffer, windowed sampling and the training dataset.

dataset = TrajectoryDataset("demos.zarr", horizon=16, n_obs_steps=2, n_action_steps=8,
                            val_fraction=0.1)
normalizer = dataset.get_normalizer()
batch = dataset[0]   # {'obs': {'point_cloud': (16, P, C), 'agent_pos': (16, Ds)},
                     #  'action': (16, Da)}
"""

from sdm_policy_core.data.replay_buffer import (
    DatasetError,
    ReplayBuffer,
    data_keys,
    default_chunks,
    default_compressor,
    validate_episode_ends,
)

# The sampler (the training dataset) needs torch; the dataset tools (bag2zarr, demos) import
# this package without it, so the sampler's names load on first use.
_SAMPLER_NAMES = ("SequenceSampler", "TrajectoryDataset", "create_indices", "get_val_mask")


def __getattr__(name: str):
    if name in _SAMPLER_NAMES:
        from sdm_policy_core.data import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DatasetError",
    "ReplayBuffer",
    "SequenceSampler",
    "TrajectoryDataset",
    "create_indices",
    "data_keys",
    "default_chunks",
    "default_compressor",
    "get_val_mask",
    "validate_episode_ends",
]
