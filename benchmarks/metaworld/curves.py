# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Closed-loop success over training of runs trained with `train.eval_task`: one plot, a table.

    W=runs/metaworld/pick-place-wall-v3_two-route
    python benchmarks/metaworld/curves.py \
        --run "pick-place-wall s2=$W/teacher_6000_sel_s2" \
        --run "push-wall s2=runs/metaworld/push-wall-v3_two-route/teacher_6000_s2" \
        --out benchmarks/results/selection/curves

Reads each run's periodic evaluations (`metrics.jsonl`, split "eval"), replays the trainer's
selection rule on them (`replay_selection`: the newest evaluation within one standard error of
the highest so far) and reads the step its `checkpoints/best` holds (the same, unless the run was
trained under an earlier rule); writes OUT.png (success per evaluation over training steps, the
selected step marked), OUT.json (the curves, both steps, DP3's mean of the 5 best) and OUT.md.
The runs themselves need not be kept: the JSON holds every evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from common import write_report  # beside this script

from sdm_policy_core.eval import mean_of_best, periodic_evaluations
from sdm_policy_core.training.trainer import replay_selection


def run_curve(name: str, run_dir: Path) -> dict[str, Any]:
    """Return the evaluations of one run and the step its `best` checkpoint holds."""
    rows = periodic_evaluations(run_dir)
    # rows logged before they held their episode count: the run's train.eval_episodes
    configured = json.loads((run_dir / "config.json").read_text())["train"]["eval_episodes"]
    episodes = [int(r.get("episodes", configured)) for r in rows]
    kept, _ = replay_selection(rows, configured)
    state = json.loads((run_dir / "checkpoints/best/training_state.json").read_text())
    return {
        "name": name,
        "run_dir": str(run_dir),
        "episodes": episodes,
        "steps": [int(r["step"]) for r in rows],
        "success_rate": [float(r["success_rate"]) for r in rows],
        "selected_step": int(kept["step"]),
        "best_checkpoint_step": int(state["state"]["step"]),
        "mean_of_5_best": mean_of_best(rows, k=5),
    }


def plot(curves: list[dict[str, Any]], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    for c in curves:
        (line,) = ax.plot(c["steps"], [100 * r for r in c["success_rate"]], marker="o", ms=3)
        i = c["steps"].index(c["selected_step"])
        ax.plot(c["selected_step"], 100 * c["success_rate"][i], "*", ms=12, color=line.get_color())
        line.set_label(f"{c['name']} (selected: step {c['selected_step']})")
    ax.set_xlabel("training step")
    ax.set_ylabel("closed-loop success % (selection episodes)")
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def markdown(curves: list[dict[str, Any]]) -> str:
    steps = sorted({s for c in curves for s in c["steps"]})
    lines = [
        "Closed-loop success % at each periodic evaluation (selection episodes).",
        "",
        "| run | "
        + " | ".join(str(s) for s in steps)
        + " | selected | checkpoints/best | mean of 5 best |",
        "|---|" + "---:|" * (len(steps) + 3),
    ]
    for c in curves:
        by_step = dict(zip(c["steps"], c["success_rate"], strict=True))
        cells = [f"{100 * by_step[s]:.0f}" if s in by_step else "" for s in steps]
        lines.append(
            f"| {c['name']} | " + " | ".join(cells) + f" | {c['selected_step']} | "
            f"{c['best_checkpoint_step']} | {100 * c['mean_of_5_best']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    p.add_argument("--out", required=True, type=Path, help="output stem (.png, .json, .md)")
    args = p.parse_args()
    start = time.perf_counter()
    curves = []
    for spec in args.run:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            p.error(f"--run {spec!r}: expected NAME=RUN_DIR")
        try:
            curves.append(run_curve(name, Path(path)))
        except (OSError, ValueError, KeyError) as err:
            p.error(f"--run {spec!r}: {err}")
    png = plot(curves, args.out.with_suffix(".png"))
    write_report(args.out, {"curves": curves, "plot": str(png)}, markdown(curves), start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
