"""Datasets for training: the observation spec comes from the zarr dataset itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sdm_policy_core.config import ConfigError, ExperimentConfig, ObservationSpec
from sdm_policy_core.data import DatasetError, TrajectoryDataset


def dataset_keys(cfg: ExperimentConfig) -> dict[str, str | None]:
    """Item name -> dataset key: a point-cloud (DP3) policy, or an image policy when
    model.encoder is "image" (Diffusion Policy: `img`)."""
    if cfg.model.encoder == "image":
        return {"point_cloud": None, "image": "img", "agent_pos": "state", "action": "action"}
    return {"point_cloud": "point_cloud", "agent_pos": "state", "action": "action"}


def make_datasets(
    cfg: ExperimentConfig, path: Path, fix_obs: bool = True
) -> tuple[ExperimentConfig, TrajectoryDataset, TrajectoryDataset]:
    """(cfg with the dataset's observation spec, train split, val split).

    fix_obs: take point-cloud/image/state/action sizes from the dataset (teacher training);
    False checks that the dataset fits the spec in `cfg` (distillation of a given teacher).
    """
    if not Path(path).exists():
        raise DatasetError(f"dataset {path} does not exist")
    m = cfg.model
    channels = 6 if m.use_pc_color else 3
    train = TrajectoryDataset(
        path,
        m.horizon,
        m.n_obs_steps,
        m.n_action_steps,
        keys=dataset_keys(cfg),
        val_fraction=cfg.train.val_fraction,
        seed=cfg.train.seed,
        split="train",
        point_cloud_channels=channels if cfg.model.encoder == "dp3" else None,
    )
    buf, keys = train.replay_buffer, train.keys
    spec = {
        "point_cloud_shape": None,
        "image_shape": None,
        "state_dim": int(buf[keys["agent_pos"]].shape[-1]),
        "action_dim": int(buf[keys["action"]].shape[-1]),
    }
    if "point_cloud" in keys:
        P, C = buf[keys["point_cloud"]].shape[1:]
        if channels > C:
            raise DatasetError(
                f"model.use_pc_color needs 6-channel clouds (xyz + rgb); "
                f"{path} has {C} channels in {keys['point_cloud']!r}"
            )
        spec["point_cloud_shape"] = (int(P), channels)
    if "image" in keys:
        H, W, _ = buf[keys["image"]].shape[1:]
        spec["image_shape"] = (3, int(H), int(W))
    obs = ObservationSpec(**spec)
    if fix_obs:
        cfg = dataclasses.replace(cfg, obs=obs)
    elif obs != cfg.obs:
        raise ConfigError(
            f"dataset {path} does not fit the checkpoint: it gives {obs}, the checkpoint "
            f"expects {cfg.obs}"
        )
    return cfg, train, train.split_dataset("val")
