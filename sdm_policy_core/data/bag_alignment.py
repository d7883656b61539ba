# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Time alignment of message streams to reference ticks, streaming and with bounded memory.

Times are integer nanoseconds. A `StreamBuffer` keeps the recent messages of one stream sorted
by stamp and answers "which message belongs to tick t" under one rule:

    nearest   the message nearest to t, if |stamp - t| <= tolerance
    previous  the latest message with stamp <= t (zero-order hold, what a live policy would
              have seen), if t - stamp <= tolerance (None: any age)
    next      the first message with stamp >= t, if stamp - t <= tolerance (e.g. the command a
              controller sent in response to the observation at t)

Messages arrive in the bag's (receive-time) order, so their stamps may be out of order. A
message older than the newest one on its stream by more than the reorder window is *late* and
dropped; within the window it is inserted in order (*reordered*). A message with the stamp of a
buffered one is a *duplicate* and dropped. Because of the window, the choice for tick t is final
once `ready(t)`: no message accepted later can change it. Buffers are pruned behind the ticks.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

ALIGN_RULES = ("nearest", "previous", "next")

# What `StreamBuffer.add` reports.
ACCEPTED, REORDERED, DUPLICATE, LATE = "accepted", "reordered", "duplicate", "late"


@dataclass(frozen=True)
class AlignRule:
    """How a stream is matched to ticks.

    `rule` in ALIGN_RULES, `tolerance_ns` (None only for 'previous': any age).
    """

    rule: str
    tolerance_ns: int | None

    def __post_init__(self) -> None:
        if self.rule not in ALIGN_RULES:
            raise ValueError(f"align rule must be one of {ALIGN_RULES}, got {self.rule!r}")
        if self.tolerance_ns is None and self.rule != "previous":
            raise ValueError(f"align rule {self.rule!r} needs a tolerance")
        if self.tolerance_ns is not None and self.tolerance_ns < 0:
            raise ValueError(f"tolerance must be >= 0, got {self.tolerance_ns} ns")

    @property
    def lookahead_ns(self) -> int:
        """How far past t a stream must have advanced before its choice for t is final."""
        return 0 if self.rule == "previous" else int(self.tolerance_ns or 0)

    @property
    def lookbehind_ns(self) -> int | None:
        """How far before t a message may lie and still be chosen (None: unbounded)."""
        if self.rule == "next":
            return 0
        return self.tolerance_ns


class StreamBuffer:
    """Recent messages of one stream, sorted by stamp (ns), with byte accounting."""

    def __init__(self, rule: AlignRule, reorder_ns: int = 0) -> None:
        self.rule = rule
        self.reorder_ns = int(reorder_ns)
        self.stamps: list[int] = []
        self.values: list[Any] = []
        self.sizes: list[int] = []
        self.nbytes = 0
        self.max_seen: int | None = None
        self.first_seen: int | None = None
        self.finished = False

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def watermark(self) -> float:
        """Stamps below this can no longer arrive (later ones are dropped as late)."""
        if self.finished:
            return float("inf")
        if self.max_seen is None:
            return float("-inf")
        return self.max_seen - self.reorder_ns

    def add(self, stamp: int, value: Any, size: int = 0) -> str:
        """Insert a message; returns ACCEPTED, REORDERED, DUPLICATE or LATE (not stored)."""
        if self.max_seen is not None and stamp < self.max_seen - self.reorder_ns:
            return LATE
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            return DUPLICATE
        self.stamps.insert(i, stamp)
        self.values.insert(i, value)
        self.sizes.insert(i, size)
        self.nbytes += size
        self.first_seen = stamp if self.first_seen is None else min(self.first_seen, stamp)
        if self.max_seen is None or stamp > self.max_seen:
            self.max_seen = stamp
            return ACCEPTED
        return REORDERED

    def ready(self, t: int) -> bool:
        """Tell whether no message accepted from now on can change the choice for tick t."""
        if self.finished:
            return True
        watermark = self.watermark
        if self.rule.rule == "previous":
            return watermark > t
        return watermark >= t + self.rule.lookahead_ns

    def select(self, t: int, low: float = float("-inf"), high: float = float("inf")) -> Any:
        """Return the index of the message for tick t under the rule, None when there is none.

        Restricted to stamps in [low, high) (an episode's time span).
        """
        stamps = self.stamps
        tol = self.rule.tolerance_ns
        if self.rule.rule == "previous":
            i = bisect.bisect_right(stamps, t) - 1
            if i >= 0 and stamps[i] >= low and (tol is None or t - stamps[i] <= tol):
                return i
            return None
        i = bisect.bisect_left(stamps, t)
        if self.rule.rule == "next":
            if i < len(stamps) and stamps[i] < high and stamps[i] - t <= tol:
                return i
            return None
        best = None
        for j in (i - 1, i):  # nearest: the neighbours of t; ties go to the earlier message
            if 0 <= j < len(stamps) and low <= stamps[j] < high:
                distance = abs(stamps[j] - t)
                if distance <= tol and (best is None or distance < abs(stamps[best] - t)):
                    best = j
        return best

    def prune(self, t: int) -> None:
        """Forget messages that no tick at or after t can choose.

        Keeps one before, for 'previous'.
        """
        behind = self.rule.lookbehind_ns
        cutoff = t - behind if behind is not None else t
        cut = bisect.bisect_left(self.stamps, cutoff) - 1
        if cut > 0:
            self.nbytes -= sum(self.sizes[:cut])
            del self.stamps[:cut], self.values[:cut], self.sizes[:cut]

    def drop_through(self, t: int) -> None:
        """Forget every message with stamp <= t (consumed reference ticks)."""
        cut = bisect.bisect_right(self.stamps, t)
        if cut:
            self.nbytes -= sum(self.sizes[:cut])
            del self.stamps[:cut], self.values[:cut], self.sizes[:cut]

    def evict_oldest(self) -> None:
        """Drop the oldest message (memory limit reached)."""
        if self.stamps:
            self.nbytes -= self.sizes[0]
            del self.stamps[0], self.values[0], self.sizes[0]
