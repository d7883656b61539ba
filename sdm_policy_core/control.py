# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PolicyController: the robot-side control logic, without ROS.

The ROS node converts messages to arrays and calls this; `sdm eval`-like loops can too. The
runtime is either `PolicyRuntime` (PyTorch) or `OnnxPolicyRuntime` (onnxruntime, no torch). Per
control tick it decides whether the newest observations are fresh enough to act on, feeds the
PolicyRuntime's history, re-plans when the action queue runs out (receding horizon) or every
tick (temporal ensembling), and turns the next action into a safe command (limits, max step).

Rule: no command is ever derived from a stale, missing or invalid observation (point cloud,
image or joint state: each is stale when older than `stale_age_s`). When observations go stale
the queue is dropped; after they return, the policy re-plans from fresh data.

Safety relative to the arm: every target is clamped to the profile's limits and to `max_step`
from the latest *measured* position (never from the previous target, which a stuck or slow arm
leaves ever farther behind). When the measured position does not follow the targets (farther
than `tracking_tolerance` from the previous target on every tick for `tracking_timeout_s`), the
controller enters FAULT: no command until `set_enabled(True)` is called again.

Seams: the jump between the last executed action of one chunk and the first executed action of
the next (max |difference| over action dimensions, robot units, before the limits) is measured
per seam (`counters.seams`); with temporal ensembling every tick starts from a new chunk.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.pointcloud import preprocess_cloud
from sdm_policy_core.robot import CommandLimiter, RobotProfile, check_fits
from sdm_policy_core.runtime_base import ActionChunk, RuntimeBase

# States (the numbers of sdm_msgs/PolicyStatus).
NO_CHECKPOINT, DISABLED, WAITING_FOR_DATA, RUNNING, HOLDING, FAULT = range(6)


@dataclass
class TickResult:
    state: int
    message: str
    command: np.ndarray | None = None  # (Da,) the safe command to publish now
    chunk: ActionChunk | None = None  # set when the policy ran this tick
    trajectory: np.ndarray | None = None  # (n, Da) safe targets, execution="trajectory"
    skipped: bool = False  # the tick was skipped because of stale/invalid data
    obs_stamp: float = 0.0  # [s] stamp of the newest observation the command is based on
    halt: bool = False  # ask the robot's controller to stop where it is (on_fault: stop)


@dataclass
class SeamStats:
    """Jumps at action-chunk seams, in robot units (-1 before the first seam).

    max |a_first(new chunk) - a_last(previous)| over action dimensions, in robot units (-1
    before the first seam).
    """

    last: float = -1.0
    max: float = 0.0
    total: float = 0.0
    count: int = 0

    def add(self, jump: float) -> None:
        self.last = jump
        self.max = max(self.max, jump)
        self.total += jump
        self.count += 1

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


def action_jump(a: np.ndarray, b: np.ndarray) -> float:
    """Return max |a - b| over action dimensions (robot units)."""
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


class TemporalEnsembler:
    """ACT-style temporal ensembling: a chunk is planned every tick.

    The executed action of tick t is the mean of every live chunk's action for t, weighted
    exp(-decay * chunk age in ticks).
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self._chunks: deque[tuple[int, np.ndarray]] = deque()
        self.tick = 0

    def add(self, actions: np.ndarray) -> None:
        """Add the chunk (n, Da) planned at this tick (its first action is for this tick)."""
        self._chunks.append((self.tick, np.asarray(actions)))

    def next(self) -> np.ndarray:
        """Return the ensembled action (Da,) of the current tick; advance to the next tick."""
        t = self.tick
        while self._chunks and t - self._chunks[0][0] >= len(self._chunks[0][1]):
            self._chunks.popleft()
        if not self._chunks:
            raise RuntimeError("temporal ensembling: no chunk covers this tick; add() one first")
        actions, weights = [], []
        for start, chunk_actions in self._chunks:
            actions.append(chunk_actions[t - start])
            weights.append(math.exp(-self.decay * (t - start)))
        w = np.asarray(weights) / sum(weights)
        self.tick += 1
        return (np.asarray(actions) * w[:, None]).sum(axis=0)

    def reset(self) -> None:
        self._chunks.clear()
        self.tick = 0


class TrackingMonitor:
    """Whether the arm follows its targets (positions in robot units, times in seconds).

    A fault when, after `timeout_s` of commanding, the measured position has reached none of the
    targets it was sent in the last `timeout_s`: each is farther than `tolerance` (max over the
    dimensions). An arm that follows late or slowly reaches older targets and passes; a stuck one
    stays about max_step from every target (targets are clamped around the measured position).
    """

    def __init__(self, tolerance: float, timeout_s: float) -> None:
        self.tolerance, self.timeout_s = tolerance, timeout_s
        self.error = 0.0  # distance to the nearest recent target at the last update
        self._targets: deque[tuple[float, np.ndarray]] = deque()
        self._since: float | None = None  # time of the first target since reset

    def commanded(self, now: float, target: np.ndarray) -> None:
        """Record that the arm was sent `target` at `now` (tracked dimensions only)."""
        self._targets.append((now, np.asarray(target, dtype=np.float64)))
        if self._since is None:
            self._since = now

    def update(self, now: float, measured: np.ndarray) -> bool:
        """Record the measured position (tracked dimensions) at `now`; True when it is a fault."""
        while self._targets and self._targets[0][0] < now - self.timeout_s:
            self._targets.popleft()
        if not self._targets or self._since is None:
            return False
        self.error = min(action_jump(measured, target) for _, target in self._targets)
        return now - self._since >= self.timeout_s and self.error > self.tolerance

    def reset(self) -> None:
        self.error = 0.0
        self._targets.clear()
        self._since = None


@dataclass
class _Stamped:
    value: np.ndarray
    stamp: float  # [s] header stamp
    to_base: np.ndarray | None = None  # clouds: 4x4 cloud frame -> base frame (None: default)


def resize_rgb(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H', W', 3) uint8 -> (H, W, 3) uint8 (area interpolation; unchanged when equal)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[:2] == tuple(hw):
        return rgb
    import cv2

    return cv2.resize(rgb, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


@dataclass
class ControllerCounters:
    rejected_point_clouds: int = 0
    rejected_images: int = 0
    rejected_states: int = 0
    skipped_ticks: int = 0
    inferences: int = 0
    commands: int = 0
    faults: int = 0
    last_inference_time: float = 0.0
    last_preprocess_time: float = 0.0  # [s] the newest observation's assembly (crop, FPS)
    reasons: dict[str, int] = field(default_factory=dict)
    seams: SeamStats = field(default_factory=SeamStats)

    def reject(self, what: str, reason: str) -> None:
        if what == "cloud":
            self.rejected_point_clouds += 1
        elif what == IMAGE:
            self.rejected_images += 1
        else:
            self.rejected_states += 1
        key = f"{what}: {reason[:60]}"
        self.reasons[key] = self.reasons.get(key, 0) + 1


class PolicyController:
    """See the module docstring. Times are in seconds (ROS time of the caller's clock)."""

    def __init__(
        self,
        runtime: RuntimeBase,
        profile: RobotProfile,
        cfg: DeploymentConfig,
        cloud_to_base: np.ndarray | None = None,
    ) -> None:
        spec = runtime.spec
        check_fits(profile, spec.state_dim, spec.action_dim)
        self.runtime, self.profile, self.cfg = runtime, profile, cfg
        self.cloud_to_base = (
            cloud_to_base if cloud_to_base is not None else profile.camera.matrix()
        )
        self.uses_cloud = spec.point_cloud_shape is not None
        self.uses_image = spec.image_shape is not None
        self.num_points, self.channels = spec.point_cloud_shape or (0, 3)
        self.image_hw = tuple(spec.image_shape[1:]) if self.uses_image else None
        self.limiter = CommandLimiter(profile)
        self.counters = ControllerCounters()
        self.enabled = False
        self.fault: str | None = None  # why the controller stopped (tracking), until re-enabled
        self._cloud: _Stamped | None = None
        self._image: _Stamped | None = None
        self._state: _Stamped | None = None
        self._fresh_cloud = False
        self._queue: deque[np.ndarray] = deque()
        self._targets: deque[np.ndarray] = deque()  # execution trajectory: points still ahead
        self._ensembler = TemporalEnsembler(cfg.ensembling_decay)
        self._last_command: np.ndarray | None = None
        self._last_executed: np.ndarray | None = None  # the policy's action, before limits
        self._state_to_action, self._tracked = self._measured_indices()
        self.tracking = TrackingMonitor(profile.tracking_tolerance, profile.tracking_timeout_s)

    def _measured_indices(self) -> tuple[list[int] | None, list[int]]:
        """Map action dimensions to state indices; pick the dimensions the tracking check watches.

        State index of each action dimension (None: raw actions, no measured counterpart)
        and the action dimensions the tracking check watches.
        """
        p = self.profile
        names = list(p.state_names)
        if p.action_kind == "raw":
            return None, []
        measured = p.action_names if p.action_kind == "joint_position" else p.action_names[:3]
        index = [names.index(n) for n in measured]  # RobotProfile checked they exist
        tracked = [i for i, n in enumerate(measured) if n not in p.untracked]
        return index, tracked

    # -- inputs ----------------------------------------------------------------------------------
    def update_cloud(
        self, points: np.ndarray, stamp: float, to_base: np.ndarray | None = None
    ) -> None:
        """Store a decoded cloud (N, >=3) in its sensor frame, finite points only.

        `to_base`: the 4x4 transform of this cloud's frame into the base frame (tf at the
        cloud's stamp); None: the controller's `cloud_to_base` (the profile's camera mount).
        """
        self._cloud = _Stamped(points, stamp, to_base)
        self._fresh_cloud = True

    def update_image(self, rgb: np.ndarray, stamp: float) -> None:
        """Store a decoded RGB frame (H, W, 3) uint8 (resized to the checkpoint's size at tick)."""
        self._image = _Stamped(rgb, stamp)

    def update_state(self, positions: np.ndarray, stamp: float) -> None:
        """agent_pos (Ds,) in the profile's state_names order."""
        self._state = _Stamped(np.asarray(positions, dtype=np.float32), stamp)

    def reject(self, what: str, reason: str) -> None:
        self.counters.reject(what, reason)

    def set_enabled(self, enabled: bool) -> None:
        """Enable (clears a fault, the plan and the seam statistics) or disable commanding."""
        if enabled and (not self.enabled or self.fault is not None):
            self.reset()  # never continue a plan made before the robot was handed over
            self.fault = None
            self.counters.seams = SeamStats()
        self.enabled = enabled

    def set_fault(self, reason: str) -> None:
        """Stop commanding until set_enabled(True) (e.g. the policy produced NaN)."""
        self.fault = reason
        self.counters.faults += 1
        self._drop_plan()

    def reset(self) -> None:
        """Clear the observation history, the plan and the tracking watch."""
        self._drop_plan()

    # -- the tick --------------------------------------------------------------------------------
    def _required(self) -> list[tuple[str, _Stamped | None]]:
        inputs = [("joint state", self._state)]
        if self.uses_cloud:
            inputs.insert(0, ("point cloud", self._cloud))
        if self.uses_image:
            inputs.insert(0, (IMAGE, self._image))
        return inputs

    def observation_age(self, now: float) -> float:
        """Age [s] of the oldest input the next plan needs (-1 while one is missing)."""
        values = [v for _, v in self._required()]
        if any(v is None for v in values):
            return -1.0
        return now - min(v.stamp for v in values)

    def _drop_plan(self) -> None:
        self._queue.clear()
        self._ensembler.reset()
        self.runtime.reset()
        self._targets.clear()
        self._last_command = None
        self._last_executed = None  # the next chunk after a gap is not a seam
        self.tracking.reset()

    def measured_action(self) -> np.ndarray | None:
        """Return the latest measured position in action order (None: raw actions or no state)."""
        if self._state_to_action is None or self._state is None:
            return None
        return self._state.value[self._state_to_action].astype(np.float64)

    def _stale(self, now: float) -> list[str]:
        """List '<input> <age> s old' for each needed input older than stale_age_s.

        Also inputs stamped further than that in the future (clock trouble).
        """
        stale = []
        for name, value in self._required():
            age = now - value.stamp
            if not math.isfinite(age) or abs(age) > self.cfg.stale_age_s:
                stale.append(f"{name} {age:.3f} s old")
        return stale

    def _check_tracking(self, now: float) -> str | None:
        """Return a fault message when the arm has not followed the targets for the timeout."""
        measured = self.measured_action()
        if self._last_command is None or measured is None or not self._tracked:
            return None
        if not self.tracking.update(now, measured[self._tracked]):
            return None
        p = self.profile
        return (
            f"tracking fault: for {p.tracking_timeout_s} s the measured position reached none of "
            f"its targets (nearest {self.tracking.error:.4f} away, tolerance "
            f"{p.tracking_tolerance:.4f}): the arm does not follow the commands; holding, no "
            "commands until re-enabled"
        )

    def _commanded(self, now: float, target: np.ndarray) -> None:
        """`target` is what the arm should reach by the next tick."""
        self._last_command = target
        if self._tracked:
            self.tracking.commanded(now, target[: len(self._state_to_action)][self._tracked])

    def tick(self, now: float) -> TickResult:
        if not self.enabled:
            self._drop_plan()
            return TickResult(DISABLED, "disabled: call ~/enable to start commanding")
        if self.fault is not None:
            return TickResult(FAULT, self.fault)
        missing = [name for name, value in self._required() if value is None]
        if missing:
            return TickResult(WAITING_FOR_DATA, f"waiting for {' and '.join(missing)}")
        stale = self._stale(now)
        if stale:
            self.counters.skipped_ticks += 1
            self._drop_plan()
            self.tracking.reset()
            return TickResult(
                HOLDING,
                f"{', '.join(stale)} (limit {self.cfg.stale_age_s} s): holding",
                skipped=True,
                halt=True,
            )
        fault = self._check_tracking(now)
        if fault is not None:
            self.set_fault(fault)
            return TickResult(FAULT, fault, halt=True)
        started = time.perf_counter()
        try:
            obs = {AGENT_POS: self._state.value}
            if self.uses_cloud:
                obs[POINT_CLOUD] = preprocess_cloud(
                    self._cloud.value,
                    self.num_points,
                    self.channels,
                    self.cloud_to_base if self._cloud.to_base is None else self._cloud.to_base,
                    self.profile.crop_low,
                    self.profile.crop_high,
                    seed=self.cfg.num_points_seed,
                )
            if self.uses_image:
                obs[IMAGE] = resize_rgb(self._image.value, self.image_hw)
            self.runtime.push(obs)
            self.counters.last_preprocess_time = time.perf_counter() - started
        except ValueError as err:  # empty after crop, wrong shape, NaN state
            self.reject(
                "cloud" if self.uses_cloud else IMAGE if self.uses_image else "state", str(err)
            )
            self._cloud = self._image = None
            self.counters.skipped_ticks += 1
            self._drop_plan()
            return TickResult(HOLDING, f"invalid observation: {err}", skipped=True, halt=True)
        chunk = None
        # The camera frame the plan sees (latency is measured from its stamp).
        # (a state-only policy: the joint state it acted on)
        obs_stamp = (self._cloud or self._image or self._state).stamp
        ensembling = self.cfg.temporal_ensembling
        if ensembling or not self._queue:
            chunk = self.runtime.infer()
            self.counters.inferences += 1
            self.counters.last_inference_time = chunk.inference_time
            if ensembling:
                self._ensembler.decay = self.cfg.ensembling_decay
                self._ensembler.add(chunk.actions)
            else:
                self._queue.extend(chunk.actions)
        measured = self.measured_action()
        if self.cfg.execution == "trajectory" and chunk is not None and not ensembling:
            # Point k is reached k+1 ticks from now: each within max_step of the one before,
            # the first within max_step of the measured position.
            targets, previous = [], measured
            for action in chunk.actions:
                previous = self.limiter(action, previous)
                targets.append(previous)
            self._queue.clear()
            self._queue.extend([None] * (len(targets) - 1))  # ticks until the next plan
            self._targets.extend(targets[1:])
            self._executed(chunk.actions[0], new_chunk=True)
            self._last_executed = np.asarray(chunk.actions[-1])
            self._commanded(now, targets[0])
            self.counters.commands += 1
            return TickResult(
                RUNNING,
                "running",
                command=targets[0],
                chunk=chunk,
                trajectory=np.stack(targets),
                obs_stamp=obs_stamp,
            )
        if self.cfg.execution == "trajectory" and self._queue and self._queue[0] is None:
            self._queue.popleft()
            # The point the arm should reach by the next tick (what tracking compares with).
            self._commanded(now, self._targets.popleft())
            return TickResult(RUNNING, "running (executing trajectory)")
        action = self._ensembler.next() if ensembling else self._queue.popleft()
        self._executed(action, new_chunk=chunk is not None)
        command = self.limiter(action, measured)
        self._commanded(now, command)
        self.counters.commands += 1
        return TickResult(RUNNING, "running", command=command, chunk=chunk, obs_stamp=obs_stamp)

    def _executed(self, action: np.ndarray, new_chunk: bool) -> None:
        """Record the policy's action executed now; a seam when it opens a new chunk."""
        if new_chunk and self._last_executed is not None:
            self.counters.seams.add(action_jump(action, self._last_executed))
        self._last_executed = np.asarray(action)
