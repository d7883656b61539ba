# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Writing aligned samples: chunks decoded in the pool, appended to the zarr dataset in order.

They gather in chunks of `chunk_size`, each chunk goes to the decoding pool (with every
cloud's transform) while the next one gathers, and decoded chunks are appended to the zarr
dataset (`data.zarr_writer.StreamingDatasetWriter`) in order. An episode ends by being kept
or discarded as a whole.

    check_output(out, append, overwrite)          # before anything is read
    writer = SampleWriter(dataset, pool, settings, transforms, cfg, stats, bag_path)
    writer.add(Sample(t, values)); ...; writer.end_episode(outcome)

Actions are the command aligned at the tick (`action.source: topic`) or the state of the
next sample (`next_state`: the last sample of an episode, which has none, is dropped). A
sample whose cloud or image cannot be decoded, or whose image size differs from the first, is
dropped with the reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.data.bag2zarr.config import Bag2ZarrConfig
from sdm_policy_core.data.bag2zarr.decoding import DecodePool
from sdm_policy_core.data.bag2zarr.episodes import FAILED, KEPT
from sdm_policy_core.data.bag2zarr.summary import ConversionStats
from sdm_policy_core.data.bag2zarr.transforms import Cloud
from sdm_policy_core.data.replay_buffer import DatasetError
from sdm_policy_core.data.zarr_writer import StreamingDatasetWriter
from sdm_policy_core.keys import (
    ARRAY_ACTION,
    ARRAY_DEPTH,
    ARRAY_IMAGE,
    ARRAY_POINT_CLOUD,
    ARRAY_STATE,
)
from sdm_policy_core.message_decoding import DecodeSettings, Job

IN_FLIGHT_CHUNKS = 3  # decoded ahead of the zarr writes (memory: a few chunks of raw messages)


@dataclass
class Sample:
    """One aligned tick: {stream name: buffered value} (see reading.Stream)."""

    stamp: int
    values: dict[str, Any]


def check_output(out: Path, append: bool, overwrite: bool) -> None:
    """DatasetError when `out` cannot be written as asked (nothing is read or written)."""
    is_zarr = out.is_dir() and ((out / ".zgroup").exists() or (out / "zarr.json").exists())
    if append:
        if not out.exists():
            raise DatasetError(f"--append: {out} does not exist (omit --append to create it)")
        if not is_zarr:
            raise DatasetError(f"--append: {out} is not a zarr dataset directory")
    elif out.exists():
        if not overwrite:
            raise DatasetError(
                f"{out} exists; pass --append to add episodes or --overwrite to replace it"
            )
        if not is_zarr:
            raise DatasetError(f"{out} exists and is not a zarr dataset; refusing to replace it")


class SampleWriter:
    """Decodes and appends one bag's samples, episode by episode."""

    def __init__(
        self,
        dataset: StreamingDatasetWriter,
        pool: DecodePool,
        settings: DecodeSettings,
        transforms: Callable[[list[Cloud]], list[np.ndarray | None]],
        cfg: Bag2ZarrConfig,
        stats: ConversionStats,
        bag_path: Path,
    ) -> None:
        self.dataset, self.pool, self.settings = dataset, pool, settings
        self.transforms, self.cfg, self.stats, self.bag_path = transforms, cfg, stats, bag_path
        self.pending: list[Sample] = []
        self.inflight: deque[tuple[list[tuple[np.ndarray, np.ndarray]], list]] = deque()
        self.image_shapes: dict[str, tuple[int, ...]] = {}

    def add(self, sample: Sample) -> None:
        """Queue a sample of the open episode; a full chunk goes to the pool."""
        self.pending.append(sample)
        if len(self.pending) > self.cfg.chunk_size:
            self._submit(final=False)

    def _submit(self, final: bool) -> None:
        """Send the first chunk of pending samples (all when `final`) to the decoding pool."""
        count = len(self.pending) if final else self.cfg.chunk_size
        samples, self.pending = self.pending[:count], self.pending[count:]
        next_state = self.cfg.action.source == "next_state"
        small: list[tuple[np.ndarray, np.ndarray]] = []
        kept: list[Sample] = []
        for i, sample in enumerate(samples):
            values = sample.values
            if next_state:
                following = samples[i + 1] if i + 1 < len(samples) else None
                if following is None and self.pending:
                    following = self.pending[0]
                if following is None:
                    self.stats.dropped["last sample of an episode (no next state for action)"] += 1
                    continue
                action = following.values[ARRAY_STATE]
            else:
                action = values[ARRAY_ACTION]
            kept.append(sample)
            small.append((values[ARRAY_STATE], action))
        if not kept:
            return
        timer = self.stats.timer
        transforms: list[np.ndarray | None] = [None] * len(kept)
        if self.cfg.point_cloud is not None:
            timer.enter("tf_lookup")
            transforms = self.transforms([s.values[ARRAY_POINT_CLOUD] for s in kept])
            timer.exit()
        jobs: list[Job] = []
        for sample, transform in zip(kept, transforms, strict=True):
            values = sample.values
            jobs.append(
                (
                    values[ARRAY_POINT_CLOUD][0] if ARRAY_POINT_CLOUD in values else None,
                    transform,
                    values[ARRAY_IMAGE][0] if ARRAY_IMAGE in values else None,
                    values[ARRAY_DEPTH][0] if ARRAY_DEPTH in values else None,
                )
            )
        timer.enter("submit")  # workers=0: the decoding itself
        self.inflight.append((small, self.pool.submit(jobs, self.settings)))
        timer.exit()
        while len(self.inflight) > IN_FLIGHT_CHUNKS:
            self._complete_oldest()

    def _complete_oldest(self) -> None:
        small, futures = self.inflight.popleft()
        timer = self.stats.timer
        timer.enter("wait")
        results = self.pool.results(futures, self.stats.worker_stage_s)
        timer.exit()
        block: dict[str, list[np.ndarray]] = {}
        for (state, action), result in zip(small, results, strict=True):
            if isinstance(result, str):
                self.stats.dropped[result] += 1
                continue
            reason = None
            for key in (ARRAY_IMAGE, ARRAY_DEPTH):
                if key in result:
                    shape = self.image_shapes.setdefault(key, result[key].shape)
                    if result[key].shape != shape:
                        reason = (
                            f"{key}: size {result[key].shape[1]}x{result[key].shape[0]} differs "
                            f"from the first ({shape[1]}x{shape[0]}); set width/height to resize"
                        )
            if reason:
                self.stats.dropped[reason] += 1
                continue
            for key, value in result.items():
                block.setdefault(key, []).append(value)
            block.setdefault(ARRAY_STATE, []).append(state)
            block.setdefault(ARRAY_ACTION, []).append(action)
        if not block:
            return
        timer.enter("write")
        arrays = {k: np.stack(v) for k, v in block.items()}
        arrays[ARRAY_STATE] = arrays[ARRAY_STATE].astype(np.float32)
        arrays[ARRAY_ACTION] = arrays[ARRAY_ACTION].astype(np.float32)
        try:
            self.dataset.append(arrays)
        except DatasetError as err:
            raise DatasetError(f"bag {self.bag_path}: {err}") from None
        finally:
            timer.exit()
        self.stats.samples += len(arrays[ARRAY_STATE])
        if self.settings.cloud is not None:
            self.stats.clouds += len(results)

    def flush(self) -> int:
        """Decode and append every queued sample; returns the open episode's length."""
        if self.pending:
            self._submit(final=True)
        while self.inflight:
            self._complete_oldest()
        return self.dataset.episode_length

    def end_episode(self, outcome: str) -> None:
        """Close the open episode (flushed).

        KEPT ends it in the dataset, FAILED or SHORT discards it (counted).
        """
        length = self.dataset.episode_length
        if length == 0:
            return
        if outcome == KEPT:
            self.dataset.end_episode()
            self.stats.episodes += 1
            self.stats.episode_lengths.append(length)
            return
        self.dataset.discard_episode()
        self.stats.samples -= length
        if outcome == FAILED:
            self.stats.episodes_failed += 1
            reason = f"episode failed ({self.cfg.episodes.success_field} not true at its end)"
        else:
            self.stats.episodes_skipped += 1
            reason = f"episode shorter than episodes.min_length={self.cfg.episodes.min_length}"
        self.stats.dropped[reason] += length
