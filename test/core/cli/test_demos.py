# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm demos`: a DP3-layout dataset of successful expert episodes, written atomically."""

from __future__ import annotations

import json

import numpy as np
import zarr

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.data import ReplayBuffer, TrajectoryDataset


def test_demos_writes_a_valid_dp3_dataset(demos_dataset):
    buffer = ReplayBuffer.load(demos_dataset)
    assert buffer.n_episodes == 2
    np.testing.assert_array_equal(buffer.episode_ends, [100, 200])  # full episodes (DP3's rule)
    shapes = {k: (buffer[k].shape, buffer[k].dtype) for k in buffer}
    assert shapes == {
        "point_cloud": ((200, 128, 3), np.float32),
        "state": ((200, 9), np.float32),
        "action": ((200, 4), np.float32),
        "full_state": ((200, 39), np.float32),
    }
    assert np.abs(buffer["action"]).max() <= 1.0
    # state is the env's agent_pos: the hand position is MetaWorld's state[:3].
    np.testing.assert_allclose(buffer["state"][:, :3], buffer["full_state"][:, :3], atol=1e-5)
    # zarr format 2, Blosc-compressed, as DP3's scripts write.
    root = zarr.open_group(str(demos_dataset), mode="r")
    assert root.metadata.zarr_format == 2
    # ... and the training dataset reads it.
    data = TrajectoryDataset(demos_dataset, horizon=8, n_obs_steps=2, n_action_steps=4)
    item = data[0]
    assert item["obs"]["point_cloud"].shape == (8, 128, 3)
    assert item["obs"]["agent_pos"].shape == (8, 9)


def test_demos_refuses_bad_input_and_writes_nothing_on_failure(tmp_path, demos_dataset, capsys):
    out = tmp_path / "d.zarr"
    assert sdm(["demos", "--task", "no-such-task", "--episodes", "1", "--out", str(out)]) == 2
    assert "button-press-v3" in capsys.readouterr().err
    # An existing dataset is never replaced without --overwrite.
    args = ["demos", "--task", "reach-v3", "--episodes", "1", "--no-progress"]
    assert sdm([*args, "--out", str(demos_dataset)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # The expert cannot succeed in 3 steps: nothing is kept, nothing is written.
    code = sdm([*args, "--out", str(out), "--max-episode-steps", "3", "--max-attempts", "2"])
    assert code == 1
    assert "only 0 of 1" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_stop_on_success_keeps_short_demos(tmp_path, capsys):
    out = tmp_path / "short.zarr"
    args = ["demos", "--task", "reach-v3", "--episodes", "1", "--out", str(out)]
    assert sdm([*args, "--num-points", "32", "--stop-on-success", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 1 and summary["attempts"] >= 1
    length = ReplayBuffer.load(out).n_steps
    assert length == summary["episode_lengths"][0] == summary["first_success_steps"][0] + 4
