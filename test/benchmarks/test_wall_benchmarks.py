# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The wall benchmarks: where two-route demos part ways, sample counts, episode phases.

benchmarks/metaworld/modes.py and phases.py: where two-route demos part ways, how samples are
counted, and which phase of a wall task an episode ended in.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "metaworld"
sys.path.insert(0, str(_DIR))  # as when the scripts run: they import common.py beside them


def _load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark", _DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


modes, phases = _load("modes"), _load("phases")


class _Buffer(dict):
    """The two members of a ReplayBuffer that decision_points reads."""

    def __init__(self, episode_ends, **arrays):
        super().__init__(arrays)
        self.episode_ends = episode_ends


def _pair(steps=10, part=5, rng=None):
    """Build one placement shown left then right, parting ways at `part`.

    One placement shown left then right: the same observations until `part`, where the
    sideways actions go -1 / +1 and the observations follow them.
    """
    rng = rng or np.random.default_rng(0)
    cloud = np.repeat(rng.normal(size=(1, 16, 3)), 2 * steps, axis=0).astype(np.float32)
    state = np.zeros((2 * steps, 9), np.float32)
    state[:steps, 0] = state[steps:, 0] = np.arange(steps)
    action = np.zeros((2 * steps, 4), np.float32)
    action[part:steps, 0], action[steps + part :, 0] = -1.0, 1.0
    state[part + 1 : steps, 1], state[steps + part + 1 :, 1] = -1.0, 1.0  # they move apart
    return cloud, state, action


def test_decision_point_is_the_first_step_where_a_pair_parts_ways():
    c1, s1, a1 = _pair(part=5)
    c2, s2, a2 = _pair(part=3, rng=np.random.default_rng(1))
    buffer = _Buffer(
        [10, 20, 30, 40],
        point_cloud=np.concatenate([c1, c2]),
        state=np.concatenate([s1, s2]),
        action=np.concatenate([a1, a2]),
    )
    assert modes.decision_points(buffer, Path("demos.zarr")) == [5, 23]


def test_decision_points_refuse_demos_that_are_not_pairs_of_one_scene():
    cloud, state, action = _pair(part=5)
    with pytest.raises(SystemExit, match="come in pairs"):
        modes.decision_points(_Buffer([10], point_cloud=cloud, state=state, action=action), "d")
    changed = state.copy()
    changed[14, 2] = 0.5  # the right demo's observation differs just before the parting step
    with pytest.raises(SystemExit, match="differ before step 5"):
        modes.decision_points(
            _Buffer([10, 20], point_cloud=cloud, state=changed, action=action), "d"
        )
    same = np.zeros_like(action)
    with pytest.raises(SystemExit, match="never part ways"):
        modes.decision_points(_Buffer([10, 20], point_cloud=cloud, state=state, action=same), "d")


def test_samples_are_counted_left_right_or_between():
    shares = modes.route_shares([[-0.5, 0.0, 0.5, 0.9]])
    assert shares == {"left": 0.25, "right": 0.5, "between": 0.25}
    # a decision point counts as covered only when both routes appear among its samples
    assert modes.both_routes([[-0.5, 0.5], [0.0, 0.5], [-0.9, -0.4]]) == 1


def _states(path):
    """(T, 39) MetaWorld states whose object (4:7) follows `path` [(x, y, z), ...]."""
    states = np.zeros((len(path), 39))
    states[:, 4:7] = path
    return states


def test_an_episode_ends_in_the_phase_its_object_reached():
    start = (0.1, 0.6, 0.02)
    still = _states([start] * 5)
    assert phases.phase_of(still, False, lifts=True) == ("not grasped", None)
    slid = _states([start, (0.1, 0.65, 0.02)])  # pushed 5 cm, never lifted
    assert phases.phase_of(slid, False, lifts=True) == ("not grasped", None)
    assert phases.phase_of(slid, False, lifts=False) == ("before the wall", None)
    dropped = _states([start, (0.1, 0.62, 0.08), (0.1, 0.62, 0.02)])
    assert phases.phase_of(dropped, False, lifts=True) == ("before the wall", None)
    around = [start, (0.1, 0.6, 0.08), (-0.1, 0.6, 0.08), (-0.1, 0.8, 0.08), (0.0, 0.85, 0.02)]
    assert phases.phase_of(_states(around), False, lifts=True) == ("behind, not placed", "left")
    assert phases.phase_of(_states(around), True, lifts=True) == ("success", "left")
    right = [start, (0.1, 0.6, 0.08), (0.3, 0.6, 0.08), (0.3, 0.8, 0.08)]
    assert phases.phase_of(_states(right), True, lifts=True) == ("success", "right")
    blocked = [start, (0.1, 0.6, 0.08), (0.1, 0.73, 0.08), (0.1, 0.73, 0.02)]
    assert phases.phase_of(_states(blocked), False, lifts=True) == (
        "before the wall",
        "into the wall",
    )


def test_pick_place_without_a_wall_ends_grasped_or_not_and_keeps_the_closest_approach():
    start, goal = (0.1, 0.6, 0.02), np.array([0.1, 0.8, 0.2])
    lifted = _states([start, (0.1, 0.65, 0.1), (0.1, 0.7, 0.15)])
    lifted[:, 36:39] = goal
    assert phases.phase_of(lifted, False, lifts=True, wall=False) == ("lifted, not placed", None)
    assert phases.phase_of(lifted, True, lifts=True, wall=False) == ("success", None)
    pushed = _states([start, (0.1, 0.7, 0.02)])  # moved 10 cm on the table, never lifted
    assert phases.phase_of(pushed, False, lifts=True, wall=False) == ("not grasped", None)
    # closest approach: the last state, |(0, -0.1, -0.05)|
    assert phases.goal_distance(lifted) == pytest.approx(np.hypot(0.1, 0.05))


def test_the_phase_table_counts_phases_and_the_failures_closest_approach():
    def episode(phase, distance, side=None):
        return {
            "phase": phase,
            "side": side,
            "success": phase == "success",
            "goal_distance_m": distance,
        }

    rows = {
        "teacher": [episode("success", 0.03), episode("lifted, not placed", 0.09)],
        "student": [
            episode("not grasped", 0.30),
            episode("lifted, not placed", 0.10),
            episode("lifted, not placed", 0.20),
        ],
    }
    table = phases.markdown(rows, wall=False)
    assert "| not grasped | lifted, not placed | success |" in table
    assert "| teacher | 0 | 1 | 1 | 0.090 (1) |" in table  # 0.09 m is within 2 x 0.07 m
    assert "| student | 1 | 2 | 0 | 0.200 (1) |" in table
    assert "left / right" not in table
    walled = phases.markdown({"t": [episode("success", 0.01, "left")]}, wall=True)
    assert "| t | 0 | 0 | 0 | 1 | 1 / 0 / 0 | - |" in walled
