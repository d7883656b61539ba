"""PolicyController: the robot-side control logic, without ROS.

The ROS node converts messages to arrays and calls this; `sdm eval`-like loops can too. Per
control tick it decides whether the newest observations are fresh enough to act on, feeds the
PolicyRuntime's history, re-plans when the action queue runs out (receding horizon) or every
tick (temporal ensembling), and turns the next action into a safe command (limits, max step).

Rule: no command is ever derived from a stale, missing or invalid observation. When observations
go stale the queue is dropped; after they return, the policy re-plans from fresh data.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.pointcloud import preprocess_cloud
from sdm_policy_core.robot import CommandLimiter, RobotProfile, check_fits
from sdm_policy_core.runtime import ActionChunk, PolicyRuntime

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
    last_inference_time: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    def reject(self, what: str, reason: str) -> None:
        if what == "cloud":
            self.rejected_point_clouds += 1
        elif what == "image":
            self.rejected_images += 1
        else:
            self.rejected_states += 1
        key = f"{what}: {reason[:60]}"
        self.reasons[key] = self.reasons.get(key, 0) + 1


class PolicyController:
    """See the module docstring. Times are in seconds (ROS time of the caller's clock)."""

    def __init__(
        self,
        runtime: PolicyRuntime,
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
        self._cloud: _Stamped | None = None
        self._image: _Stamped | None = None
        self._state: _Stamped | None = None
        self._fresh_cloud = False
        self._queue: deque[np.ndarray] = deque()
        self._ensemble: deque[tuple[int, np.ndarray]] = deque()
        self._tick_index = 0
        self._last_command: np.ndarray | None = None
        self._state_to_action = self._action_indices_in_state()

    def _action_indices_in_state(self) -> list[int] | None:
        names = list(self.profile.state_names)
        try:
            return [names.index(n) for n in self.profile.action_names]
        except ValueError:
            return None

    # -- inputs ----------------------------------------------------------------------------------
    def update_cloud(
        self, points: np.ndarray, stamp: float, to_base: np.ndarray | None = None
    ) -> None:
        """A decoded cloud (N, >=3) in its sensor frame, finite points only. `to_base`: the 4x4
        transform of this cloud's frame into the base frame (tf at the cloud's stamp); None: the
        controller's `cloud_to_base` (the profile's camera mount)."""
        self._cloud = _Stamped(points, stamp, to_base)
        self._fresh_cloud = True

    def update_image(self, rgb: np.ndarray, stamp: float) -> None:
        """A decoded RGB frame (H, W, 3) uint8 (resized to the checkpoint's size at the tick)."""
        self._image = _Stamped(rgb, stamp)

    def update_state(self, positions: np.ndarray, stamp: float) -> None:
        """agent_pos (Ds,) in the profile's state_names order."""
        self._state = _Stamped(np.asarray(positions, dtype=np.float32), stamp)

    def reject(self, what: str, reason: str) -> None:
        self.counters.reject(what, reason)

    def set_enabled(self, enabled: bool) -> None:
        if enabled and not self.enabled:
            self.reset()  # never continue a plan made before the robot was handed over
        self.enabled = enabled

    def reset(self) -> None:
        self.runtime.reset()
        self._queue.clear()
        self._ensemble.clear()
        self._last_command = None

    # -- the tick --------------------------------------------------------------------------------
    def _required(self) -> list[tuple[str, _Stamped | None]]:
        inputs = [("joint state", self._state)]
        if self.uses_cloud:
            inputs.insert(0, ("point cloud", self._cloud))
        if self.uses_image:
            inputs.insert(0, ("image", self._image))
        return inputs

    def observation_age(self, now: float) -> float:
        """Age [s] of the oldest input the next plan needs (-1 while one is missing)."""
        values = [v for _, v in self._required()]
        if any(v is None for v in values):
            return -1.0
        return now - min(v.stamp for v in values)

    def _drop_plan(self) -> None:
        self._queue.clear()
        self._ensemble.clear()
        self.runtime.reset()

    def tick(self, now: float) -> TickResult:
        if not self.enabled:
            self._drop_plan()
            return TickResult(DISABLED, "disabled: call ~/enable to start commanding")
        missing = [name for name, value in self._required() if value is None]
        if missing:
            return TickResult(WAITING_FOR_DATA, f"waiting for {' and '.join(missing)}")
        age = self.observation_age(now)
        # Too old, or stamped in the future by more than the same margin (clock trouble).
        if not math.isfinite(age) or abs(age) > self.cfg.stale_age_s:
            self.counters.skipped_ticks += 1
            self._drop_plan()
            return TickResult(
                HOLDING,
                f"observations {age:.3f} s old (limit {self.cfg.stale_age_s} s): holding",
                skipped=True,
            )
        try:
            obs = {"agent_pos": self._state.value}
            if self.uses_cloud:
                obs["point_cloud"] = preprocess_cloud(
                    self._cloud.value,
                    self.num_points,
                    self.channels,
                    self.cloud_to_base if self._cloud.to_base is None else self._cloud.to_base,
                    self.profile.crop_low,
                    self.profile.crop_high,
                    seed=self.cfg.num_points_seed,
                )
            if self.uses_image:
                obs["image"] = resize_rgb(self._image.value, self.image_hw)
            self.runtime.push(obs)
        except ValueError as err:  # empty after crop, wrong shape, NaN state
            self.reject("cloud" if self.uses_cloud else "image", str(err))
            self._cloud = self._image = None
            self.counters.skipped_ticks += 1
            self._drop_plan()
            return TickResult(HOLDING, f"invalid observation: {err}", skipped=True)
        chunk = None
        # The camera frame the plan sees (latency is measured from its stamp).
        obs_stamp = (self._cloud or self._image).stamp
        if self.cfg.temporal_ensembling or not self._queue:
            chunk = self.runtime.infer()
            self.counters.inferences += 1
            self.counters.last_inference_time = chunk.inference_time
            if self.cfg.temporal_ensembling:
                self._ensemble.append((self._tick_index, chunk.actions))
            else:
                self._queue.extend(chunk.actions)
        previous = self._previous()
        if (
            self.cfg.execution == "trajectory"
            and chunk is not None
            and not self.cfg.temporal_ensembling
        ):
            targets = []
            for action in chunk.actions:
                previous = self.limiter(action, previous)
                targets.append(previous)
            self._queue.clear()
            self._queue.extend([None] * (len(targets) - 1))  # ticks until the next plan
            self._last_command = targets[-1]
            self.counters.commands += 1
            self._tick_index += 1
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
            self._tick_index += 1
            return TickResult(RUNNING, "running (executing trajectory)")
        action = self._ensembled() if self.cfg.temporal_ensembling else self._queue.popleft()
        command = self.limiter(action, previous)
        self._last_command = command
        self.counters.commands += 1
        self._tick_index += 1
        return TickResult(RUNNING, "running", command=command, chunk=chunk, obs_stamp=obs_stamp)

    def _previous(self) -> np.ndarray | None:
        if self._last_command is not None:
            return self._last_command
        if self._state_to_action is not None and self._state is not None:
            return self._state.value[self._state_to_action].astype(np.float64)
        return None

    def _ensembled(self) -> np.ndarray:
        t = self._tick_index
        while self._ensemble and t - self._ensemble[0][0] >= len(self._ensemble[0][1]):
            self._ensemble.popleft()
        actions, weights = [], []
        for start, chunk_actions in self._ensemble:
            actions.append(chunk_actions[t - start])
            weights.append(math.exp(-self.cfg.ensembling_decay * (t - start)))
        w = np.asarray(weights) / sum(weights)
        return (np.asarray(actions) * w[:, None]).sum(axis=0)
