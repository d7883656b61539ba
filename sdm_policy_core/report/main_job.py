# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""report.md of the main job: success, latency, control rate, paired differences, curves.

Per task: success, latency, control rate, the paired differences between the rows with their
95 % intervals, and the training curves.

Input: per task, one evaluation JSON per row (keys of `sdm eval` / `sdm sim-eval`:
success_rate, episodes, seeds, sampler, steps, latency_ms {p50, p99}, control_hz, optionally
achieved_control_hz, the per-call latencies `latencies_ms` and `episode_results`), and the
training runs. Rows evaluated on the same episodes pair up: `difference_lines` states SDM −
naive and SDM − DDIM-10 (`DIFFERENCES`) with `paired_difference`'s bootstrap interval.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any


def _latencies(result: dict[str, Any]) -> list[float]:
    for key in ("latencies_ms", "chunk_latencies_ms", "policy_latencies_ms"):
        values = result.get(key)
        if isinstance(values, list) and values:
            return [float(v) for v in values]
    return []


def _episodes(result: dict[str, Any]) -> int:
    episodes = result.get("episodes")
    if isinstance(episodes, list):
        return len(episodes)
    if isinstance(episodes, int):
        return episodes * max(1, len(result.get("seeds", [0])))
    return 0


def table_rows(rows: dict[str, dict[str, Any]]) -> list[list[str]]:
    out = []
    for name, r in rows.items():
        lat = r.get("latency_ms", {})
        out.append(
            [
                name,
                f"{100 * r['success_rate']:.0f} %",
                str(_episodes(r)),
                f"{lat.get('p50', float('nan')):.1f} / {lat.get('p99', float('nan')):.1f}",
                f"{r.get('control_hz', float('nan')):.0f}",
                f"{r.get('achieved_control_hz', float('nan')):.1f}",
            ]
        )
    return out


HEADER = [
    "policy",
    "success",
    "episodes",
    "latency p50 / p99 (ms)",
    "policy-bound rate (Hz)",
    "achieved loop rate (Hz)",
]


# (B, A) row names: B - A on the same episodes, as the report states them.
DIFFERENCES = (
    ("SDM one-step", "teacher naive one-step"),
    ("SDM one-step", "teacher DDIM-10"),
)


def differences(
    rows: dict[str, dict[str, Any]], pairs: tuple[tuple[str, str], ...] = DIFFERENCES
) -> list[dict[str, Any]]:
    """State `paired_difference` of every pair (B, A) whose rows are both present.

    95 %, one training run: the bootstrap over episodes; `b` and `a` name the rows.
    """
    from sdm_policy_core.eval.protocol import paired_difference

    out = []
    for b, a in pairs:
        if a in rows and b in rows:
            out.append({"b": b, "a": a, **paired_difference([rows[a]], [rows[b]])})
    return out


def difference_lines(diffs: list[dict[str, Any]]) -> list[str]:
    """One line per paired difference, in points with its 95 % interval."""
    lines = []
    for d in diffs:
        lo, hi = d["ci"]
        lines.append(
            f"- {d['b']} − {d['a']}: {100 * d['difference']:+.1f} points, 95 % interval "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}] over {d['pairs']} paired episodes (only "
            f"{d['a']} solved {d['only_a']}, only {d['b']} solved {d['only_b']})"
        )
    return lines


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(rows)]
    return "\n".join(lines)


def terminal_table(rows: dict[str, dict[str, Any]]) -> str:
    data = [HEADER, *table_rows(rows)]
    widths = [max(len(r[i]) for r in data) for i in range(len(HEADER))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*data[0]), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in data[1:]]
    return "\n".join(lines)


def plot_rows(rows: dict[str, dict[str, Any]], out: Path) -> Path:
    """Plot success / latency distribution / control rate, one panel each (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].bar(names, [100 * rows[n]["success_rate"] for n in names], color="tab:green")
    axes[0].set_ylabel("success (%)")
    axes[0].set_ylim(0, 100)
    for n in names:
        values = _latencies(rows[n])
        if values:
            axes[1].hist(values, bins=40, alpha=0.6, label=n)
        else:
            axes[1].bar([n], [rows[n].get("latency_ms", {}).get("p50", 0)], alpha=0.6, label=n)
    axes[1].set_xlabel("policy latency per call (ms)")
    axes[1].set_xscale("log")
    axes[1].legend(fontsize=7)
    axes[2].bar(names, [rows[n].get("control_hz", 0) for n in names], label="policy-bound")
    axes[2].bar(
        names, [rows[n].get("achieved_control_hz", 0) for n in names], alpha=0.7, label="achieved"
    )
    axes[2].set_yscale("log")
    axes[2].set_ylabel("actions per second")
    axes[2].legend(fontsize=7)
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7, rotation=15)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_report(
    out_dir: Path,
    title: str,
    tasks: dict[str, dict[str, dict[str, Any]]],
    runs: dict[str, Path],
    stages: dict[str, float],
    notes: list[str],
) -> Path:
    """Write out_dir/report.md (+ plots, rows.json) and return its path.

    rows.json holds each task's rows and differences. tasks: task section title -> {row name:
    evaluation result}.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    saved: dict[str, Any] = {}
    for i, (task, rows) in enumerate(tasks.items()):
        plot = f"evaluation_{i}.png"
        plot_rows(rows, out_dir / plot)
        diffs = differences(rows)
        lines += [f"## {task}", "", markdown_table(rows), ""]
        if diffs:
            lines += ["Paired differences (same episodes; bootstrap over episodes):", ""]
            lines += [*difference_lines(diffs), ""]
        lines += [f"![evaluation {task}]({plot})", ""]
        saved[task] = {"rows": rows, "differences": diffs}
    for name, run in runs.items():
        plot = run / "plots" / "metrics.png"
        if plot.exists():
            slug = name.replace(" ", "_")
            shutil.copyfile(plot, out_dir / f"training_{slug}.png")
            lines += [f"## Training: {name}", "", f"![{name}](training_{slug}.png)", ""]
    lines += ["## Stages (wall-clock seconds)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in stages.items()]
    lines += ["", *notes, ""]
    (out_dir / "rows.json").write_text(json.dumps(saved, indent=2))
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
