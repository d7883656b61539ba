# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""benchmarks/metaworld/compare.py: rows of one task over training seeds, paired by episode."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "metaworld"
sys.path.insert(0, str(_DIR))  # as when the script runs: it imports common.py beside it
_spec = importlib.util.spec_from_file_location("compare_benchmark", _DIR / "compare.py")
compare = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare)


def _evaluation(successes):
    """Build an `sdm eval` result of one training seed: episode i of evaluation seed 0."""
    return {
        "success_rate": sum(successes) / len(successes),
        "episode_results": [
            {"seed": 0, "reset_seed": i, "success": bool(s)} for i, s in enumerate(successes)
        ],
    }


def _write(folder, name, row, seed, successes, tag="seeds"):
    path = folder / f"metaworld_{tag}_{name}_{row}_s{seed}.json"
    path.write_text(json.dumps(_evaluation(successes)))
    return path


def test_rows_are_scored_per_seed_and_gapped_on_the_same_episodes(tmp_path):
    teacher = [[1] * 6 + [0] * 4, [1] * 4 + [0] * 6]
    student = [[1] * 5 + [0] * 5, [1] * 3 + [0] * 7]  # one episode fewer on each seed
    for seed in (0, 1):
        _write(tmp_path, "pick-place-v3", "teacher_ddim10", seed, teacher[seed])
        _write(tmp_path, "pick-place-v3", "sdm_onestep", seed, student[seed])
    _write(tmp_path, "push-wall-v3_two-route", "sdm_onestep", 0, [0] * 10)  # another task
    evaluations = {
        row: [
            json.loads(p.read_text())
            for p in compare.find_results(tmp_path, "pick-place-v3", row, [0, 1])
        ]
        for row in ("teacher_ddim10", "sdm_onestep")
    }
    table = compare.compare(evaluations, ["teacher_ddim10"])
    assert table["teacher_ddim10"]["success"]["per_seed"] == [60.0, 40.0]
    assert table["sdm_onestep"]["success"]["mean"] == pytest.approx(40.0)
    gap = table["sdm_onestep"]["minus"]["teacher_ddim10"]
    assert gap["difference"] == pytest.approx(-0.1)
    assert gap["only_a"] == 2 and gap["only_b"] == 0
    assert "teacher_ddim10" not in table["teacher_ddim10"]["minus"]  # no gap to itself
    text = compare.markdown(table, ["teacher_ddim10"])
    assert "| sdm_onestep | 40.0 ± 10.0 (50 / 30) | \u221210.0 [" in text
    assert "| teacher_ddim10 | 50.0 ± 10.0 (60 / 40) | – |" in text


def test_a_missing_evaluation_names_the_file_to_write(tmp_path):
    _write(tmp_path, "pick-place-v3", "sdm_reg_onestep", 0, [1, 0])
    with pytest.raises(
        SystemExit, match=r"no evaluation for row 'sdm_reg_onestep', training seed 1"
    ):
        compare.find_results(tmp_path, "pick-place-v3", "sdm_reg_onestep", [0, 1])
    other = _write(tmp_path, "pick-place-v3", "sdm_reg_onestep", 0, [1, 0], tag="other")
    with pytest.raises(SystemExit, match=r"2 .*choose one with --tag"):
        compare.find_results(tmp_path, "pick-place-v3", "sdm_reg_onestep", [0])
    assert compare.find_results(tmp_path, "pick-place-v3", "sdm_reg_onestep", [0], "other") == [
        other
    ]


def test_tag_tells_a_smoke_run_from_the_untagged_run_of_the_same_task(tmp_path):
    real = tmp_path / "metaworld_button-press-v3_teacher_ddim10.json"
    smoke = tmp_path / "metaworld_smoke_button-press-v3_teacher_ddim10.json"
    for path in (real, smoke):
        path.write_text(json.dumps(_evaluation([1, 1])))
    with pytest.raises(SystemExit, match="2 "):
        compare.find_results(tmp_path, "button-press-v3", "teacher_ddim10", [0])
    assert compare.find_results(tmp_path, "button-press-v3", "teacher_ddim10", [0], "") == [real]
    found = compare.find_results(tmp_path, "button-press-v3", "teacher_ddim10", [0], "smoke")
    assert found == [smoke]


def test_a_single_training_seed_also_finds_the_file_run_py_names_without_a_seed(tmp_path):
    path = tmp_path / "metaworld_drawer-open-v3_teacher_ddim10.json"
    path.write_text(json.dumps(_evaluation([1, 1, 0])))
    assert compare.find_results(tmp_path, "drawer-open-v3", "teacher_ddim10", [0]) == [path]
    with pytest.raises(SystemExit, match="training seed 0"):  # several seeds: _s<seed> needed
        compare.find_results(tmp_path, "drawer-open-v3", "teacher_ddim10", [0, 1])


def test_one_training_seed_shows_no_spread_over_training_seeds():
    evaluations = {"teacher": [_evaluation([1, 1, 0, 0])], "student": [_evaluation([1, 0, 0, 0])]}
    text = compare.markdown(compare.compare(evaluations, ["teacher"]), ["teacher"])
    assert "| student | 25.0 | \u221225.0 [" in text
    assert "| teacher | 50.0 | – |" in text


def _seeded(successes, seed, policy_id="sdm_s0/latest@2000"):
    """Build an evaluation of evaluation seed `seed` only (reset seeds 0..n-1)."""
    result = _evaluation(successes)
    for episode in result["episode_results"]:
        episode["seed"] = seed
    return {**result, "policy_id": policy_id, "sampler": "one-step", "steps": 1}


def test_evaluations_of_other_seeds_pool_into_one_over_all_their_episodes():
    first, replicate = _seeded([1, 1, 0, 0], seed=0), _seeded([1, 0, 0, 0, 0, 0], seed=3)
    pooled = compare.pool_evaluations([first, replicate], ["main.json", "heldout.json"])
    assert pooled["success_rate"] == pytest.approx(0.3)  # 3 of 10, not the mean of 0.5 and 1/6
    assert pooled["episodes_total"] == 10
    teacher = compare.pool_evaluations(
        [_seeded([1, 1, 1, 0], seed=0), _seeded([1, 1, 0, 0, 0, 0], seed=3)], ["a", "b"]
    )
    gap = compare.compare({"teacher": [teacher], "student": [pooled]}, ["teacher"])
    assert gap["student"]["minus"]["teacher"]["pairs"] == 10
    assert gap["student"]["minus"]["teacher"]["difference"] == pytest.approx(-0.2)


def test_pooling_refuses_the_same_episode_twice_or_two_different_policies():
    with pytest.raises(SystemExit, match="evaluation seed 0, reset seed 0"):
        compare.pool_evaluations([_seeded([1], 0), _seeded([0, 1], 0)], ["a.json", "b.json"])
    other = _seeded([1], 3, policy_id="sdm_reg_s0/latest@2000")
    with pytest.raises(SystemExit, match="a different policy_id"):
        compare.pool_evaluations([_seeded([1], 0), other], ["a.json", "b.json"])
