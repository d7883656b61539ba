# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Per-chunk latency of every preset: one-step vs DDIM-10 vs DDPM-100 (batch 1, CPU).

    python benchmarks/latency.py [--presets cpu_small simple_dp3 dp3] [--threads 2] [--idle-ms 20]

Runs `sdm bench latency --preset P` in a fresh process per preset (so peak memory is the
preset's own), writes benchmarks/results/latency_<preset>.json, a markdown table on stdout (the
one in BENCHMARKS.md) and benchmarks/results/latency.png. With `--idle-ms MS` every timed call
waits MS first, as a control loop does between ticks; results then go to
`latency_<preset>_idle<MS>.json` and `latency_idle<MS>.png`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--presets", nargs="+", default=["cpu_small", "simple_dp3", "dp3"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--budget", type=float, default=45.0)
    p.add_argument("--idle-ms", type=float, default=0.0, help="pause before every timed call")
    args = p.parse_args()
    suffix = f"_idle{args.idle_ms:g}" if args.idle_ms else ""
    rows = []
    for preset in args.presets:
        out = RESULTS / f"latency_{preset}{suffix}.json"
        cmd = [
            sys.executable,
            "-m",
            "sdm_policy_core.cli",
            "bench",
            "latency",
            "--preset",
            preset,
            "--threads",
            str(args.threads),
            "--budget",
            str(args.budget),
            "--idle-ms",
            str(args.idle_ms),
            "--out",
            str(out),
        ]
        print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        rows.append(json.loads(out.read_text()))
    print(
        "| preset | denoiser params | one-step p50 / p99 (ms) | DDIM-10 p50 / p99 (ms) | "
        "DDPM-100 p50 (ms) | one-step vs DDIM-10 | vs DDPM-100 | peak RSS (MB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        o, d, m = r["one_step"], r["ddim10"], r["ddpm100"]
        print(
            f"| {r['preset']} | {r['denoiser_params'] / 1e6:.1f}M | {o['p50_ms']:.1f} / "
            f"{o['p99_ms']:.1f} | {d['p50_ms']:.1f} / {d['p99_ms']:.1f} | "
            f"{m['p50_ms']:.0f} (n={m['n']}) | {r['speedup_vs_ddim10']:.1f}x | "
            f"{r['speedup_vs_ddpm100']:.0f}x | {r['peak_rss_mb']:.0f} |"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.27
    for i, (key, label) in enumerate(
        (("one_step", "one-step (SDM)"), ("ddim10", "DDIM-10"), ("ddpm100", "DDPM-100"))
    ):
        xs = [j + (i - 1) * width for j in range(len(rows))]
        ax.bar(xs, [r[key]["p50_ms"] for r in rows], width, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [r["preset"] for r in rows])
    ax.set_ylabel("ms per action chunk (p50)")
    idle = f", idle {args.idle_ms:g} ms before each call" if args.idle_ms else ""
    ax.set_title(f"batch-1 latency, {rows[0]['threads']} CPU threads{idle}")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / f"latency{suffix}.png", dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
