# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Scores over several evaluations: DP3's "mean of the 5 best" and mean +- std over seeds.

DP3 and SDM Policy evaluate every 200 training epochs (20 episodes each) and report, per seed,
the mean of the 5 highest success rates among those periodic evaluations, then mean +- std over
3 seeds. That selects on the test episodes, so it reads higher than a fixed checkpoint; our
default protocol is the final checkpoint (`sdm eval`, 20 episodes x 3 seeds), and these helpers
compute the DP3 number too when training evaluates periodically:

    curves = {0: [r0, r1, ...], 1: [...], 2: [...]}   # per seed: success rates or eval JSONs
    dp3_score(curves)   # {'mean': .., 'std': .., 'per_seed': {0: .., 1: .., 2: ..}, 'k': 5}

Comparing two policies on the same placements (every `sdm eval` of a task with the same
--episodes and --seeds resets the same scenes), the per-episode outcomes pair up; the
difference in success and its bootstrap interval say whether a gap is more than noise:

    paired_difference([teacher_s0, teacher_s1], [sdm_s0, sdm_s1])
    # {'difference': -0.05, 'ci': (-0.13, 0.03), 'pairs': 120, 'only_a': 9, 'only_b': 3, ...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sdm_policy_core.run_metrics import mean_of_best, success_rate_of


def dp3_score(
    curves: Mapping[int, Sequence[float | Mapping[str, Any]]], k: int = 5
) -> dict[str, Any]:
    """Compute DP3's reported score: per seed `mean_of_best(k)`, then mean and std over seeds.

    The std is the population std. curves: seed -> that seed's periodic evaluations in
    training order.
    """
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
    """Mean +- std over seeds of final-checkpoint evaluations.

    One `sdm eval` result per seed, or one result holding several seeds in `per_seed`.
    """
    rates: list[float] = []
    for r in results:
        if "per_seed" in r:
            rates += [success_rate_of(p) for p in r["per_seed"]]
        else:
            rates.append(success_rate_of(r))
    if not rates:
        raise ValueError("no results to score")
    return {"mean": float(np.mean(rates)), "std": float(np.std(rates)), "n": len(rates)}


def _outcomes(result: Mapping[str, Any], metric: str = "success") -> dict[tuple[int, int], float]:
    """Map (evaluation seed, reset seed) -> `metric` of every episode of one `sdm eval` result.

    The metric is "success" as 0/1, or a per-episode env metric such as PushT's
    "max_coverage".
    """
    episodes = result.get("episode_results")
    if not episodes:
        raise ValueError(
            "an evaluation result without 'episode_results' cannot be paired; "
            "use the JSON that `sdm eval --out` writes"
        )
    missing = [e for e in episodes if metric not in e]
    if missing:
        raise ValueError(
            f"episode rows have no {metric!r} (they have {sorted(missing[0])}); "
            f"choose a metric the task's env reports"
        )
    return {(int(e["seed"]), int(e["reset_seed"])): float(e[metric]) for e in episodes}


def paired_difference(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    level: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
    metric: str = "success",
) -> dict[str, Any]:
    """Success of B minus success of A on the same episodes, with a bootstrap interval.

    metric: the per-episode quantity compared ("success", or an env metric of the episode rows
    such as PushT's "max_coverage"); the difference is in its units (success: a fraction).

    a, b: `sdm eval` results, one per training seed and in the same order (b[i] is compared with
    a[i], e.g. the SDM student with the teacher it was distilled from); within a pair, episodes
    are matched by (evaluation seed, reset seed) and must be the same set. Returns fractions:
    `difference` (mean over all pairs of b - a), `ci` (the `level` percentile interval of a
    hierarchical bootstrap: training seeds resampled, then episodes within each; with one
    training seed the plain paired bootstrap, i.e. evaluation noise only), `pairs`, `only_a` /
    `only_b` (episodes only A / only B solved) and `per_group` differences.
    """
    if len(a) != len(b) or not a:
        raise ValueError(
            f"paired_difference needs one result per training seed on both sides, "
            f"got {len(a)} and {len(b)}"
        )
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    groups: list[np.ndarray] = []
    only_a = only_b = 0
    for i, (ra, rb) in enumerate(zip(a, b, strict=True)):
        oa, ob = _outcomes(ra, metric), _outcomes(rb, metric)
        if oa.keys() != ob.keys():
            missing = sorted(oa.keys() ^ ob.keys())[:3]
            raise ValueError(
                f"pair {i}: the two evaluations ran different episodes (e.g. (seed, reset seed) "
                f"{missing}); evaluate both with the same --episodes and --seeds"
            )
        keys = sorted(oa)
        sa = np.array([oa[k] for k in keys], dtype=np.float64)
        sb = np.array([ob[k] for k in keys], dtype=np.float64)
        only_a += int(np.sum(sa > sb))
        only_b += int(np.sum(sb > sa))
        groups.append(sb - sa)
    rng = np.random.default_rng(seed)
    sums = np.zeros(resamples)
    counts = np.zeros(resamples)
    n_groups = len(groups)
    chosen = rng.integers(0, n_groups, size=(resamples, n_groups))
    for slot in range(n_groups):
        for g, diffs in enumerate(groups):
            rows = np.flatnonzero(chosen[:, slot] == g)
            if rows.size:
                idx = rng.integers(0, diffs.size, size=(rows.size, diffs.size))
                sums[rows] += diffs[idx].sum(axis=1)
                counts[rows] += diffs.size
    boot = sums / counts
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    pooled = np.concatenate(groups)
    return {
        "difference": float(pooled.mean()),
        "ci": (float(lo), float(hi)),
        "level": level,
        "pairs": int(pooled.size),
        "only_a": only_a,
        "only_b": only_b,
        "per_group": [float(g.mean()) for g in groups],
    }
