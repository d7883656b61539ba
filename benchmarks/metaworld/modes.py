"""Mode coverage where the demonstrations part ways: does a policy choose a route, or average?

    python benchmarks/metaworld/modes.py --work runs/metaworld/pick-place-wall-v3_two-route \
        --students sdm_s0 [sdm_reg_s0 ...] [--samples 64]

Two-route demonstrations (`sdm demos --expert two-route`) show every placement both ways, so up
to the step where the left and the right demo of a placement part ways their observations are
the same. At that step (the decision point, one per placement) each policy is sampled
`--samples` times with different noise, from the demos' own two-step observation history. The
mean sideways action (x) of the chunk it would execute classifies a sample: `left` (< -0.3),
`right` (> 0.3) or `between` (a blend of the two routes: it heads for the wall). A diffusion
teacher sampled with DDIM should land on both routes; its naive one-step call (x0 at the
largest timestep) collapses towards the mean; distillation is meant to restore the modes.

Rows: the teacher with DDIM-10, DDIM-2 and the naive one-step call, and every student named by
`--students` (run folders under --work, one-step). Writes RESULTS/metaworld_modes_<name>.json,
.md (also printed) and .png (the distribution of the sideways action per row).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

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


def sample_row(
    checkpoint: Path, sampler: str, steps: int | None, buffer, points: list[int], args
) -> dict[str, Any]:
    """Sideways action of `args.samples` samples at every decision point."""
    from sdm_policy_core.runtime import PolicyRuntime

    cloud, state = buffer["point_cloud"], buffer["state"]
    runtime = PolicyRuntime(checkpoint, sampler=sampler, steps=steps, threads=args.threads)
    sideways, latency = [], []
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
        sideways.append(per_point)
    x = np.asarray(sideways)
    fractions = {
        "left": float(np.mean(x < -THRESHOLD)),
        "right": float(np.mean(x > THRESHOLD)),
        "between": float(np.mean(np.abs(x) <= THRESHOLD)),
    }
    # A placement is covered when both routes appear among its samples.
    both = [bool((row < -THRESHOLD).any() and (row > THRESHOLD).any()) for row in x]
    return {
        "checkpoint": str(checkpoint),
        "sampler": sampler,
        "steps": steps or 1,
        "fractions": fractions,
        "placements_with_both_routes": int(sum(both)),
        "sideways": sideways,
        "latency_ms_p50": 1e3 * float(np.median(latency)),
    }


def markdown(rows: dict[str, dict[str, Any]], n_points: int, samples: int) -> str:
    lines = [
        f"{n_points} decision points x {samples} samples each. Share of samples per route "
        f"(mean sideways action < -{THRESHOLD} / > {THRESHOLD} / between).",
        "",
        "| policy | left % | right % | between % | placements with both routes |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in rows.items():
        f = row["fractions"]
        lines.append(
            f"| {name} | {100 * f['left']:.1f} | {100 * f['right']:.1f} | "
            f"{100 * f['between']:.1f} | {row['placements_with_both_routes']}/{n_points} |"
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
    p.add_argument("--teacher", default="teacher_s0", help="teacher run folder under --work")
    p.add_argument("--students", nargs="*", default=["sdm_s0"], help="SDM run folders")
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
    teacher = args.work / args.teacher / "checkpoints" / "latest"
    plan = [
        ("teacher DDIM-10", teacher, "ddim", 10),
        ("teacher DDIM-2", teacher, "ddim", 2),
        ("teacher naive one-step", teacher, "one-step", None),
        *[
            (f"SDM {s}", args.work / s / "checkpoints" / "latest", "one-step", None)
            for s in args.students
        ],
    ]
    rows = {}
    for name, checkpoint, sampler, steps in plan:
        print(f"[{name}] {checkpoint}", file=sys.stderr, flush=True)
        rows[name] = sample_row(checkpoint, sampler, steps, buffer, points, args)
    name = args.work.name
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"metaworld_modes_{name}"
    table = markdown(rows, len(points), args.samples)
    summary = {
        "work": str(args.work),
        "decision_points": points,
        "samples": args.samples,
        "threshold": THRESHOLD,
        "rows": rows,
        "wall_time_s": time.perf_counter() - start,
        "cpu_count": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    plot(rows, stem.with_suffix(".png"), f"{name}: sideways action at the decision points")
    print(table)
    print(f"-> {stem}.json .md .png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
