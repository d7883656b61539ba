# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Decoding the heavy messages (clouds, images, depth) of aligned samples in a pool of processes.

What each sample decodes to (`decode_settings`), the message definitions the workers need
(`typedefs_for_workers`) and the pool (`DecodePool`). The work itself is
`sdm_policy_core.message_decoding` (deserialise, convert, transform, crop, FPS; jpeg / png /
compressedDepth with OpenCV), which imports neither torch nor zarr, so workers stay small.

    pool = DecodePool(workers)
    pool.configure(typedefs_for_workers(bag, cfg))     # (re)starts workers when types change
    futures = pool.submit(jobs, settings)              # batches of 16 samples
    results = pool.results(futures, seconds)           # dict of arrays or a reason per job
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import types
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sdm_policy_core.data.bag2zarr.config import IMAGE_TYPES, POINT_CLOUD_TYPE, Bag2ZarrConfig
from sdm_policy_core.data.bag_reading import BagError, BagReader, type_closure
from sdm_policy_core.keys import ARRAY_DEPTH, ARRAY_IMAGE
from sdm_policy_core.message_decoding import (
    CloudSettings,
    DecodeSettings,
    ImageSettings,
    Job,
    decode_batch,
    init_worker,
)


def typedefs_for_workers(bag: BagReader, cfg: Bag2ZarrConfig) -> dict:
    """Collect the definitions (a rosbags Typesdict) of the heavy messages and what they use."""
    needed = []
    if cfg.point_cloud is not None:
        needed.append(POINT_CLOUD_TYPE)
    for scfg in (cfg.image, cfg.depth):
        if scfg is not None:
            needed.append(bag.topics[bag.resolve(scfg.topic, "image topic", IMAGE_TYPES)].msgtype)
    needed = sorted(set(needed))
    bag.ensure_types(needed)
    return type_closure(bag.typestore.fielddefs, needed)


def decode_settings(cfg: Bag2ZarrConfig, msgtypes: dict[str, str]) -> DecodeSettings:
    """Return what every sample decodes to; msgtypes: {stream name: message type} of the bag."""
    cloud = image = depth = None
    if cfg.point_cloud is not None:
        pc = cfg.point_cloud
        cloud = CloudSettings(
            POINT_CLOUD_TYPE, pc.num_points, pc.channels, pc.crop_low, pc.crop_high, pc.seed
        )
    if cfg.image is not None:
        image = ImageSettings(msgtypes[ARRAY_IMAGE], "rgb", cfg.image.size())
    if cfg.depth is not None:
        depth = ImageSettings(msgtypes[ARRAY_DEPTH], "depth", cfg.depth.size())
    return DecodeSettings(cloud, image, depth)


class _Done:
    """A finished 'future' for decoding in this process (workers=0)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Hide the __main__ module while starting worker processes.

    Spawned children re-import __main__ (a user's script may import torch), but decoding needs
    only `sdm_policy_core.message_decoding`.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class DecodePool:
    """Decodes batches of samples in `workers` spawned processes (small: no torch, no zarr).

    workers=0 decodes in this process.
    """

    BATCH = 16

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._typedefs: dict | None = None

    def configure(self, typedefs: dict) -> None:
        """(Re)start the workers with these message definitions (when they changed)."""
        if typedefs == self._typedefs:
            return
        self._typedefs = typedefs
        if self.workers <= 0:
            init_worker(typedefs)
            return
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(typedefs,),
        )
        with _bare_main():  # each submit starts one more worker while none is idle
            warm_up = [
                self._executor.submit(decode_batch, [], DecodeSettings())
                for _ in range(self.workers)
            ]
            for future in warm_up:
                self._result(future)

    @staticmethod
    def _result(future: Future | _Done) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as err:
            raise BagError(
                f"a decoding worker process died ({err}); run with --workers 0 to see the "
                f"error in this process"
            ) from None

    def submit(self, jobs: list[Job], settings: DecodeSettings) -> list[Future | _Done]:
        batches = [jobs[i : i + self.BATCH] for i in range(0, len(jobs), self.BATCH)]
        if self._executor is None:
            return [_Done(decode_batch(b, settings)) for b in batches]
        return [self._executor.submit(decode_batch, b, settings) for b in batches]

    def results(self, futures: list[Future | _Done], seconds: Counter) -> list:
        """Wait for the decoded samples of `futures` and return them, in order.

        Adds the workers' seconds per stage to `seconds`.
        """
        out = []
        for future in futures:
            results, spent = self._result(future)
            out += results
            seconds.update(spent)
        return out

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
