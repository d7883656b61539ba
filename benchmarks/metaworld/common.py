# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""What the MetaWorld benchmark scripts share: run folders, evaluation files, report cells.

What the MetaWorld benchmark scripts share (run.py, modes.py, phases.py, compare.py): the
run folders and evaluation files of a benchmark task, the cells and files of their reports.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def latest_checkpoint(work: Path, run: str, error: Callable[[str], Any]) -> Path:
    """WORK/RUN/checkpoints/latest; `error` (argparse's p.error) when it is not there."""
    path = work / run / "checkpoints" / "latest"
    if not path.exists():
        error(f"{path} does not exist (train it with benchmarks/metaworld/run.py)")
    return path


def write_report(stem: Path, summary: dict[str, Any], table: str, start: float) -> None:
    """STEM.json (summary + wall time, CPUs and the command line) and STEM.md; prints the table."""
    summary = {
        **summary,
        "wall_time_s": time.perf_counter() - start,
        "cpu_count": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(table)
    print(f"-> {stem}.json .md", file=sys.stderr)


def evaluation_pattern(name: str, row: str, seed: int | None, tag: str | None = None) -> str:
    """Return the glob of run.py's evaluation JSONs of ROW in the task folder NAME.

    The glob of run.py's evaluation JSONs of ROW in the task folder NAME:
    metaworld*_NAME_ROW_s<seed>.json, or metaworld*_NAME_ROW.json (seed None: run.py's name
    when it trains a single seed). tag: run.py's --tag (metaworld_TAG_...; "" for none);
    None matches any.
    """
    prefix = "metaworld*" if tag is None else "metaworld" + (f"_{tag}" if tag else "")
    return f"{prefix}_{name}_{row}" + ("" if seed is None else f"_s{seed}") + ".json"


def evaluation_files(
    results: Path, name: str, row: str, seed: int | None, tag: str | None = None
) -> list[Path]:
    """Return the evaluations matching `evaluation_pattern` in RESULTS, sorted (normally one)."""
    return sorted(results.glob(evaluation_pattern(name, row, seed, tag)))


def points(fraction: float, decimals: int = 1) -> str:
    """Format a fraction as signed percentage points, with the minus sign BENCHMARKS.md uses."""
    return f"{100 * fraction:+.{decimals}f}".replace("-", "\u2212")


def gap_cell(gap: dict[str, Any], interval_decimals: int = 1) -> str:
    """'difference [low, high]' in points of a `paired_difference` result."""
    lo, hi = gap["ci"]
    return (
        f"{points(gap['difference'])} "
        f"[{points(lo, interval_decimals)}, {points(hi, interval_decimals)}]"
    )
