# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Alignment of one bag's streams to the reference ticks.

The rules are `data.bag_alignment`'s: nearest / previous / next within a tolerance.

    aligner = Aligner(streams, cfg, issues, held)
    for t in aligner.ticks(final=False):        # ticks whose choice is final, in order
        values, dropped = aligner.align(t, low, high)   # low/high: the episode's time span

A tick is one message of the clock stream, or every 1/rate_hz from the first time every
stream has data to the last. `missing: hold` streams reuse their last value (counted in
`held`). Memory is bounded: beyond `max_buffer_mb` of raw messages (or too
many pending ticks) alignment is forced, and with no tick to align the largest buffer sheds
its oldest message; both are counted in `issues`. With /tf read alongside the clouds, a tick
also waits for /tf to pass the clouds it may choose (`transforms.CloudTransforms.watermark`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from sdm_policy_core.data.bag2zarr.config import Bag2ZarrConfig
from sdm_policy_core.data.bag2zarr.reading import BagStreams
from sdm_policy_core.keys import ARRAY_POINT_CLOUD


class Aligner:
    """Decides the ticks of one bag and the value of every stream at each tick."""

    def __init__(
        self,
        streams: BagStreams,
        cfg: Bag2ZarrConfig,
        issues: Counter,
        held: Counter,
        tf_watermark: Callable[[], float] | None = None,
    ) -> None:
        self.streams, self.issues, self.held = streams, issues, held
        # /tf read alongside: a tick waits until /tf has passed every cloud it may choose
        self.tf_watermark = tf_watermark
        clouds = [s for s in streams.streams if s.name == ARRAY_POINT_CLOUD]
        self.cloud_lookahead_ns = clouds[0].buffer.rule.lookahead_ns if clouds else 0
        self.max_buffer_bytes = int(cfg.max_buffer_mb * 2**20)
        self.max_pending_ticks = max(4 * cfg.chunk_size, 256)
        self.last_tick: int | None = None
        self.next_rate_tick: int | None = None

    def _next_tick(self, final: bool) -> int | None:
        clock = self.streams.clock
        if clock is not None:
            stamps = clock.buffer.stamps
            return stamps[0] if stamps else None
        # fixed rate: from the first time every stream has data to the last
        data = self.streams.streams
        if self.next_rate_tick is None:
            firsts = [s.buffer.first_seen for s in data]
            if any(f is None for f in firsts):
                return None
            self.next_rate_tick = max(firsts)
        if final:
            ends = [s.buffer.max_seen for s in data]
            if any(e is None for e in ends) or self.next_rate_tick > min(ends):
                return None
        return self.next_rate_tick

    def ticks(self, final: bool) -> Iterator[int]:
        """Yield the ticks that can be aligned now, each new tick once, in order.

        Every one left when `final` (the bag is read). Consumes them: the caller aligns each
        before the next.
        """
        clock = self.streams.clock
        while True:
            t = self._next_tick(final)
            if t is None:
                if self.streams.buffered_bytes() > self.max_buffer_bytes:
                    largest = max(self.streams.streams, key=lambda s: s.buffer.nbytes)
                    largest.buffer.evict_oldest()
                    self.streams.issue(largest, "evicted unaligned (max_buffer_mb reached)")
                    continue
                return
            ready = final or (
                all(s.buffer.ready(t) for s in self.streams.streams)
                and (clock is None or clock.buffer.ready(t))
                and (
                    self.tf_watermark is None or self.tf_watermark() >= t + self.cloud_lookahead_ns
                )
            )
            if not ready:
                over = self.streams.buffered_bytes() > self.max_buffer_bytes or (
                    clock is not None and len(clock.buffer) > self.max_pending_ticks
                )
                if not over:
                    return
                self.issues["alignment forced early (max_buffer_mb reached)"] += 1
            if self.last_tick is None or t > self.last_tick:
                self.last_tick = t
                yield t
            if clock is not None:
                clock.buffer.drop_through(t)
            else:
                self.next_rate_tick = t + self.streams.period_ns

    def align(self, t: int, low: float, high: float) -> tuple[dict[str, Any], str | None]:
        """Align the streams at tick t within the episode span [low, high).

        Returns ({stream name: value}, None) or (partial values, why the sample is dropped).
        Prunes the buffers behind t.
        """
        values: dict[str, Any] = {}
        dropped = None
        for stream in self.streams.streams:
            index = stream.buffer.select(t, low, high)
            if index is not None:
                values[stream.name] = stream.buffer.values[index]
            elif stream.hold and stream.last is not None:
                values[stream.name] = stream.last
                self.held[stream.name] += 1
            else:
                dropped = dropped or (
                    f"no {stream.name} message ({stream.topic}) within tolerance "
                    f"({stream.buffer.rule.rule})"
                )
        for stream in self.streams.streams:
            stream.buffer.prune(t)
        if dropped is None:
            for stream in self.streams.streams:
                stream.last = values[stream.name]
        return values, dropped

    def forget_held(self) -> None:
        """Start a new episode, which holds nothing over from the last one."""
        for stream in self.streams.streams:
            stream.last = None
