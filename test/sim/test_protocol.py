"""Scores: DP3's mean of the 5 best evaluations, and mean +- std over seeds."""

from __future__ import annotations

import pytest

from sdm_policy_core.eval import dp3_score, final_score, mean_of_best


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
