# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The conversion: bags -> streams -> ticks -> episodes -> decoded chunks -> the zarr dataset.

    summary = convert_bags(["demo_000", "demo_001"], "demos.zarr", cfg)

Every bag is opened and checked first (its topics and types, the marker and tf topics), so a
bad bag fails before anything is converted. Then, per bag: the small topics needed up front
are read (episode markers, /tf_static), and one pass over the rest streams every message into
its stream (`reading`) or /tf (`transforms`), aligns the streams at each tick (`alignment`),
cuts episodes (`episodes`) and hands full chunks to the decoding pool and the writer
(`writing`).
The dataset is written into a temp directory and swapped in at the end (`--append` copies the
existing dataset there first), so a failure never leaves a partial or damaged dataset.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sdm_policy_core.atomic import atomic_directory
from sdm_policy_core.data.bag2zarr.alignment import Aligner
from sdm_policy_core.data.bag2zarr.config import Bag2ZarrConfig
from sdm_policy_core.data.bag2zarr.decoding import (
    DecodePool,
    decode_settings,
    typedefs_for_workers,
)
from sdm_policy_core.data.bag2zarr.episodes import Episodes
from sdm_policy_core.data.bag2zarr.reading import BagStreams, open_bag
from sdm_policy_core.data.bag2zarr.summary import ConversionStats, make_summary
from sdm_policy_core.data.bag2zarr.transforms import CloudTransforms
from sdm_policy_core.data.bag2zarr.writing import Sample, SampleWriter, check_output
from sdm_policy_core.data.bag_reading import BagError, BagReader, read_metadata
from sdm_policy_core.data.zarr_writer import StreamingDatasetWriter


class BagConversion:
    """One bag's conversion.

    Building it checks the bag against the config (BagError); `run` streams it into the
    dataset.
    """

    def __init__(self, bag: BagReader, cfg: Bag2ZarrConfig, stats: ConversionStats) -> None:
        self.bag, self.cfg, self.stats = bag, cfg, stats
        self.streams = BagStreams(bag, cfg, stats.issues)
        if cfg.episodes.split == "marker":
            bag.resolve(cfg.episodes.marker_topic, "episodes.marker_topic")
        self.transforms = CloudTransforms(bag, cfg.point_cloud, self.streams.reorder_ns)
        self.episodes = Episodes(cfg.episodes, cfg.stamp)
        watermark = self.transforms.watermark if self.transforms.dynamic_topics else None
        self.aligner = Aligner(self.streams, cfg, stats.issues, stats.held, watermark)
        self.writer: SampleWriter | None = None

    def run(
        self,
        dataset: StreamingDatasetWriter,
        pool: DecodePool,
        progress: Callable[[int], None],
    ) -> None:
        """Convert the bag into `dataset` (progress: called once per stream message)."""
        settings = decode_settings(self.cfg, self.streams.message_types())
        self.writer = SampleWriter(
            dataset, pool, settings, self.transforms.lookup, self.cfg, self.stats, self.bag.path
        )
        self._warn_left_out()
        self._read_up_front()
        topics = self._stream(progress)
        for stream in self.streams.all():
            stream.buffer.finished = True
        self.transforms.finished = True
        self._align(final=True)
        self._end_episode()
        self.stats.end_bag()
        self.streams.check_read(topics, self.stats.warnings)

    def _warn_left_out(self) -> None:
        left_out = self.bag.undecodable()  # topics used were checked when resolved
        if left_out:
            self.stats.warnings.append(
                f"bag {self.bag.path}: left out {len(left_out)} topic"
                f"{'s' if len(left_out) > 1 else ''} whose messages cannot be decoded: "
                + "; ".join(f"{topic} ({problem})" for topic, problem in left_out.items())
            )

    def _read_up_front(self) -> None:
        """Read the small topics needed before the rest: episode markers and /tf_static."""
        bag, stats, timer = self.bag, self.stats, self.stats.timer
        bag.read_counts.clear()
        if self.cfg.episodes.split == "marker":
            timer.enter("markers")
            self.episodes.read_markers(bag, stats.issues)
            timer.exit()
        timer.enter("tf")
        self.transforms.read_static(bag, stats.issues)
        timer.exit()
        self.streams.check_read(list(bag.read_counts), stats.warnings)

    def _stream(self, progress: Callable[[int], None]) -> list[str]:
        """Make one pass over the streams' topics and /tf, aligning as ticks become ready.

        Returns the topics read.
        """
        bag, stats, timer = self.bag, self.stats, self.stats.timer
        tf_topics = set(self.transforms.dynamic_topics)
        topics = self.streams.topics() + sorted(tf_topics)
        messages = iter(bag.messages(topics))
        while True:
            timer.enter("read")
            item = next(messages, None)
            timer.exit()
            if item is None:
                return topics
            topic, msgtype, receive_ns, raw = item
            if topic in tf_topics:
                timer.enter("tf")
                self.transforms.add(bag, topic, msgtype, raw, stats.issues)
                timer.exit()
            else:
                progress(1)
                timer.enter("stream")
                stamp = self.streams.add(topic, msgtype, receive_ns, raw, self.aligner.last_tick)
                stats.seen(topic, receive_ns if stamp is None else stamp)
                timer.exit()
            self._align(final=False)

    def _align(self, final: bool) -> None:
        """Turn every tick that is ready into a sample of its episode (or count the drop)."""
        self.stats.timer.enter("align")
        try:
            self._align_ticks(final)
        finally:
            self.stats.timer.exit()

    def _align_ticks(self, final: bool) -> None:
        for t in self.aligner.ticks(final):
            self.stats.ticks += 1
            segment, low, high = self.episodes.segment_of(t)
            if self.episodes.marker_between(segment):
                self._end_episode()
            self.episodes.segment = segment
            values, dropped = self.aligner.align(t, low, high)
            if dropped is not None:
                self.stats.dropped[dropped] += 1
                continue
            if self.episodes.gap_before(t):
                self._end_episode()
            last = self.episodes.last_kept
            if last is not None:
                self.stats.kept_intervals += 1
                self.stats.kept_span_ns += t - last
            self.episodes.last_kept = t
            self.writer.add(Sample(t, values))

    def _end_episode(self) -> None:
        """Flush the open episode; keep it if it succeeded and is long enough."""
        length = self.writer.flush()
        self.writer.end_episode(self.episodes.outcome(length))
        self.aligner.forget_held()
        self.episodes.last_kept = None


def convert_bags(
    bags: Sequence[str | Path],
    out: str | Path,
    cfg: Bag2ZarrConfig | None = None,
    append: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert rosbag2 bags into the zarr dataset `out`; return the summary.

    The summary is described in `summary.format_summary`. Raises BagError (bad bag, missing
    topic, no samples), DatasetError (output problems) or ConfigError; on any error nothing is
    written and an existing dataset is untouched.
    """
    cfg = cfg or Bag2ZarrConfig()
    paths = [Path(b) for b in bags]
    if not paths:
        raise BagError("no bag given")
    out = Path(out)
    check_output(out, append, overwrite)
    started = time.perf_counter()
    # Fail fast: every bag opens and has the configured topics before anything is converted
    # (except file-compressed bags, which rosbags decompresses on open: checked when converted).
    total = 0
    for path in paths:
        if str(read_metadata(path).get("compression_mode", "")).lower() == "file":
            info = read_metadata(path)
            total += int(info.get("message_count") or 0)
            continue
        with open_bag(path, cfg) as bag:
            topics = BagConversion(bag, cfg, ConversionStats()).streams.topics()
            total += sum(bag.topics[t].declared or 0 for t in topics)
    stats = ConversionStats()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="msg", desc="bag2zarr", file=sys.stderr, smoothing=0.1)
    pool = DecodePool(cfg.workers)
    try:
        with atomic_directory(out) as tmp:
            if append:
                shutil.copytree(out, tmp, dirs_exist_ok=True)
            dataset = StreamingDatasetWriter(tmp)
            for path in paths:
                with open_bag(path, cfg) as bag:
                    pool.configure(typedefs_for_workers(bag, cfg))
                    bar_update = bar.update if bar is not None else (lambda n: None)
                    BagConversion(bag, cfg, stats).run(dataset, pool, bar_update)
            if stats.samples == 0:
                reasons = dict(stats.dropped.most_common(5))
                raise BagError(
                    f"no sample could be converted from {[str(p) for p in paths]}; dropped: "
                    f"{reasons or 'none (no reference ticks)'}; message issues: "
                    f"{dict(stats.issues.most_common(5))}"
                )
            dataset.close()
            written = {
                "episodes": len(dataset.episode_ends),
                "steps": dataset.n_steps,
                "keys": {k: list(shape) for k, (shape, _) in dataset.shapes().items()},
            }
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - started
    return make_summary(stats, paths, out, append, written, wall, cfg)
