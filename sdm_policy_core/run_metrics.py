# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A run's metrics: the append-only JSONL log, its PNG plots, and DP3's score.

The append-only JSONL log training writes, its PNG plots, and DP3's score of its periodic
closed-loop evaluations. Training writes them and evaluation reads them, so this module stands
below both (training never imports `eval/`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

EVAL_SPLIT = "eval"  # the split of the rows of periodic closed-loop evaluations


def success_rate_of(value: float | Mapping[str, Any]) -> float:
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
    rates = sorted((success_rate_of(v) for v in evaluations), reverse=True)
    if not rates:
        raise ValueError("no evaluations to score")
    return float(np.mean(rates[:k]))


class MetricsLog:
    """`RUN_DIR/metrics.jsonl`: one JSON object per logged step ({"step": ..., "split": ...})."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after `step` (a resumed run re-logs them)."""
        if not self.enabled or not self.path.exists():
            return
        rows = [r for r in self.read() if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, self.path)

    def append(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def read(self, split: str | None = None) -> list[dict[str, Any]]:
        """Return the logged rows in order; only those of `split` ("train", "val", EVAL_SPLIT)."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if split is None or row.get("split") == split:
                rows.append(row)
        return rows


def plot_metrics(rows: list[dict[str, Any]], out: Path, title: str) -> Path | None:
    """One panel per numeric series (train and val), written atomically to `out` (PNG)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for row in rows:
        split = row.get("split", "train")
        for key, value in row.items():
            if key in ("step", "split", "time", "epoch", "wall_s") or not isinstance(
                value, (int, float)
            ):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            name = key if split == "train" else f"{split}/{key}"
            xs, ys = series.setdefault(name, ([], []))
            xs.append(int(row["step"]))
            ys.append(float(value))
    if not series:
        return None
    import matplotlib  # here, not at import: a training start pays nothing for plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(series, key=lambda n: (n.startswith("val/") is False, n))
    cols = min(3, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.0 * rows_n), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        xs, ys = series[name]
        ax.plot(xs, ys, lw=1.0, marker="o" if len(xs) < 30 else None, ms=3)
        positive = all(y > 0 for y in ys)
        if positive and ("loss" in name or "mse" in name) and max(ys) / min(ys) > 20:
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, out)
    return out
