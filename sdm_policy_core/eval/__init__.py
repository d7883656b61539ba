# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Closed-loop evaluation in the embedded simulator, and the scores reported from it.

from sdm_policy_core.eval import evaluate, dp3_score
"""

from sdm_policy_core.eval.protocol import dp3_score, final_score, mean_of_best, paired_difference
from sdm_policy_core.eval.rollout import (
    DEFAULT_SEEDS,
    EpisodeResult,
    Evaluation,
    evaluate,
    run_episode,
    summarize,
)
from sdm_policy_core.eval.selection import periodic_evaluations, selection_evaluator

__all__ = [
    "DEFAULT_SEEDS",
    "EpisodeResult",
    "Evaluation",
    "dp3_score",
    "evaluate",
    "final_score",
    "mean_of_best",
    "paired_difference",
    "periodic_evaluations",
    "run_episode",
    "selection_evaluator",
    "summarize",
]
