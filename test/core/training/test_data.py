# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm eval --record`, `sdm distill --extra-dataset`: distilling on closed-loop observations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.config import ConfigError, load_config
from sdm_policy_core.data import ReplayBuffer, TrajectoryDataset
from sdm_policy_core.eval.rollout import policy_observation
from sdm_policy_core.runtime import PolicyRuntime
from sdm_policy_core.sim import MetaWorldEnv
from sdm_policy_core.sim.demos import EVAL_STREAM, episode_seed
from sdm_policy_core.training.data import dataset_keys, make_datasets
from test.conftest import TINY

STEPS = 12  # 3 policy calls of 4 actions
DISTILL = [o for o in TINY if o.startswith("train.")]  # the rest comes from the teacher


def _eval(checkpoint, out, *extra: str) -> int:
    return sdm(
        [
            "eval",
            "--checkpoint",
            str(checkpoint),
            "--task",
            "button-press-v3",
            "--episodes",
            "1",
            "--seeds",
            "5",
            "6",
            "--steps",
            "2",
            "--max-episode-steps",
            str(STEPS),
            "--threads",
            "1",
            "--no-plot",
            "--no-progress",
            "--out",
            str(out),
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def recorded(tiny_checkpoint, tmp_path_factory):
    """Evaluate with and without --record.

    (evaluation JSON with --record, the same evaluation without it, the recorded dataset).
    """
    tmp = tmp_path_factory.mktemp("visited")
    path = tmp / "visited.zarr"
    assert _eval(tiny_checkpoint, tmp / "recorded.json", "--record", str(path)) == 0
    assert _eval(tiny_checkpoint, tmp / "plain.json") == 0
    with_record = json.loads((tmp / "recorded.json").read_text())
    plain = json.loads((tmp / "plain.json").read_text())
    return with_record, plain, path


def test_recording_keeps_every_step_and_changes_no_outcome(recorded, tiny_checkpoint):
    with_record, plain, path = recorded
    assert with_record["episode_results"] == plain["episode_results"]
    assert with_record["record"] == {"path": str(path), "steps": 2 * STEPS}
    buffer = ReplayBuffer.load(path)
    assert buffer.episode_ends.tolist() == [STEPS, 2 * STEPS]
    assert buffer["point_cloud"].shape == (2 * STEPS, 128, 3)
    assert buffer["state"].shape == (2 * STEPS, 9) and buffer["action"].shape == (2 * STEPS, 4)
    assert {buffer[k].dtype for k in ("point_cloud", "state", "action")} == {np.dtype("float32")}
    assert buffer.meta["eval_seed"].tolist() == [5, 6]
    assert buffer.meta["reset_seed"].tolist() == [episode_seed(s, 0, EVAL_STREAM) for s in (5, 6)]
    assert buffer.meta["success"].tolist() == [0, 0]
    # Step 0 of the second episode is the reset observation of its placement, and the first
    # actions are the chunk the policy returns from it with that seed's noise.
    runtime = PolicyRuntime(tiny_checkpoint, steps=2, threads=1)
    with MetaWorldEnv("button-press-v3", num_points=128, max_episode_steps=STEPS) as env:
        obs = env.reset(seed=int(buffer.meta["reset_seed"][1]))
    np.testing.assert_array_equal(buffer["state"][STEPS], obs["agent_pos"].astype(np.float32))
    np.testing.assert_array_equal(buffer["point_cloud"][STEPS], obs["point_cloud"])
    runtime.reset()
    runtime.push(policy_observation(obs))
    runtime.generator.manual_seed(6)
    chunk = runtime.infer()
    np.testing.assert_allclose(buffer["action"][STEPS : STEPS + 4], chunk.actions, atol=1e-6)
    # Later steps carry the states the arm moved through, not copies of the first one.
    assert np.abs(np.diff(buffer["state"][:STEPS], axis=0)).max() > 0


def test_record_refuses_to_replace_a_dataset_without_overwrite(
    recorded, tiny_checkpoint, tmp_path
):
    _, _, path = recorded
    before = ReplayBuffer.load(path)["action"].copy()
    out = tmp_path / "r.json"
    assert _eval(tiny_checkpoint, out, "--record", str(path)) == 2
    assert not out.exists()
    np.testing.assert_array_equal(ReplayBuffer.load(path)["action"], before)


def _distill_args(teacher, dataset, out, *extra: str) -> list[str]:
    return [
        "distill",
        "--teacher",
        str(teacher),
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_extra_observations_join_the_training_split_only(recorded, demos_dataset):
    _, _, path = recorded
    cfg = load_config(None, [*TINY, "train.val_fraction=0.5"])
    cfg, demos_train, demos_val = make_datasets(cfg, demos_dataset)
    _, train, val = make_datasets(cfg, demos_dataset, fix_obs=False, extra=[path])
    m = cfg.model
    visited = TrajectoryDataset(
        path, m.horizon, m.n_obs_steps, m.n_action_steps, keys=dataset_keys(cfg)
    )
    assert len(visited) > 0
    assert len(train) == len(demos_train) + len(visited)
    assert len(val) == len(demos_val) > 0
    last = train[len(train) - 1]["obs"]["agent_pos"].numpy()
    np.testing.assert_array_equal(last, visited[len(visited) - 1]["obs"]["agent_pos"].numpy())


def test_extra_dataset_of_another_observation_spec_is_refused(recorded, demos_dataset, tmp_path):
    _, _, path = recorded
    buffer = ReplayBuffer.load(path)
    fewer = ReplayBuffer(
        {**{k: buffer[k] for k in buffer}, "point_cloud": buffer["point_cloud"][:, :64]},
        buffer.episode_ends,
    )
    fewer.save(tmp_path / "fewer.zarr")
    cfg, _, _ = make_datasets(load_config(None, TINY), demos_dataset)
    with pytest.raises(ConfigError, match=r"fewer\.zarr"):
        make_datasets(cfg, demos_dataset, fix_obs=False, extra=[tmp_path / "fewer.zarr"])


def test_distill_records_its_extra_datasets_and_resumes_only_with_them(
    recorded, tiny_checkpoint, demos_dataset, tmp_path, capsys
):
    _, _, path = recorded
    out = tmp_path / "sdm"
    args = _distill_args(tiny_checkpoint, demos_dataset, out, "--extra-dataset", str(path))
    assert sdm([*args, *DISTILL]) == 0
    config = json.loads((out / "checkpoints" / "latest" / "config.json").read_text())
    assert config["extra_datasets"] == [str(path.resolve())]
    capsys.readouterr()
    longer = [*DISTILL, "train.max_steps=6"]
    assert sdm([*_distill_args(tiny_checkpoint, demos_dataset, out), *longer]) == 2
    assert "extra_datasets" in capsys.readouterr().err
    assert sdm([*args, *longer]) == 0
    config = json.loads((out / "checkpoints" / "latest" / "config.json").read_text())
    assert config["provenance"]["step"] == 6
