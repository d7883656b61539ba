# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Where a deployed policy's latency goes: per planned step, cloud stamp -> command published.

Each step that ran the policy on a new observation is split into stages that add up to its
total (the newest `STEPS_KEPT` steps kept, perf_counter stamps, no logging per step):

- transport: the observation's stamp -> its message handed to the node (the sender, DDS, the
  executor, the message's conversion to Python), on the node's clock (`use_sim_time`: sim time);
- decode: the message -> arrays handed to the controller (PointCloud2 decoding, the frame's
  transform, the joint state);
- queueing: -> the control step that uses it starts (the control thread waking; a timer
  trigger's wait for its tick; `observation_sync_s`'s wait for the joint state);
- preprocess: the observation assembled for the model (crop, farthest point sampling, history);
- inference: the policy's call (`ActionChunk.inference_time`);
- control: the rest of the step (staleness and tracking checks, the limiter, the session lock);
- build: the ROS messages built; publish: their publish calls.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

STAGES = (
    "transport",
    "decode",
    "queueing",
    "preprocess",
    "inference",
    "control",
    "build",
    "publish",
)
STEPS_KEPT = 256


class PipelineTimes:
    """A bounded record of the stage durations [s] of the newest planned steps.

    See the module docstring; `summary()` their p50 / p99 / mean in ms.
    """

    def __init__(self, size: int = STEPS_KEPT) -> None:
        self._steps: deque[tuple[float, ...]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, **stages: float) -> None:
        """One step's stage durations [s], by the names in STAGES (each given once)."""
        step = tuple(stages[name] for name in STAGES)
        with self._lock:
            self._steps.append(step)

    def clear(self) -> None:
        with self._lock:
            self._steps.clear()

    def summary(self) -> dict:
        """Summarise the steps kept: p50 / p99 / mean per stage and of the total, in ms.

        {"steps": n, "stages_ms": {stage: {p50, p99, mean}}, "total_ms": {p50, p99, mean}}
        over the steps kept (empty stats while there are none). The stages' means add up to the
        total's mean; each step's stages add up to its total.
        """
        with self._lock:
            steps = np.asarray(self._steps, dtype=np.float64).reshape(-1, len(STAGES)) * 1e3
        columns = {name: steps[:, i] for i, name in enumerate(STAGES)}

        def stats(values: np.ndarray) -> dict[str, float]:
            if not len(values):
                return {}
            p50, p99 = np.percentile(values, [50, 99])
            return {"p50": float(p50), "p99": float(p99), "mean": float(values.mean())}

        return {
            "steps": len(steps),
            "stages_ms": {name: stats(values) for name, values in columns.items()},
            "total_ms": stats(steps.sum(axis=1)),
        }
