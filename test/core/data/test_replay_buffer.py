# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Zarr replay buffer (DP3 / Diffusion Policy layout), sequence sampling, training dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numcodecs
import numpy as np
import pytest
import torch
import zarr

from sdm_policy_core.data import (
    DatasetError,
    ReplayBuffer,
    SequenceSampler,
    TrajectoryDataset,
    create_indices,
    get_val_mask,
)
from sdm_policy_core.data import replay_buffer as rb_mod


def _episode(length: int, start: float, points: int = 8) -> dict[str, np.ndarray]:
    t = start + np.arange(length, dtype=np.float32)
    return {
        "point_cloud": np.broadcast_to(t[:, None, None], (length, points, 3)).copy(),
        "state": np.stack([t, -t], axis=1),
        "action": np.stack([t, t * 2, t * 3], axis=1),
    }


def _buffer(lengths=(5, 7)) -> ReplayBuffer:
    buffer = ReplayBuffer.create_empty()
    start = 0.0
    for length in lengths:
        buffer.add_episode(_episode(length, start))
        start += 100.0
    return buffer


# ------------------------------------------------------------------------------------------------
# ReplayBuffer


def test_add_episode_and_round_trip(tmp_path: Path) -> None:
    buffer = _buffer((5, 7, 30))
    assert buffer.n_episodes == 3 and buffer.n_steps == 42
    assert buffer.episode_ends.tolist() == [5, 12, 42]
    assert buffer.episode_ends.dtype == np.int64
    assert np.array_equal(buffer.get_episode(1)["state"][:, 0], 100 + np.arange(7))
    buffer.meta["task"] = np.array([3], dtype=np.int32)

    path = buffer.save(tmp_path / "demo.zarr")
    loaded = ReplayBuffer.load(path)
    assert sorted(loaded.keys()) == ["action", "point_cloud", "state"]
    assert loaded.episode_ends.tolist() == [5, 12, 42]
    for key in buffer:
        assert loaded[key].dtype == buffer[key].dtype
        assert np.array_equal(loaded[key], buffer[key])
    assert loaded.meta["task"].tolist() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.zarr"]

    # The files follow the contract: zarr format 2, Blosc zstd, time chunks.
    zarray = json.loads((path / "data" / "point_cloud" / ".zarray").read_text())
    assert zarray["zarr_format"] == 2
    assert zarray["compressor"]["id"] == "blosc" and zarray["compressor"]["cname"] == "zstd"
    assert zarray["chunks"] == [42, 8, 3]
    ends = json.loads((path / "meta" / "episode_ends" / ".zarray").read_text())
    assert ends["dtype"] == "<i8"

    subset = ReplayBuffer.load(path, keys=["state"])
    assert subset.keys() == ["state"] and subset.n_episodes == 3


def test_add_episode_validates() -> None:
    buffer = _buffer((3,))
    with pytest.raises(DatasetError, match="keys"):
        buffer.add_episode({"state": np.zeros((2, 2))})
    bad = _episode(4, 0.0)
    bad["action"] = np.zeros((4, 5))
    with pytest.raises(DatasetError, match="per-step shape"):
        buffer.add_episode(bad)
    bad = _episode(4, 0.0)
    bad["action"] = bad["action"][:3]
    with pytest.raises(DatasetError, match="same number"):
        buffer.add_episode(bad)
    assert buffer.n_steps == 3 and buffer.n_episodes == 1  # nothing half-added


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        ReplayBuffer.load(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="not a zarr group"):
        ReplayBuffer.load(tmp_path / "plain")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(DatasetError, match="not a zipped zarr"):
        ReplayBuffer.load(tmp_path / "file.txt")
    path = _buffer().save(tmp_path / "d.zarr")
    with pytest.raises(DatasetError, match=r"no data/img.*it has data/\['action', "):
        ReplayBuffer.load(path, keys=["state", "img"])


def _write_raw(path: Path, n_steps: int, ends: np.ndarray) -> Path:
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_group("data").create_array("state", data=np.zeros((n_steps, 2), np.float32))
    root.create_group("meta").create_array("episode_ends", data=ends)
    return path


@pytest.mark.parametrize(
    ("n_steps", "ends", "message"),
    [
        (10, np.array([4, 4, 10]), "strictly increasing"),
        (10, np.array([6, 3, 10]), "strictly increasing"),
        (10, np.array([4, 8]), "ends at 8 but the data arrays have 10"),
        (10, np.array([4, 12]), "ends at 12"),
        (10, np.array([0, 10]), "first episode"),
        (10, np.array([[4, 10]]), "1-D"),
        (10, np.array([4.5, 10.0]), "integers"),
    ],
)
def test_episode_ends_validation(
    tmp_path: Path, n_steps: int, ends: np.ndarray, message: str
) -> None:
    path = _write_raw(tmp_path / "bad.zarr", n_steps, ends)
    with pytest.raises(DatasetError, match=message) as info:
        ReplayBuffer.load(path)
    assert "episode_ends" in str(info.value)


def test_save_is_atomic_and_never_damages_existing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _buffer((5,)).save(tmp_path / "d.zarr")
    with pytest.raises(DatasetError, match="overwrite"):
        _buffer((6,)).save(path)

    real_write = rb_mod._write_array

    def failing_write(group, name, value, chunks, compressor):
        real_write(group, name, value, chunks, compressor)
        if name == "action":
            raise OSError("simulated disk failure")

    monkeypatch.setattr(rb_mod, "_write_array", failing_write)
    with pytest.raises(OSError, match="simulated"):
        _buffer((6, 6)).save(path, overwrite=True)
    monkeypatch.undo()
    assert ReplayBuffer.load(path).episode_ends.tolist() == [5]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zarr"]

    _buffer((6, 6)).save(path, overwrite=True)
    assert ReplayBuffer.load(path).episode_ends.tolist() == [6, 12]

    (tmp_path / "notes").mkdir()
    with pytest.raises(DatasetError, match="not a zarr dataset"):
        _buffer().save(tmp_path / "notes", overwrite=True)


# ------------------------------------------------------------------------------------------------
# Sequence sampling


def test_create_indices_matches_diffusion_policy() -> None:
    # Episode of 3 steps, window 4, pad_before 1, pad_after 2 (hand-computed with DP's rules).
    indices = create_indices(np.array([3]), 4, np.array([True]), pad_before=1, pad_after=2)
    assert indices.tolist() == [
        [0, 3, 1, 4],  # starts 1 step before the episode
        [0, 3, 0, 3],
        [1, 3, 0, 2],
    ]
    assert create_indices(np.array([3, 5]), 2, np.array([False, True])).tolist() == [[3, 5, 0, 2]]


def test_sampler_pads_with_first_and_last_frames() -> None:
    buffer = _buffer((3, 4))  # frames 0,1,2 and 100,101,102,103 (value = state[:, 0])
    n_obs, n_act, horizon = 2, 3, 4
    sampler = SequenceSampler(
        buffer.episode_ends, horizon, pad_before=n_obs - 1, pad_after=n_act - 1
    )
    windows = [
        sampler.sample_sequence(i, buffer)["state"][:, 0].tolist() for i in range(len(sampler))
    ]
    assert windows == [
        [0, 0, 1, 2],  # first frame repeated before the start
        [0, 1, 2, 2],
        [1, 2, 2, 2],  # last frame repeated after the end
        [100, 100, 101, 102],
        [100, 101, 102, 103],
        [101, 102, 103, 103],
        [102, 103, 103, 103],
    ]
    # Every step of every episode is the current observation (index n_obs - 1) of a window.
    current = sorted(w[n_obs - 1] for w in windows)
    assert current == [0, 1, 2, 100, 101, 102, 103]
    sample = sampler.sample_sequence(0, buffer)
    assert sample["point_cloud"].shape == (4, 8, 3)
    assert np.all(sample["point_cloud"][0] == 0) and np.all(sample["point_cloud"][3] == 2)

    only_second = SequenceSampler(
        buffer.episode_ends, horizon, 1, 2, episode_mask=np.array([False, True])
    )
    assert len(only_second) == 4
    empty = SequenceSampler(
        buffer.episode_ends, horizon, 1, 2, episode_mask=np.array([False, False])
    )
    assert len(empty) == 0 and empty.indices.shape == (0, 4)


def test_val_mask_is_seeded_and_keeps_train_episodes() -> None:
    mask = get_val_mask(10, 0.2, seed=3)
    assert mask.sum() == 2 and np.array_equal(mask, get_val_mask(10, 0.2, seed=3))
    assert get_val_mask(2, 0.9, seed=0).sum() == 1  # at least one train episode
    assert get_val_mask(5, 0.0).sum() == 0


# ------------------------------------------------------------------------------------------------
# A dataset written exactly as DP3's data-generation scripts write it


def _write_dp3_dataset(path: Path, lengths=(120, 90, 110), state_dim=9, action_dim=4) -> None:
    """Mirror of DP3's gen_demonstration scripts (zarr 2 API calls ported to zarr 3, format 2)."""
    rng = np.random.default_rng(0)
    n = sum(lengths)
    img_arrays = rng.integers(0, 256, size=(n, 84, 84, 3), dtype=np.uint8)
    point_cloud_arrays = rng.normal(size=(n, 512, 6)).astype(np.float32)
    depth_arrays = rng.uniform(0, 2, size=(n, 84, 84)).astype(np.float32)
    state_arrays = rng.normal(size=(n, state_dim)).astype(np.float32)
    full_state_arrays = rng.normal(size=(n, 18)).astype(np.float32)
    action_arrays = rng.uniform(-1, 1, size=(n, action_dim)).astype(np.float32)
    episode_ends_arrays = np.cumsum(lengths).astype(np.int64)

    zarr_root = zarr.open_group(str(path), mode="w", zarr_format=2)
    zarr_data = zarr_root.create_group("data")
    zarr_meta = zarr_root.create_group("meta")
    compressor = numcodecs.Blosc(cname="zstd", clevel=3, shuffle=1)
    for name, array, chunks in [
        ("img", img_arrays, (100, 84, 84, 3)),
        ("point_cloud", point_cloud_arrays, (100, 512, 6)),
        ("depth", depth_arrays, (100, 84, 84)),
        ("state", state_arrays, (100, state_dim)),
        ("full_state", full_state_arrays, (100, 18)),
        ("action", action_arrays, (100, action_dim)),
    ]:
        zarr_data.create_array(name, data=array, chunks=chunks, compressors=compressor)
    zarr_meta.create_array("episode_ends", data=episode_ends_arrays, compressors=compressor)


@pytest.fixture(scope="module")
def dp3_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dp3") / "metaworld_reach.zarr"
    _write_dp3_dataset(path)
    return path


def test_dp3_dataset_loads_through_trajectory_dataset(dp3_dataset: Path) -> None:
    horizon, n_obs, n_act = 16, 2, 8
    train = TrajectoryDataset(dp3_dataset, horizon, n_obs, n_act, val_fraction=0.34, seed=42)
    val = TrajectoryDataset(
        dp3_dataset, horizon, n_obs, n_act, val_fraction=0.34, seed=42, split="val"
    )
    assert sorted(train.replay_buffer.keys()) == ["action", "point_cloud", "state"]  # no images
    lengths = np.diff(np.concatenate([[0], train.replay_buffer.episode_ends]))
    windows = lengths - horizon + (n_obs - 1) + (n_act - 1) + 1
    assert len(train) == windows[train.train_mask].sum()
    assert len(val) == windows[val.val_mask].sum() and val.val_mask.sum() == 1
    assert not np.any(train.train_mask & val.val_mask)  # split by episode

    item = train[0]
    assert set(item) == {"obs", "action"} and set(item["obs"]) == {"point_cloud", "agent_pos"}
    assert item["obs"]["point_cloud"].shape == (16, 512, 6)
    assert item["obs"]["agent_pos"].shape == (16, 9)
    assert item["action"].shape == (16, 4)
    assert all(t.dtype == torch.float32 for t in (*item["obs"].values(), item["action"]))
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4, shuffle=True)))
    assert batch["obs"]["point_cloud"].shape == (4, 16, 512, 6)

    xyz = TrajectoryDataset(dp3_dataset, horizon, n_obs, n_act, point_cloud_channels=3)
    assert xyz[5]["obs"]["point_cloud"].shape == (16, 512, 3)


def test_dp3_dataset_with_images_and_depth(dp3_dataset: Path) -> None:
    data = TrajectoryDataset(
        dp3_dataset, 4, 2, 3, keys={"point_cloud": None, "image": "img", "depth": "depth"}
    )
    item = data[len(data) - 1]
    assert set(item["obs"]) == {"agent_pos", "image", "depth"}
    assert item["obs"]["image"].shape == (4, 3, 84, 84)
    assert item["obs"]["image"].dtype == torch.uint8
    assert item["obs"]["depth"].shape == (4, 84, 84)
    raw = data.replay_buffer["img"][-1]
    assert torch.equal(item["obs"]["image"][-1], torch.from_numpy(raw).permute(2, 0, 1))
    with pytest.raises(DatasetError, match="no data/rgb"):
        TrajectoryDataset(dp3_dataset, 4, 2, 3, keys={"image": "rgb"})


def test_normalizer_is_fitted_on_train_episodes(tmp_path: Path) -> None:
    buffer = _buffer((5, 7, 6, 8))
    data = TrajectoryDataset(buffer, 4, 2, 3, val_fraction=0.25, seed=0)
    norm = data.get_normalizer()
    assert norm.keys() == ["action", "agent_pos", "point_cloud"]
    assert norm.mode("point_cloud") == "limits"  # as DP3 fits it
    assert data.get_normalizer(point_cloud_mode="identity").mode("point_cloud") == "identity"
    rows = np.concatenate(
        [np.arange(s.start, s.stop) for s in data.episode_slices(data.train_mask)]
    )
    assert len(rows) < buffer.n_steps  # the validation episode is excluded
    train_actions = torch.from_numpy(buffer["action"][rows])
    naction = norm.normalize("action", train_actions)
    assert torch.allclose(naction.min(0).values, torch.full((3,), -1.0), atol=1e-5)
    assert torch.allclose(naction.max(0).values, torch.full((3,), 1.0), atol=1e-5)
    assert torch.allclose(
        norm.stats("agent_pos")["max"], torch.from_numpy(buffer["state"][rows].max(0))
    )
    item = data[0]
    assert torch.allclose(
        norm.unnormalize("action", norm.normalize("action", item["action"])),
        item["action"],
        atol=1e-4,
    )
    assert len(data.split_dataset("val")) > 0
