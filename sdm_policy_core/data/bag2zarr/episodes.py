# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Where episodes start and end, and which are kept.

split: bag (one bag = one episode) | marker (every message of the marker topic, or every
change of its `marker_field`, starts an episode; read before the bag's other topics) | gap (a
pause longer than gap_s between kept samples starts one). An episode shorter than
`min_length` samples is skipped; with `success_field`, one whose last marker message does not
say success is skipped too.

    episodes = Episodes(cfg.episodes, cfg.stamp)
    episodes.read_markers(bag, issues)          # split: marker only
    segment, low, high = episodes.segment_of(t) # the marker segment of tick t and its span
    episodes.outcome(segment, length)           # 'kept' | 'failed' | 'short'
"""

from __future__ import annotations

import bisect
from collections import Counter
from typing import Any

from sdm_policy_core.conversions import ConversionError
from sdm_policy_core.data.bag2zarr.config import NS, EpisodeConfig
from sdm_policy_core.data.bag2zarr.reading import field_value
from sdm_policy_core.data.bag_reading import BagError, BagReader
from sdm_policy_core.message_decoding import peek_header

KEPT, FAILED, SHORT = "kept", "failed", "short"


class Episodes:
    """The episode boundaries of one bag and the state of its open episode."""

    def __init__(self, cfg: EpisodeConfig, stamp: str) -> None:
        self.cfg, self.stamp = cfg, stamp
        self.boundaries: list[int] = []  # marker stamps (ns), sorted
        self.succeeded: set[int] = set()  # segments whose last marker says success
        self.segment: int | None = None  # of the open episode
        self.last_kept: int | None = None  # tick of its last kept sample
        self.gap_ns = round(cfg.gap_s * NS)

    def read_markers(self, bag: BagReader, issues: Counter) -> None:
        """Read the marker topic (split: marker) into boundaries and outcomes."""
        cfg = self.cfg
        topic = bag.resolve(cfg.marker_topic, "episodes.marker_topic")
        msgtype = bag.topics[topic].msgtype
        bag.ensure_types([msgtype])
        previous: Any = object()
        stamps = []
        outcomes: list[tuple[int, bool]] = []  # (stamp, success) of every marker message
        has_header = self.stamp == "header" and bag.has_header(msgtype)
        fields = {
            key: name
            for key, name in (
                ("marker_field", cfg.marker_field),
                ("success_field", cfg.success_field),
            )
            if name
        }
        for _, _, receive_ns, raw in bag.messages([topic]):
            values = {}
            if fields:
                try:
                    msg = bag.deserialize(raw, msgtype)
                except ConversionError as err:
                    raise BagError(f"bag {bag.path}: marker {topic}: {err}") from None
            for key, name in fields.items():
                try:
                    values[key] = field_value(msg, name)
                except ConversionError as err:
                    raise BagError(
                        f"bag {bag.path}: marker {topic}: {err}; set "
                        f"episodes.{key} to a field of {msgtype}"
                    ) from None
            try:
                stamp = peek_header(raw)[0] if has_header else receive_ns
            except ConversionError as err:
                issues[f"{topic}: {err}, dropped"] += 1
                continue
            stamp = stamp or receive_ns
            if cfg.success_field:
                outcomes.append((stamp, bool(values["success_field"])))
            if cfg.marker_field:
                if values["marker_field"] == previous:
                    continue
                previous = values["marker_field"]
            stamps.append(stamp)
        self.boundaries = sorted(set(stamps))
        last: dict[int, bool] = {}
        for stamp, success in sorted(outcomes, key=lambda o: o[0]):
            last[self.segment_of(stamp)[0]] = success
        self.succeeded = {segment for segment, success in last.items() if success}

    def segment_of(self, t: int) -> tuple[int, float, float]:
        """Return (index of the marker segment holding t, its start, its end) in ns.

        One segment spanning all time without markers.
        """
        i = bisect.bisect_right(self.boundaries, t)
        low = self.boundaries[i - 1] if i > 0 else float("-inf")
        high = self.boundaries[i] if i < len(self.boundaries) else float("inf")
        return i, low, high

    def marker_between(self, segment: int) -> bool:
        """Tell whether a tick of `segment` ends the open episode (a marker lies between)."""
        return self.segment is not None and segment != self.segment

    def gap_before(self, t: int) -> bool:
        """Tell whether a kept sample at t ends the open episode (split: gap)."""
        last = self.last_kept
        return self.cfg.split == "gap" and last is not None and t - last > self.gap_ns

    def outcome(self, length: int) -> str:
        """Decide what becomes of the open episode of `length` samples: KEPT, FAILED or SHORT."""
        if self.cfg.success_field and self.segment not in self.succeeded:
            return FAILED
        if length < self.cfg.min_length:
            return SHORT
        return KEPT
