# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Replay Diffusion Policy's PushT human demonstrations in gym-pusht: the anchor of issue 18.

    python benchmarks/pusht/replay_demos.py [--dataset PUSHT.zarr] [--out RESULT.json]

Every episode's actions are replayed open loop from its first state (`PushTEnv.reset_to_state`,
with the centre-of-gravity correction). Prints and writes: per episode the max coverage, score
min(coverage / 0.95, 1), success (coverage >= 0.95) and the worst state error against the
recorded states; their means; the wall time. The dataset is read where it lies (default:
../shared/external/.../pusht_cchi_v7_replay.zarr beside the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.sim.pusht_env import (
    PushTEnv,
    episode_metrics,
    replay_episode,
    state_error,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATASET = (
    REPO.parent
    / "shared/external/humanoid-collective_diffusion_policy_soup/data/pusht"
    / "pusht_cchi_v7_replay.zarr"
)
DEFAULT_OUT = REPO / "benchmarks/results/pusht/replay_demos.json"


def replay_all(dataset: Path) -> dict:
    """Replay every episode of `dataset`; the summary and per-episode rows."""
    demos = ReplayBuffer.load(dataset, keys=["state", "action"])
    rows = []
    start = time.perf_counter()
    with PushTEnv() as env:
        for e in range(demos.n_episodes):
            ep = demos.get_episode(e)
            replayed, coverage = replay_episode(env, ep["state"], ep["action"])
            rows.append(
                {
                    "episode": e,
                    "length": len(ep["action"]),
                    **episode_metrics(float(coverage.max())),
                    "max_state_error": float(state_error(replayed, ep["state"]).max()),
                }
            )
    wall = time.perf_counter() - start
    errors = np.array([r["max_state_error"] for r in rows])
    return {
        "dataset": str(dataset),
        "episodes": len(rows),
        "steps": demos.n_steps,
        "mean_max_coverage": float(np.mean([r["max_coverage"] for r in rows])),
        "mean_score": float(np.mean([r["score"] for r in rows])),
        "successes": int(sum(r["success"] for r in rows)),
        "success_rate": float(np.mean([r["success"] for r in rows])),
        "state_error_px": {
            "median": float(np.median(errors)),
            "p99": float(np.percentile(errors, 99)),
            "max": float(errors.max()),
            "worst_episode": int(errors.argmax()),
        },
        "wall_time_s": wall,
        "steps_per_s": demos.n_steps / wall,
        "cpu_count": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "episode_results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="PushT zarr")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result JSON")
    args = p.parse_args(argv)
    if not args.dataset.is_dir():
        p.error(
            f"{args.dataset} is not a directory: pass --dataset PATH/pusht_cchi_v7_replay.zarr"
        )
    result = replay_all(args.dataset)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    err = result["state_error_px"]
    print(
        f"{result['episodes']} demos replayed: mean max coverage "
        f"{result['mean_max_coverage']:.3f}, "
        f"mean score {result['mean_score']:.3f}, {result['successes']} reach 0.95; state error "
        f"median {err['median']:.1e} px, max {err['max']:.2g} (episode {err['worst_episode']}); "
        f"{result['wall_time_s']:.1f} s ({result['steps_per_s']:.0f} steps/s) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
