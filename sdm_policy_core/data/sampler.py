# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Fixed-length windows over episodes with edge padding, as Diffusion Policy / DP3 sample them.

`create_indices` and `SequenceSampler.sample_sequence` reproduce Diffusion Policy's
`diffusion_policy/common/sampler.py` exactly: a window of `sequence_length` steps may start up to
`pad_before` steps before an episode and end up to `pad_after` steps after it; the missing steps
repeat the episode's first / last frame. With pad_before = n_obs_steps - 1 and
pad_after = n_action_steps - 1 every step of every episode is the current step of some sample.
`get_val_mask` is Diffusion Policy's seeded episode split. `TrajectoryDataset` is the torch
dataset of training windows built on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.utils.data

from sdm_policy_core.data.replay_buffer import DatasetError, ReplayBuffer, _open_group
from sdm_policy_core.keys import ACTION, AGENT_POS, DATASET_ARRAYS, DEPTH, IMAGE, OBS, POINT_CLOUD
from sdm_policy_core.normalizer import LinearNormalizer, NormalizerMode


def create_indices(
    episode_ends: np.ndarray,
    sequence_length: int,
    episode_mask: np.ndarray,
    pad_before: int = 0,
    pad_after: int = 0,
) -> np.ndarray:
    """(N, 4) int64 rows [buffer_start, buffer_end, sample_start, sample_end] of every window.

    Steps buffer[buffer_start:buffer_end] fill sample[sample_start:sample_end] of a window of
    `sequence_length`; the rest of the window is edge padding. Episodes with mask False are
    skipped. pad_before / pad_after are clipped to [0, sequence_length - 1].
    """
    episode_ends = np.asarray(episode_ends, dtype=np.int64)
    episode_mask = np.asarray(episode_mask, dtype=bool)
    if episode_mask.shape != episode_ends.shape:
        raise ValueError(
            f"episode_mask has shape {episode_mask.shape}, episode_ends "
            f"{episode_ends.shape}; they must match"
        )
    pad_before = min(max(pad_before, 0), sequence_length - 1)
    pad_after = min(max(pad_after, 0), sequence_length - 1)
    indices: list[list[int]] = []
    for i in range(len(episode_ends)):
        if not episode_mask[i]:
            continue
        start_idx = int(episode_ends[i - 1]) if i > 0 else 0
        episode_length = int(episode_ends[i]) - start_idx
        min_start = -pad_before
        max_start = episode_length - sequence_length + pad_after
        for idx in range(min_start, max_start + 1):
            buffer_start_idx = max(idx, 0) + start_idx
            buffer_end_idx = min(idx + sequence_length, episode_length) + start_idx
            start_offset = buffer_start_idx - (idx + start_idx)
            end_offset = (idx + sequence_length + start_idx) - buffer_end_idx
            indices.append(
                [buffer_start_idx, buffer_end_idx, start_offset, sequence_length - end_offset]
            )
    return np.asarray(indices, dtype=np.int64).reshape(-1, 4)


def get_val_mask(n_episodes: int, val_ratio: float, seed: int = 0) -> np.ndarray:
    """(E,) bool mask of validation episodes, drawn with numpy's default_rng(seed).

    round(E * val_ratio) of them, at least 1 and at most E - 1 when val_ratio > 0, drawn with
    numpy's default_rng(seed) (Diffusion Policy).
    """
    val_mask = np.zeros(n_episodes, dtype=bool)
    if val_ratio <= 0:
        return val_mask
    n_val = min(max(1, round(n_episodes * val_ratio)), n_episodes - 1)
    rng = np.random.default_rng(seed=seed)
    val_mask[rng.choice(n_episodes, size=n_val, replace=False)] = True
    return val_mask


class SequenceSampler:
    """Windows of `sequence_length` steps over the episodes selected by `episode_mask`.

    episode_ends: (E,) cumulative episode ends of the buffer.
    pad_before: steps a window may start before its episode (n_obs_steps - 1 for policies).
    pad_after: steps a window may end after its episode (n_action_steps - 1 for policies).
    episode_mask: (E,) bool, episodes to draw from (default: all).
    """

    def __init__(
        self,
        episode_ends: np.ndarray,
        sequence_length: int,
        pad_before: int = 0,
        pad_after: int = 0,
        episode_mask: np.ndarray | None = None,
    ) -> None:
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        episode_ends = np.asarray(episode_ends, dtype=np.int64)
        if episode_mask is None:
            episode_mask = np.ones(episode_ends.shape, dtype=bool)
        self.sequence_length = int(sequence_length)
        self.episode_ends = episode_ends
        self.episode_mask = np.asarray(episode_mask, dtype=bool)
        if np.any(self.episode_mask):
            self.indices = create_indices(
                episode_ends,
                sequence_length,
                self.episode_mask,
                pad_before=pad_before,
                pad_after=pad_after,
            )
        else:
            self.indices = np.zeros((0, 4), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def sample_sequence(
        self, idx: int, data: Mapping[str, np.ndarray], keys: Iterable[str] | None = None
    ) -> dict[str, np.ndarray]:
        """{key: (sequence_length, ...) array} of window `idx`, edge-padded.

        data: key -> (T, ...) arrays of the whole buffer (e.g. a ReplayBuffer).
        keys: which keys to sample (default: all of `data`). Unpadded windows are views.
        """
        buffer_start, buffer_end, sample_start, sample_end = (int(v) for v in self.indices[idx])
        result: dict[str, np.ndarray] = {}
        for key in data.keys() if keys is None else keys:
            source = data[key]
            sample = source[buffer_start:buffer_end]
            if sample_start > 0 or sample_end < self.sequence_length:
                padded = np.zeros((self.sequence_length, *source.shape[1:]), dtype=source.dtype)
                if sample_start > 0:
                    padded[:sample_start] = sample[0]
                if sample_end < self.sequence_length:
                    padded[sample_end:] = sample[-1]
                padded[sample_start:sample_end] = sample
                sample = padded
            result[key] = sample
        return result


# ------------------------------------------------------------------------------------------------
# Training dataset


def _check_image_dtype(dtype: Any, key: str, source: str) -> None:
    """Raise DatasetError unless images are uint8 (the dataset contract).

    A float array may hold 0-255 or 0-1, and the encoder would silently take 0-255 floats for
    0-1.
    """
    if np.dtype(dtype) != np.uint8:
        raise DatasetError(
            f"{source}: data/{key} is {np.dtype(dtype)}, but image policies read uint8 RGB "
            f"(0-255). Diffusion Policy's PushT stores its images as float32 holding 0-255: "
            f"convert them to uint8, or train a state-only policy with model.encoder=state"
        )


# item name -> dataset array of a DP3 (point cloud) dataset, the default
DEFAULT_KEYS: dict[str, str] = {k: DATASET_ARRAYS[k] for k in (POINT_CLOUD, AGENT_POS, ACTION)}
OBS_KEYS: tuple[str, ...] = (POINT_CLOUD, AGENT_POS, IMAGE, DEPTH)


class TrajectoryDataset(torch.utils.data.Dataset):
    """Windows of `horizon` steps of a zarr dataset, as DP3 / Diffusion Policy train on them.

    Each item is a dict of tensors, with T = horizon:
        {'obs': {'point_cloud': (T, P, C) float32, 'agent_pos': (T, Ds) float32,
                 optional 'image': (T, 3, H, W) uint8, optional 'depth': (T, H, W) float32},
         'action': (T, Da) float32}
    Windows are edge-padded with pad_before = n_obs_steps - 1 and pad_after =
    n_action_steps - 1. Train and validation are split by episode (`get_val_mask`, seeded).

    path: the zarr dataset, or an already loaded ReplayBuffer.
    keys: item name -> dataset key for 'point_cloud', 'agent_pos', 'action' and optionally
        'image' / 'depth'; default {'point_cloud': 'point_cloud', 'agent_pos': 'state',
        'action': 'action'} (DP3 stores agent_pos as `state`). Map a name to None to drop it,
        e.g. {'point_cloud': None, 'image': 'img'} for an image policy.
    val_fraction: fraction of episodes held out for validation (0 = none).
    split: 'train' or 'val'.
    point_cloud_channels: keep only the first C channels of the cloud (3 = xyz); None = all.
    """

    def __init__(
        self,
        path: str | Path | ReplayBuffer,
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
        keys: Mapping[str, str | None] | None = None,
        val_fraction: float = 0.0,
        seed: int = 42,
        split: str = "train",
        point_cloud_channels: int | None = None,
    ) -> None:
        super().__init__()
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 0 <= val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if horizon < 1 or not 1 <= n_obs_steps <= horizon or n_action_steps < 1:
            raise ValueError(
                f"need horizon >= 1, 1 <= n_obs_steps <= horizon, "
                f"n_action_steps >= 1; got horizon={horizon}, "
                f"n_obs_steps={n_obs_steps}, n_action_steps={n_action_steps}"
            )
        mapping = {**DEFAULT_KEYS, **dict(keys or {})}
        unknown = sorted(set(mapping) - {*OBS_KEYS, ACTION})
        if unknown:
            raise ValueError(
                f"keys: unknown item names {unknown}; valid are {[*OBS_KEYS, ACTION]}"
            )
        self.keys: dict[str, str] = {k: v for k, v in mapping.items() if v is not None}
        if ACTION not in self.keys:
            raise ValueError("keys must map 'action' to a dataset key")
        if isinstance(path, ReplayBuffer):
            missing = [v for v in self.keys.values() if v not in path]
            if missing:
                raise DatasetError(f"replay buffer has no {missing}; it has {path.keys()}")
            if IMAGE in self.keys:
                _check_image_dtype(path[self.keys[IMAGE]].dtype, self.keys[IMAGE], "buffer")
            self.replay_buffer = path
        else:
            if IMAGE in self.keys and Path(path).exists():  # before reading the images
                image = _open_group(Path(path)).get(f"data/{self.keys[IMAGE]}")
                if image is not None:  # a missing key: ReplayBuffer.load names what there is
                    _check_image_dtype(image.dtype, self.keys[IMAGE], str(path))
            self.replay_buffer = ReplayBuffer.load(path, keys=sorted(set(self.keys.values())))
        self.horizon, self.n_obs_steps, self.n_action_steps = horizon, n_obs_steps, n_action_steps
        self.split, self.seed, self.val_fraction = split, seed, val_fraction
        self.point_cloud_channels = point_cloud_channels
        self.val_mask = get_val_mask(self.replay_buffer.n_episodes, val_fraction, seed)
        self.train_mask = ~self.val_mask
        self.episode_mask = self.train_mask if split == "train" else self.val_mask
        self.sampler = SequenceSampler(
            self.replay_buffer.episode_ends,
            horizon,
            pad_before=n_obs_steps - 1,
            pad_after=n_action_steps - 1,
            episode_mask=self.episode_mask,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def split_dataset(self, split: str) -> TrajectoryDataset:
        """Return the same dataset (sharing the loaded buffer) with the other split selected."""
        return TrajectoryDataset(
            self.replay_buffer,
            self.horizon,
            self.n_obs_steps,
            self.n_action_steps,
            keys={**dict.fromkeys(DEFAULT_KEYS), **self.keys},
            val_fraction=self.val_fraction,
            seed=self.seed,
            split=split,
            point_cloud_channels=self.point_cloud_channels,
        )

    def episode_slices(self, mask: np.ndarray) -> list[slice]:
        """Time-step slices [start, end) of the episodes selected by the (E,) bool `mask`."""
        ends = self.replay_buffer.episode_ends.tolist()
        starts = [0, *ends[:-1]]
        return [slice(s, e) for s, e, m in zip(starts, ends, mask, strict=True) if m]

    def get_normalizer(
        self, mode: NormalizerMode = "limits", point_cloud_mode: NormalizerMode = "limits"
    ) -> LinearNormalizer:
        """LinearNormalizer fitted on the train episodes.

        'action' and 'agent_pos' with `mode`, 'point_cloud' (the channels this dataset yields)
        with `point_cloud_mode`.

        DP3 fits the point cloud per channel with 'limits' as well (its MetaWorld / Adroit
        datasets); pass point_cloud_mode='identity' to feed raw metres to the encoder.
        Unlike DP3 (which fits on all episodes), validation episodes are left out.
        """
        slices = self.episode_slices(self.train_mask)
        if not slices:
            raise DatasetError("the train split has no episodes to fit a normalizer on")
        data: dict[str, list[np.ndarray]] = {}
        modes: dict[str, NormalizerMode] = {}
        for name in (ACTION, AGENT_POS, POINT_CLOUD):
            if name not in self.keys:
                continue
            array = self.replay_buffer[self.keys[name]]
            if name == POINT_CLOUD and self.point_cloud_channels is not None:
                array = array[..., : self.point_cloud_channels]
            data[name] = [array[s] for s in slices]  # views: no copy of the dataset
            modes[name] = point_cloud_mode if name == POINT_CLOUD else mode
        return LinearNormalizer().fit(data, mode=modes)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        sample = self.sampler.sample_sequence(
            idx, self.replay_buffer, keys=list(dict.fromkeys(self.keys.values()))
        )
        obs: dict[str, torch.Tensor] = {}
        for name, key in self.keys.items():
            value = sample[key]
            if name == IMAGE:
                if value.ndim != 4 or value.shape[-1] != 3:
                    raise DatasetError(
                        f"image key {key!r} must be (T, H, W, 3) uint8, "
                        f"got {value.shape} {value.dtype}"
                    )
                tensor = torch.from_numpy(np.ascontiguousarray(np.moveaxis(value, -1, 1)))
            else:
                if name == POINT_CLOUD and self.point_cloud_channels is not None:
                    value = value[..., : self.point_cloud_channels]
                tensor = torch.from_numpy(np.array(value, dtype=np.float32))
            if name == ACTION:
                action = tensor
            else:
                obs[name] = tensor
        return {OBS: obs, ACTION: action}
