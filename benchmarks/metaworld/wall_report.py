"""What modes.py and phases.py share: the run folders of a two-route benchmark, their report."""

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
