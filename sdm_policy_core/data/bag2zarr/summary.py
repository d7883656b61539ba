# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""What a conversion counted and the summary it returns.

Messages and effective rate per topic, ticks, samples written / dropped (with why) / held,
episodes written and skipped, message issues, warnings, the dataset's shape, the throughput
and where the time went (seconds per stage of the converter: read, stream, align, tf,
tf_lookup, markers, submit, wait, write, other; and of the decoding workers, summed over them:
cloud_decode, cloud_fps, img, depth).

    stats = ConversionStats()          # filled by the pipeline
    summary = make_summary(stats, bags, out, append, dataset, wall_s, cfg)
    print(format_summary(summary))     # what `sdm bag2zarr` prints
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdm_policy_core.data.bag2zarr.config import NS, Bag2ZarrConfig


class StageTimer:
    """Wall seconds per stage of the converting process, into `seconds`.

    A stage entered inside another is not counted in the outer one as well.

        timer.enter("read"); ...; timer.exit()
    """

    def __init__(self, seconds: Counter) -> None:
        self.seconds = seconds
        self._open: list[list] = []  # [name, start, seconds spent in inner stages]

    def enter(self, name: str) -> None:
        self._open.append([name, time.perf_counter(), 0.0])

    def exit(self) -> None:
        name, start, inner = self._open.pop()
        elapsed = time.perf_counter() - start
        self.seconds[name] += elapsed - inner
        if self._open:
            self._open[-1][2] += elapsed


@dataclass
class ConversionStats:
    """What a conversion counted, over all its bags (the summary is made from it)."""

    messages: Counter = field(default_factory=Counter)
    issues: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    held: Counter = field(default_factory=Counter)
    first_stamp: dict[str, int] = field(default_factory=dict)  # of the current bag
    last_stamp: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    samples: int = 0
    clouds: int = 0
    episodes: int = 0
    episodes_skipped: int = 0
    episodes_failed: int = 0
    episode_lengths: list[int] = field(default_factory=list)
    kept_intervals: int = 0  # between consecutive kept ticks of an episode
    kept_span_ns: int = 0

    intervals: Counter = field(default_factory=Counter)
    span_ns: Counter = field(default_factory=Counter)
    bag_counts: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    # seconds per stage: of this process (wall) and of the decoding workers (summed over them)
    stage_s: Counter = field(default_factory=Counter)
    worker_stage_s: Counter = field(default_factory=Counter)
    timer: StageTimer = field(init=False)

    def __post_init__(self) -> None:
        self.timer = StageTimer(self.stage_s)

    def seen(self, topic: str, stamp: int) -> None:
        self.messages[topic] += 1
        self.bag_counts[topic] += 1
        first = self.first_stamp.get(topic)
        self.first_stamp[topic] = stamp if first is None else min(first, stamp)
        self.last_stamp[topic] = max(self.last_stamp.get(topic, stamp), stamp)

    def end_bag(self) -> None:
        """Fold this bag's per-topic spans into the rates (gaps between bags do not count)."""
        for topic, count in self.bag_counts.items():
            self.intervals[topic] += count - 1
            self.span_ns[topic] += self.last_stamp[topic] - self.first_stamp[topic]
        self.bag_counts.clear()
        self.first_stamp.clear()
        self.last_stamp.clear()

    def rates(self) -> dict[str, float]:
        """Messages per second of every topic, over the time each bag spans."""
        return {
            topic: round(self.intervals[topic] / (self.span_ns[topic] / NS), 3)
            if self.span_ns[topic] > 0
            else 0.0
            for topic in sorted(self.messages)
        }


def make_summary(
    stats: ConversionStats,
    bags: Sequence[Path],
    out: Path,
    append: bool,
    dataset: dict[str, Any],
    wall: float,
    cfg: Bag2ZarrConfig,
) -> dict[str, Any]:
    """Build the summary `convert_bags` returns (JSON-serialisable; see `format_summary`)."""
    sample_rate = 0.0
    if stats.kept_span_ns > 0:  # kept samples per second within episodes
        sample_rate = round(stats.kept_intervals / (stats.kept_span_ns / NS), 3)
    return {
        "bags": [str(p) for p in bags],
        "out": str(out),
        "append": append,
        "episodes_written": stats.episodes,
        "episodes_skipped_short": stats.episodes_skipped,
        "episodes_skipped_failed": stats.episodes_failed,
        "episode_lengths": stats.episode_lengths,
        "samples_written": stats.samples,
        "samples_dropped": dict(stats.dropped.most_common()),
        "samples_held": dict(stats.held),
        "ticks": stats.ticks,
        "messages": dict(sorted(stats.messages.items())),
        "messages_total": sum(stats.messages.values()),
        "message_issues": dict(stats.issues.most_common()),
        "warnings": stats.warnings,
        "rates_hz": stats.rates(),
        "sample_rate_hz": sample_rate,
        "dataset": dataset,
        "wall_s": round(wall, 3),
        "clouds_decoded": stats.clouds,
        "clouds_per_s": round(stats.clouds / wall, 2) if wall > 0 else 0.0,
        "stages_s": {
            "converter": _stages(stats.stage_s, wall),
            "workers": _stages(stats.worker_stage_s),
        },
        "config": cfg.to_dict(),
    }


def _stages(seconds: Counter, wall: float | None = None) -> dict[str, float]:
    """{stage: seconds} rounded, largest first; with `wall`, the rest of it as 'other'."""
    out = {name: round(value, 3) for name, value in seconds.most_common()}
    if wall is not None:
        out["other"] = round(max(wall - sum(seconds.values()), 0.0), 3)
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Format a human-readable account of a `convert_bags` summary."""
    lines = [
        f"wrote {summary['samples_written']} samples in {summary['episodes_written']} "
        f"episode{'' if summary['episodes_written'] == 1 else 's'} "
        f"to {summary['out']} ({summary['wall_s']:.1f} s, {summary['clouds_per_s']:.0f} "
        f"clouds/s); dataset now {summary['dataset']['episodes']} episodes, "
        f"{summary['dataset']['steps']} steps, keys {summary['dataset']['keys']}",
        "messages per topic (effective rate):",
    ]
    for topic, count in summary["messages"].items():
        lines.append(f"  {topic:<32} {count:>8}  {summary['rates_hz'].get(topic, 0):8.2f} Hz")
    lines.append(f"samples: {summary['ticks']} ticks, {summary['sample_rate_hz']:.2f} Hz kept")
    if summary["episodes_skipped_short"]:
        lines.append(f"episodes skipped (too short): {summary['episodes_skipped_short']}")
    if summary["episodes_skipped_failed"]:
        lines.append(f"episodes skipped (failed): {summary['episodes_skipped_failed']}")
    lines += [f"warning: {warning}" for warning in summary.get("warnings", [])]
    for title, key in (
        ("samples dropped", "samples_dropped"),
        ("samples held (missing: hold)", "samples_held"),
        ("message issues", "message_issues"),
    ):
        if summary[key]:
            lines.append(f"{title}:")
            lines += [f"  {count:>8}  {reason}" for reason, count in summary[key].items()]
    return "\n".join(lines)
