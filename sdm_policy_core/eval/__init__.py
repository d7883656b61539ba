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

__all__ = [
    "DEFAULT_SEEDS",
    "EpisodeResult",
    "Evaluation",
    "dp3_score",
    "evaluate",
    "final_score",
    "mean_of_best",
    "paired_difference",
    "run_episode",
    "summarize",
]
