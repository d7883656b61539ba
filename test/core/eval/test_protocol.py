# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Scores: DP3's mean of the 5 best evaluations, and mean +- std over seeds."""

from __future__ import annotations

import pytest

from sdm_policy_core.eval import dp3_score, final_score, mean_of_best, paired_difference


def test_mean_of_best_takes_the_k_highest():
    assert mean_of_best([0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.6], k=5) == pytest.approx(0.7)
    assert mean_of_best([{"success_rate": 0.5}, {"success_rate": 1.0}], k=5) == 0.75
    with pytest.raises(ValueError, match="fractions"):
        mean_of_best([45.0])
    with pytest.raises(ValueError, match="no evaluations"):
        mean_of_best([])


def test_dp3_score_is_mean_and_std_over_seeds():
    score = dp3_score({0: [1.0] * 5 + [0.0], 1: [0.5] * 6, 2: [0.0, 0.25, 0.75]})
    assert score["per_seed"] == {0: 1.0, 1: 0.5, 2: pytest.approx(1 / 3)}
    assert score["mean"] == pytest.approx((1.0 + 0.5 + 1 / 3) / 3)
    assert score["std"] > 0 and score["k"] == 5


def test_final_score_reads_per_seed_results():
    result = {"success_rate": 0.5, "per_seed": [{"success_rate": 0.25}, {"success_rate": 0.75}]}
    assert final_score([result]) == {"mean": 0.5, "std": 0.25, "n": 2}
    assert final_score([{"success_rate": 1.0}])["mean"] == 1.0


def _result(successes, seed=0, first_reset=100):
    """Build an `sdm eval` result with one episode per entry of `successes` (bools)."""
    episodes = [
        {"seed": seed, "index": i, "reset_seed": first_reset + i, "success": bool(s)}
        for i, s in enumerate(successes)
    ]
    rate = sum(map(bool, successes)) / len(successes)
    return {"success_rate": rate, "episode_results": episodes}


def test_paired_difference_counts_discordant_episodes_and_brackets_the_gap():
    teacher = _result([True] * 40)
    student = _result([True] * 30 + [False] * 10)
    gap = paired_difference([teacher], [student])
    assert gap["difference"] == pytest.approx(-0.25)
    assert (gap["pairs"], gap["only_a"], gap["only_b"]) == (40, 10, 0)
    lo, hi = gap["ci"]
    assert lo < -0.25 < hi < 0.0  # every discordant episode favours A: the gap is real
    same = paired_difference([teacher], [_result([True] * 40)])
    assert same["difference"] == 0.0 and same["ci"] == (0.0, 0.0)
    # a gap of 2 episodes in 40, one each way, is not distinguishable from zero
    noisy = paired_difference(
        [_result([True, False] + [True] * 38)], [_result([False, True] + [True] * 38)]
    )
    assert noisy["difference"] == 0.0 and noisy["ci"][0] < 0.0 < noisy["ci"][1]


def test_paired_difference_carries_the_spread_between_training_seeds():
    # seed 0: B solves 10 more episodes; seed 1: 10 fewer. Pooled, the mean gap is 0 either way,
    # but only the hierarchical bootstrap (per training seed) sees that it depends on the seed.
    a0, b0 = _result([False] * 10 + [True] * 10, seed=0), _result([True] * 20, seed=0)
    a1, b1 = _result([True] * 20, seed=1), _result([False] * 10 + [True] * 10, seed=1)
    per_seed = paired_difference([a0, a1], [b0, b1])
    assert per_seed["per_group"] == [0.5, -0.5] and per_seed["difference"] == 0.0
    merged = paired_difference(
        [{"episode_results": a0["episode_results"] + a1["episode_results"]}],
        [{"episode_results": b0["episode_results"] + b1["episode_results"]}],
    )
    assert merged["difference"] == 0.0
    width = lambda r: r["ci"][1] - r["ci"][0]  # noqa: E731
    assert width(per_seed) > 1.5 * width(merged)


def test_paired_difference_refuses_what_cannot_be_paired():
    with pytest.raises(ValueError, match="same --episodes and --seeds"):
        paired_difference([_result([True] * 5)], [_result([True] * 5, first_reset=200)])
    with pytest.raises(ValueError, match="episode_results"):
        paired_difference([{"success_rate": 1.0}], [_result([True])])
    with pytest.raises(ValueError, match="one result per training seed"):
        paired_difference([_result([True])], [])


def test_paired_difference_of_a_continuous_episode_metric():
    """PushT compares max coverage per episode: the gap is in its units, paired by episode."""
    a = _result([False] * 20)
    b = _result([False] * 20)
    for i, (ea, eb) in enumerate(zip(a["episode_results"], b["episode_results"], strict=True)):
        ea["max_coverage"] = 0.5 + 0.01 * i  # B is 0.1 better on every episode
        eb["max_coverage"] = 0.6 + 0.01 * i
    gap = paired_difference([a], [b], metric="max_coverage")
    assert gap["difference"] == pytest.approx(0.1)
    assert gap["ci"] == pytest.approx((0.1, 0.1))
    assert (gap["only_a"], gap["only_b"]) == (0, 20)
    assert paired_difference([a], [b])["difference"] == 0.0  # success is unchanged
    with pytest.raises(ValueError, match="no 'score'"):
        paired_difference([a], [b], metric="score")
