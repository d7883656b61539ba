# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""obstacle-2d: the two-mode task, its expert, `sdm demos` for it and the env registry.

obstacle-2d: the two-mode task (sim/obstacle.py), its expert, `sdm demos` for it, and the
registry that `sdm eval` finds envs in (eval/envs.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.config import ObservationSpec
from sdm_policy_core.data import ReplayBuffer, data_keys
from sdm_policy_core.eval.envs import EvalEnv, registered_tasks, resolve_eval_task
from sdm_policy_core.sim import UnknownTaskError
from sdm_policy_core.sim.demos import DEMO_STREAM, episode_seed
from sdm_policy_core.sim.obstacle import (
    DEFAULT_MAX_EPISODE_STEPS,
    OBSTACLE,
    ObstacleEnv,
    ObstacleExpert,
    averaged_expert_action,
)


def _run(env: ObstacleEnv, act, seed: int) -> tuple[dict, int]:
    """One episode with `act(env)`; (last info, steps)."""
    env.reset(seed)
    done, steps = False, 0
    while not done:
        _, _, done, info = env.step(act(env))
        steps += 1
    return info, steps


def test_the_expert_passes_on_its_coins_side_and_the_average_of_both_sides_collides():
    env, expert = ObstacleEnv(), ObstacleExpert()
    sides, averaged = [], []
    for seed in range(200):
        info, steps = _run(env, expert.act, seed)
        assert info["success"] and not info["metrics"]["collision"] and steps < 30
        passed = -1 if info["metrics"]["passed_left"] else 1
        assert passed == env.episode.side  # the route the coin chose
        sides.append(passed)
        info, steps = _run(env, lambda e: averaged_expert_action(e, expert), seed)
        averaged.append(info)
        assert steps <= 8  # inside the first 8-step action chunk, before any re-planning
    assert 0.4 < np.mean(np.array(sides) < 0) < 0.6  # a fair coin
    failures = np.mean([not i["success"] for i in averaged])
    assert failures >= 0.9  # the task punishes averaging the two modes ...
    assert np.mean([i["metrics"]["collision"] for i in averaged]) >= 0.9  # ... by a collision


def test_the_coin_is_hidden_from_the_observation_unless_cued():
    plain, cued = ObstacleEnv(), ObstacleEnv(cue=True)
    starts = {}
    for seed in range(40):
        obs = plain.reset(seed)
        assert obs["agent_pos"].shape == (2,) and obs["agent_pos"].dtype == np.float32
        starts.setdefault(plain.episode.side, []).append(obs["agent_pos"])
        cue = cued.reset(seed)["agent_pos"]
        assert cue.shape == (3,) and cue[2] == cued.episode.side == plain.episode.side
        np.testing.assert_array_equal(cue[:2], obs["agent_pos"])  # same start, same coin
    # Starts of either side come from one distribution: the state says nothing of the side.
    left, right = (np.array(starts[s]) for s in (-1, 1))
    assert np.abs(left.mean(0) - right.mean(0)).max() < 0.02


def test_with_the_cue_passing_on_the_other_side_fails():
    env, expert = ObstacleEnv(cue=True), ObstacleExpert()
    seed = next(s for s in range(50) if (env.reset(s), env.episode.side)[1] == 1)
    info, _ = _run(env, expert.act, seed)
    assert info["success"] and not info["metrics"]["wrong_side"]
    info, _ = _run(env, lambda e: expert.act(e, side=-1), seed)  # a clean pass, wrong way
    assert not info["success"] and info["metrics"]["wrong_side"]
    assert not info["metrics"]["collision"] and info["metrics"]["passed_left"]


def test_episodes_end_on_collision_success_or_the_step_limit_and_refuse_bad_actions():
    env = ObstacleEnv(max_episode_steps=5)
    env.reset(0)
    with pytest.raises(ValueError, match="2 finite values"):
        env.step(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="2 finite values"):
        env.step(np.zeros(3))
    for _ in range(4):
        _, reward, done, info = env.step(np.zeros(2))
        assert not done and reward == 0.0 and not info["success"]
    _, _, done, info = env.step(np.zeros(2))
    assert done and not info["success"] and not info["metrics"]["collision"]
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(2))
    env = ObstacleEnv()
    obs = env.reset(1)
    assert obs["agent_pos"][1] < OBSTACLE[1]
    done = False
    while not done:  # straight up: into the disc
        _, reward, done, info = env.step(np.array([0.0, 1.0]))
    assert info["metrics"]["collision"] and reward == -1.0 and env.episode.steps < 10
    frame = env.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8 and (frame != 255).any()


def test_the_registry_finds_obstacle_tasks_and_still_every_metaworld_task():
    assert {"obstacle-2d", "obstacle-2d-cue"} <= set(registered_tasks())
    task, entry = resolve_eval_task("obstacle-2d")
    assert task == "obstacle-2d" and entry.name == "obstacle-2d"
    env = entry.make(task, ObservationSpec(None, None, state_dim=2, action_dim=2), None)
    assert isinstance(env, EvalEnv)
    assert (env.state_dim, env.action_dim, env.observation_keys) == (2, 2, ("agent_pos",))
    assert env.max_episode_steps == DEFAULT_MAX_EPISODE_STEPS
    assert resolve_eval_task("button-press")[0] == "button-press-v3"
    assert resolve_eval_task("button-press")[1].name == "metaworld"
    with pytest.raises(UnknownTaskError, match="obstacle-2d") as err:
        resolve_eval_task("obstacle-3d")
    assert "button-press-v3" in str(err.value)  # MetaWorld's tasks are listed too


def test_a_policy_that_does_not_fit_the_task_is_refused_naming_what_differs():
    _, entry = resolve_eval_task("obstacle-2d")
    with pytest.raises(ValueError, match="point cloud or an image"):
        entry.check("obstacle-2d", ObservationSpec(state_dim=2, action_dim=2), "ckpt")
    with pytest.raises(ValueError, match="agent_pos of size 3; obstacle-2d gives 2"):
        entry.check("obstacle-2d", ObservationSpec(None, None, 3, 2), "ckpt")
    with pytest.raises(ValueError, match="outputs 4-D actions"):
        entry.check("obstacle-2d-cue", ObservationSpec(None, None, 3, 4), "ckpt")
    # and a state-only policy cannot act in MetaWorld, which gives point clouds
    _, metaworld = resolve_eval_task("reach-v3")
    with pytest.raises(ValueError, match="not a point-cloud policy"):
        metaworld.check("reach-v3", ObservationSpec(None, None, 9, 4), "ckpt")


def test_demos_write_a_state_only_dataset(tmp_path, capsys):
    out = tmp_path / "demos.zarr"
    args = ["demos", "--task", "obstacle-2d", "--episodes", "12", "--out", str(out)]
    assert sdm([*args, "--seed", "3", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == summary["attempts"] == 12 and summary["task"] == "obstacle-2d"
    assert data_keys(out) == ["action", "state"]
    buffer = ReplayBuffer.load(out)
    assert buffer.n_episodes == 12 and buffer["state"].shape[1] == 2
    assert buffer["state"].dtype == np.float32 and buffer["action"].shape[1] == 2
    sides = buffer.meta["side"]
    assert [("left" if s < 0 else "right") for s in sides] == summary["routes"]
    # the first step of each episode is its reset observation, the expert's action from it
    env, expert = ObstacleEnv(), ObstacleExpert()
    for i in range(12):
        episode = buffer.get_episode(i)
        obs = env.reset(episode_seed(3, i, DEMO_STREAM))
        np.testing.assert_array_equal(episode["state"][0], obs["agent_pos"])
        np.testing.assert_allclose(episode["action"][0], expert.act(env), atol=1e-6)
    cue = tmp_path / "cue.zarr"
    cue_args = ["demos", "--task", "obstacle-2d-cue", "--episodes", "4", "--out", str(cue)]
    assert sdm([*cue_args, "--no-progress"]) == 0
    assert ReplayBuffer.load(cue)["state"].shape[1] == 3


def test_demos_refuse_metaworld_only_options_and_unknown_tasks(tmp_path, capsys):
    base = ["demos", "--episodes", "2", "--out", str(tmp_path / "d.zarr"), "--no-progress"]
    assert sdm([*base, "--task", "obstacle-2d", "--image-size", "64"]) == 2
    assert "--image-size apply to MetaWorld tasks only" in capsys.readouterr().err
    assert sdm([*base, "--task", "obstacle-9d"]) == 2
    assert "obstacle-2d" in capsys.readouterr().err
    assert not (tmp_path / "d.zarr").exists()
