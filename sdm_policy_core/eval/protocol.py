"""Scores over several evaluations: DP3's "mean of the 5 best" and mean +- std over seeds.

DP3 and SDM Policy evaluate every 200 training epochs (20 episodes each) and report, per seed,
the mean of the 5 highest success rates among those periodic evaluations, then mean +- std over
3 seeds. That selects on the test episodes, so it reads higher than a fixed checkpoint; our
default protocol is the final checkpoint (`sdm eval`, 20 episodes x 3 seeds), and these helpers
compute the DP3 number too when training evaluates periodically:

    curves = {0: [r0, r1, ...], 1: [...], 2: [...]}   # per seed: success rates or eval JSONs
    dp3_score(curves)   # {'mean': .., 'std': .., 'per_seed': {0: .., 1: .., 2: ..}, 'k': 5}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _rate(value: float | Mapping[str, Any]) -> float:
    rate = float(value["success_rate"]) if isinstance(value, Mapping) else float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"success rates are fractions in [0, 1], got {rate}")
    return rate


def mean_of_best(evaluations: Sequence[float | Mapping[str, Any]], k: int = 5) -> float:
    """Mean of the `k` highest success rates of one seed's periodic evaluations (DP3's metric).

    evaluations: success rates in [0, 1], or `sdm eval` results (their `success_rate`).
    With fewer than k evaluations, the mean of all of them.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    rates = sorted((_rate(v) for v in evaluations), reverse=True)
    if not rates:
        raise ValueError("no evaluations to score")
    return float(np.mean(rates[:k]))


def dp3_score(
    curves: Mapping[int, Sequence[float | Mapping[str, Any]]], k: int = 5
) -> dict[str, Any]:
    """DP3's reported score: per seed `mean_of_best(k)`, then mean and (population) std over
    seeds. curves: seed -> that seed's periodic evaluations in training order."""
    if not curves:
        raise ValueError("no seeds to score")
    per_seed = {int(s): mean_of_best(v, k) for s, v in curves.items()}
    values = np.array(list(per_seed.values()))
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "per_seed": per_seed,
        "k": k,
    }


def final_score(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean +- std over seeds of final-checkpoint evaluations (one `sdm eval` result per seed,
    or one result holding several seeds in `per_seed`)."""
    rates: list[float] = []
    for r in results:
        if "per_seed" in r:
            rates += [_rate(p) for p in r["per_seed"]]
        else:
            rates.append(_rate(r))
    if not rates:
        raise ValueError("no results to score")
    return {"mean": float(np.mean(rates)), "std": float(np.std(rates)), "n": len(rates)}
