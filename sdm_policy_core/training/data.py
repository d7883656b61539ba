# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Datasets for training: the observation spec comes from the zarr dataset itself.

`model.encoder=auto` (the default) picks the policy's observations from the dataset's arrays:
`point_cloud` -> a DP3 policy (cloud + state), else `img` -> an image policy, else a state-only
(low-dimensional) policy on `state` alone. Every policy needs `data/state` and `data/action`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset

from sdm_policy_core.config import ConfigError, ExperimentConfig, ObservationSpec
from sdm_policy_core.data import DatasetError, TrajectoryDataset, data_keys
from sdm_policy_core.keys import (
    ACTION,
    AGENT_POS,
    ARRAY_ACTION,
    ARRAY_IMAGE,
    ARRAY_POINT_CLOUD,
    ARRAY_STATE,
    DATASET_ARRAYS,
    ENCODER_AUTO,
    ENCODER_DP3,
    ENCODER_IMAGE,
    ENCODER_STATE,
    IMAGE,
    POINT_CLOUD,
)


def _arrays(*names: str) -> dict[str, str | None]:
    return {name: DATASET_ARRAYS[name] for name in names}


def dataset_keys(cfg: ExperimentConfig) -> dict[str, str | None]:
    """Item name -> dataset key: a point-cloud (DP3), image or state-only policy.

    A point-cloud (DP3) policy, an image policy when model.encoder is "image" (Diffusion
    Policy: `img`), or a state-only one ("state").
    """
    if cfg.model.encoder == ENCODER_AUTO:
        raise ConfigError("model.encoder=auto: resolve it from the dataset (resolve_encoder)")
    if cfg.model.encoder == ENCODER_IMAGE:
        return {POINT_CLOUD: None, **_arrays(IMAGE, AGENT_POS, ACTION)}
    if cfg.model.encoder == ENCODER_STATE:
        return {POINT_CLOUD: None, **_arrays(AGENT_POS, ACTION)}
    return _arrays(POINT_CLOUD, AGENT_POS, ACTION)


def resolve_encoder(cfg: ExperimentConfig, path: Path) -> ExperimentConfig:
    """Return cfg with `model.encoder` chosen from the dataset's arrays when it is "auto".

    See the module docstring. Raises DatasetError naming the arrays when the dataset lacks
    `state` or `action`, or the arrays an explicit encoder needs.
    """
    keys = data_keys(path)
    missing = [k for k in (ARRAY_STATE, ARRAY_ACTION) if k not in keys]
    if missing:
        raise DatasetError(
            f"dataset {path} has no data/{' nor data/'.join(missing)} (it has data/{keys}); "
            f"every policy observes data/state (the robot state, `agent_pos`) and learns "
            f"data/action, plus data/point_cloud or data/img when it has them"
        )
    encoder = cfg.model.encoder
    if encoder == ENCODER_AUTO:
        if ARRAY_POINT_CLOUD in keys:
            encoder = ENCODER_DP3
        else:
            encoder = ENCODER_IMAGE if ARRAY_IMAGE in keys else ENCODER_STATE
        model = dataclasses.replace(cfg.model, encoder=encoder)
        cfg = dataclasses.replace(cfg, model=model)
    need = {ENCODER_DP3: ARRAY_POINT_CLOUD, ENCODER_IMAGE: ARRAY_IMAGE}.get(encoder)
    if need is not None and need not in keys:
        raise DatasetError(
            f"model.encoder={encoder} needs data/{need}, but dataset {path} has data/{keys}; "
            f"leave model.encoder=auto to train on the arrays it has"
        )
    return cfg


def _observation_spec(
    cfg: ExperimentConfig, dataset: TrajectoryDataset, path: Path
) -> ObservationSpec:
    """Return the observation spec a dataset gives for the encoder in `cfg`."""
    buf, keys = dataset.replay_buffer, dataset.keys
    channels = dataset.point_cloud_channels
    spec = {
        "point_cloud_shape": None,
        "image_shape": None,
        "state_dim": int(buf[keys[AGENT_POS]].shape[-1]),
        "action_dim": int(buf[keys[ACTION]].shape[-1]),
    }
    if POINT_CLOUD in keys:
        P, C = buf[keys[POINT_CLOUD]].shape[1:]
        if channels > C:
            raise DatasetError(
                f"model.use_pc_color needs 6-channel clouds (xyz + rgb); "
                f"{path} has {C} channels in {keys[POINT_CLOUD]!r}"
            )
        spec["point_cloud_shape"] = (int(P), channels)
    if IMAGE in keys:
        H, W, _ = buf[keys[IMAGE]].shape[1:]
        spec["image_shape"] = (3, int(H), int(W))
    return ObservationSpec(**spec)


def _trajectories(cfg: ExperimentConfig, path: Path, val_fraction: float) -> TrajectoryDataset:
    if not Path(path).exists():
        raise DatasetError(f"dataset {path} does not exist")
    m = cfg.model
    return TrajectoryDataset(
        path,
        m.horizon,
        m.n_obs_steps,
        m.n_action_steps,
        keys=dataset_keys(cfg),
        val_fraction=val_fraction,
        seed=cfg.train.seed,
        split="train",
        point_cloud_channels=(6 if m.use_pc_color else 3) if m.encoder == ENCODER_DP3 else None,
    )


def make_datasets(
    cfg: ExperimentConfig, path: Path, fix_obs: bool = True, extra: Sequence[Path] = ()
) -> tuple[ExperimentConfig, Dataset, TrajectoryDataset]:
    """(cfg with the dataset's observation spec, train split, val split).

    fix_obs: take point-cloud/image/state/action sizes from the dataset (teacher training);
    False checks that the dataset fits the spec in `cfg` (distillation of a given teacher).
    extra: more datasets whose every episode joins the training split (none is held out), e.g.
    the closed-loop rollouts of `sdm eval --record` for distillation, which uses the
    observations only. Each must give the same observation spec as `path`.
    """
    cfg = resolve_encoder(cfg, Path(path))
    train = _trajectories(cfg, path, cfg.train.val_fraction)
    obs = _observation_spec(cfg, train, path)
    if fix_obs:
        cfg = dataclasses.replace(cfg, obs=obs)
    elif obs != cfg.obs:
        raise ConfigError(
            f"dataset {path} does not fit the checkpoint: it gives {obs}, the checkpoint "
            f"expects {cfg.obs}"
        )
    val = train.split_dataset("val")
    if not extra:
        return cfg, train, val
    parts = [train]
    for extra_path in extra:
        part = _trajectories(cfg, extra_path, 0.0)
        extra_obs = _observation_spec(cfg, part, extra_path)
        if extra_obs != obs:
            raise ConfigError(
                f"extra dataset {extra_path} gives {extra_obs}, but {path} gives {obs}; "
                f"record it with the same task, points and cameras"
            )
        parts.append(part)
    return cfg, ConcatDataset(parts), val
