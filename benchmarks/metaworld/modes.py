# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Mode coverage where the demonstrations part ways: whether a policy chooses a route or averages.

    python benchmarks/metaworld/modes.py --work runs/metaworld/pick-place-wall-v3_two-route \
        [--train-seeds 0 1 2] [--variants sdm_reg] [--students sdm_lr1e-4_s0 ...] [--samples 64]

Two-route demonstrations (`sdm demos --expert two-route`) show every placement both ways, so up
to the step where the left and the right demo of a placement part ways their observations are
the same. At that step (the decision point, one per placement) each policy is sampled
`--samples` times with different noise, from the demos' own two-step observation history. The
mean sideways action (x) of the chunk it would execute classifies a sample: `left` (< -0.3),
`right` (> 0.3) or `between` (a blend of the two routes: it heads for the wall). A diffusion
teacher sampled with DDIM should land on both routes; its naive one-step call (x0 at the
largest timestep) collapses towards the mean; distillation is meant to restore the modes.

Rows: the teacher with DDIM-10, DDIM-2 and the naive one-step call, and its SDM student
(`teacher_s<seed>` / `sdm_s<seed>` under --work), each pooled over `--train-seeds` (per-seed
shares are kept in the JSON); then a row per `--variants PREFIX`, the SDM runs PREFIX_s<seed>
pooled the same way (e.g. a distillation variant trained for every seed); then every extra
student named by `--students` (run folders under --work, one row each, e.g. variants of
sdm_s0). Writes RESULTS/metaworld_modes_<name>.json, .md (also printed) and .png (the
distribution of the sideways action per row).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import latest_checkpoint, write_report  # beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
THRESHOLD = 0.3  # |mean sideways action| beyond which a chunk has chosen a route


def decision_points(buffer, demos: Path) -> list[int]:
    """Index (into the demos' steps) of each placement's decision point, from the left demo.

    Pairs (2i, 2i + 1) are one placement shown left then right; the decision point is the
    first step whose sideways actions differ by more than THRESHOLD. Its observation and the
    one before are checked to be the same in both demos. `buffer`: the demos' ReplayBuffer.
    """
    ends = np.asarray(buffer.episode_ends)
    starts = np.concatenate([[0], ends[:-1]])
    if len(ends) % 2:
        raise SystemExit(f"{demos}: {len(ends)} episodes; two-route demos come in pairs")
    action, cloud, state = buffer["action"], buffer["point_cloud"], buffer["state"]
    points = []
    for left in range(0, len(ends), 2):
        a, b = starts[left], starts[left + 1]
        n = min(ends[left] - a, ends[left + 1] - b)
        apart = np.abs(action[a : a + n, 0] - action[b : b + n, 0]) > THRESHOLD
        if not apart.any() or apart.argmax() < 1:
            raise SystemExit(f"{demos}: demos {left} and {left + 1} never part ways")
        k = int(apart.argmax())
        for j in (k - 1, k):
            if not (
                np.allclose(cloud[a + j], cloud[b + j], atol=1e-5)
                and np.allclose(state[a + j], state[b + j], atol=1e-5)
            ):
                raise SystemExit(f"{demos}: demos {left}, {left + 1} differ before step {k}")
        points.append(int(a + k))
    return points


def route_shares(sideways: np.ndarray) -> dict[str, float]:
    """Share of samples left / right / between from mean sideways actions (any shape)."""
    x = np.asarray(sideways)
    return {
        "left": float(np.mean(x < -THRESHOLD)),
        "right": float(np.mean(x > THRESHOLD)),
        "between": float(np.mean(np.abs(x) <= THRESHOLD)),
    }


def both_routes(sideways: np.ndarray) -> int:
    """Decision points (rows of `sideways`, samples along axis 1) where both routes appear."""
    x = np.asarray(sideways)
    return int(np.sum((x < -THRESHOLD).any(axis=1) & (x > THRESHOLD).any(axis=1)))


def sample_row(
    checkpoints: list[Path], sampler: str, steps: int | None, buffer, points: list[int], args
) -> dict[str, Any]:
    """Sample the sideways action at every decision point, for every checkpoint.

    Sideways action of `args.samples` samples at every decision point, for every checkpoint
    (one per training seed); the shares are pooled over them and kept per checkpoint.
    """
    from sdm_policy_core.runtime import PolicyRuntime

    cloud, state = buffer["point_cloud"], buffer["state"]
    sideways, latency, per_checkpoint = [], [], []
    for checkpoint in checkpoints:
        runtime = PolicyRuntime(checkpoint, sampler=sampler, steps=steps, threads=args.threads)
        mine = []
        for k in points:
            per_point = []
            for seed in range(args.samples):
                runtime.reset()
                runtime.generator.manual_seed(seed)
                for j in (k - 1, k):
                    runtime.push({"point_cloud": cloud[j], "agent_pos": state[j]})
                chunk = runtime.infer()
                per_point.append(float(chunk.actions[:, 0].mean()))
                latency.append(chunk.inference_time)
            mine.append(per_point)
        per_checkpoint.append(
            {
                "checkpoint": str(checkpoint),
                "fractions": route_shares(mine),
                "both": both_routes(mine),
            }
        )
        sideways += mine
    return {
        "checkpoints": [str(c) for c in checkpoints],
        "sampler": sampler,
        "steps": steps or 1,
        "fractions": route_shares(sideways),
        "placements_with_both_routes": both_routes(sideways),
        "decision_points": len(sideways),
        "per_checkpoint": per_checkpoint,
        "sideways": sideways,
        "latency_ms_p50": 1e3 * float(np.median(latency)),
    }


def markdown(rows: dict[str, dict[str, Any]], n_points: int, samples: int) -> str:
    lines = [
        f"{n_points} decision points x {samples} samples each, per training seed. Share of "
        f"samples per route (mean sideways action < -{THRESHOLD} / > {THRESHOLD} / between); "
        "between % per training seed in brackets.",
        "",
        "| policy | left % | right % | between % | decision points with both routes |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        f = row["fractions"]
        seeds = ""
        if len(row["per_checkpoint"]) > 1:
            each = [f"{100 * c['fractions']['between']:.0f}" for c in row["per_checkpoint"]]
            seeds = f" ({' / '.join(each)})"
        lines.append(
            f"| {name} | {100 * f['left']:.1f} | {100 * f['right']:.1f} | "
            f"{100 * f['between']:.1f}{seeds} | "
            f"{row['placements_with_both_routes']}/{row['decision_points']} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: dict[str, dict[str, Any]], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(7, 1.6 * len(rows)), sharex=True)
    bins = np.linspace(-1, 1, 41)
    for ax, (name, row) in zip(np.atleast_1d(axes), rows.items(), strict=True):
        ax.hist(np.ravel(row["sideways"]), bins=bins, color="tab:blue")
        ax.axvspan(-THRESHOLD, THRESHOLD, color="tab:red", alpha=0.12)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_yticks([])
    np.atleast_1d(axes)[-1].set_xlabel("mean sideways action of the chunk (left < 0 < right)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, required=True, help="a TASK_two-route benchmark folder")
    p.add_argument(
        "--train-seeds",
        type=int,
        nargs="+",
        default=[0],
        help="teacher_s<seed> / sdm_s<seed> folders pooled per row (default 0)",
    )
    p.add_argument(
        "--variants",
        nargs="*",
        default=[],
        metavar="PREFIX",
        help="extra SDM rows: the runs PREFIX_s<seed> of every training seed, pooled",
    )
    p.add_argument("--students", nargs="*", default=[], help="extra SDM run folders, one row each")
    p.add_argument("--samples", type=int, default=64, help="samples per decision point")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args()
    if args.samples < 1:
        p.error("--samples must be >= 1")
    demos = args.work / "demos.zarr"
    if not demos.exists():
        p.error(f"{demos} does not exist: run benchmarks/metaworld/run.py with TASK:two-route")
    from sdm_policy_core.data import ReplayBuffer

    start = time.perf_counter()
    buffer = ReplayBuffer.load(demos)
    points = decision_points(buffer, demos)

    def latest(run: str) -> Path:
        return latest_checkpoint(args.work, run, p.error)

    teachers = [latest(f"teacher_s{s}") for s in args.train_seeds]
    plan = [
        ("teacher DDIM-10", teachers, "ddim", 10),
        ("teacher DDIM-2", teachers, "ddim", 2),
        ("teacher naive one-step", teachers, "one-step", None),
        ("SDM one-step", [latest(f"sdm_s{s}") for s in args.train_seeds], "one-step", None),
        *[
            (f"SDM {v}", [latest(f"{v}_s{s}") for s in args.train_seeds], "one-step", None)
            for v in args.variants
        ],
        *[(f"SDM {s}", [latest(s)], "one-step", None) for s in args.students],
    ]
    rows = {}
    for name, checkpoints, sampler, steps in plan:
        print(f"[{name}] {', '.join(map(str, checkpoints))}", file=sys.stderr, flush=True)
        rows[name] = sample_row(checkpoints, sampler, steps, buffer, points, args)
    name = args.work.name
    stem = args.results / f"metaworld_modes_{name}"
    summary = {
        "work": str(args.work),
        "decision_points": points,
        "train_seeds": args.train_seeds,
        "samples": args.samples,
        "threshold": THRESHOLD,
        "rows": rows,
    }
    write_report(stem, summary, markdown(rows, len(points), args.samples), start)
    plot(rows, stem.with_suffix(".png"), f"{name}: sideways action at the decision points")
    print(f"-> {stem}.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
