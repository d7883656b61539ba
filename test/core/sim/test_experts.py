# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The two-route demonstrator: two equally good ways around the wall, and one that is not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.sim import MetaWorldEnv, ScriptedExpert, TwoRouteExpert, make_expert
from sdm_policy_core.sim.experts import WALL_TOP, WALL_X, WALL_Y


def _run(env: MetaWorldEnv, expert, seed: int, action=None):
    """One episode with `expert` (or `action(state)`); (success, (T, 3) object path)."""
    env.reset(seed=seed, observe=False)
    path, succeeded = [], False
    for _ in range(env.max_episode_steps):
        act = expert.act(env) if action is None else action(env.state)
        _, _, success, done, _ = env.step(act, observe=False)
        path.append(env.state[4:7])
        succeeded |= success
        if done:
            break
    return succeeded, np.array(path)


def _passing_the_wall(path: np.ndarray) -> np.ndarray:
    """Object positions while it is level with the wall (y within the wall's thickness)."""
    return path[(path[:, 1] > WALL_Y[0] - 0.02) & (path[:, 1] < WALL_Y[1] + 0.02)]


@pytest.mark.parametrize("task", ["pick-place-wall-v3", "push-wall-v3"])
def test_both_routes_succeed_around_the_wall_and_their_mean_does_not(task):
    seed = 11
    with MetaWorldEnv(task, num_points=32, seed=0) as env:
        expert = TwoRouteExpert(task)
        paths = {}
        for index, route in enumerate(("left", "right")):
            expert.begin_episode(index)
            assert expert.route == route
            succeeded, path = _run(env, expert, seed)
            assert succeeded, f"{task}: the {route} route failed"
            passing = _passing_the_wall(path)
            assert len(passing), f"{task}: the object never got past the wall ({route})"
            # Around, not over: beside the wall's end, below its top.
            if route == "left":
                assert passing[:, 0].max() < WALL_X[0], passing
            else:
                assert passing[:, 0].min() > WALL_X[1], passing
            assert passing[:, 2].max() < WALL_TOP
            paths[route] = path

        # What a policy that averages the two demonstrators does (the naive one-step call of
        # a diffusion model does roughly this): it carries the object into the wall and fails.
        left, right = TwoRouteExpert(task), TwoRouteExpert(task)
        left.begin_episode(0)
        right.begin_episode(1)

        def mean(state):
            return (left.act_on_state(state) + right.act_on_state(state)) / 2

        succeeded, path = _run(env, None, seed, action=mean)
        assert not succeeded
        assert path[:, 1].max() < WALL_Y[0], "the averaged policy got the object past the wall"


def test_two_route_demos_show_one_scene_both_ways(tmp_path, capsys):
    out = tmp_path / "ppw.zarr"
    args = ["demos", "--task", "pick-place-wall-v3", "--out", str(out), "--num-points", "32"]
    args += ["--expert", "two-route", "--no-progress"]
    assert sdm([*args, "--episodes", "3"]) == 2  # pairs only
    assert "even" in capsys.readouterr().err and not out.exists()
    assert sdm([*args, "--episodes", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["expert"] == "two-route" and summary["routes"] == ["left", "right"]
    buffer = ReplayBuffer.load(out)
    assert buffer.n_episodes == 2
    end = buffer.episode_ends[0]
    # The same scene (object and goal placement, first observation) ...
    np.testing.assert_array_equal(buffer["full_state"][0], buffer["full_state"][end])
    np.testing.assert_array_equal(buffer["point_cloud"][0], buffer["point_cloud"][end])
    # ... demonstrated two ways: one hand goes left of the wall, the other right of it.
    hand_x = [buffer["state"][:end, 0], buffer["state"][end:, 0]]
    assert hand_x[0].min() < WALL_X[0] - 0.04 and hand_x[1].max() > WALL_X[1] + 0.04
    assert hand_x[0].max() < WALL_X[1] and hand_x[1].min() > WALL_X[0] - 0.04


def test_scripted_expert_goes_over_the_wall_every_time():
    with MetaWorldEnv("pick-place-wall-v3", num_points=32, seed=0) as env:
        succeeded, path = _run(env, ScriptedExpert("pick-place-wall-v3"), seed=11)
    assert succeeded and _passing_the_wall(path)[:, 2].min() > WALL_TOP


def test_the_two_route_expert_needs_a_wall(tmp_path, capsys):
    with pytest.raises(ValueError, match="pick-place-wall-v3"):
        make_expert("button-press-v3", "two-route")
    with pytest.raises(ValueError, match="scripted"):
        make_expert("button-press-v3", "teleop")
    out = tmp_path / "d.zarr"
    args = ["demos", "--task", "button-press-v3", "--episodes", "1", "--out", str(out)]
    assert sdm([*args, "--expert", "two-route"]) == 2
    assert "has none" in capsys.readouterr().err and not out.exists()
