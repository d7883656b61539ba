# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ControlSession: a policy deployed on a robot, without ROS.

What policy_node did around the PolicyController, in one place that is tested without ROS:

- the model: `load` (torch or onnxruntime per `backend`; an unfit checkpoint raises one of
  LOAD_ERRORS and the old model keeps running), `install`, `unload`;
- the state machine of the status: NO_CHECKPOINT -> DISABLED (loaded) -> `activate` ->
  WAITING_FOR_DATA / RUNNING / HOLDING (stale or invalid data) / FAULT (the arm does not follow,
  the policy produced NaN, a step raised) -> `rearm` (clears a fault) or `deactivate`
  (DISABLED: no new targets);
- the stale watch: with `trigger: observation` or sim time no step runs once the sensors or the
  simulator stop, so `status` reports HOLDING after stale_age_s of wall time without data;
- the inputs: `receive(topic, msg)` hands a sensor message to `deploy.inputs.SensorInputs`
  (decoding, state assembly; a malformed message is counted and dropped, never acted on);
- `step(now)`: one tick of the controller (the loop in `deploy.loop` calls it);
- `timing`: where the latency of the newest planned steps went (`deploy.timing`).

`log` is any logger with info / warning / error (rclpy's or the logging module's).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from sdm_policy_core import control
from sdm_policy_core.config import ConfigError, DeploymentConfig
from sdm_policy_core.control import DISABLED, FAULT, HOLDING, NO_CHECKPOINT, RUNNING
from sdm_policy_core.deploy.inputs import SensorInputs
from sdm_policy_core.deploy.timing import PipelineTimes
from sdm_policy_core.robot import RobotProfile
from sdm_policy_core.runtime_base import PolicyOutputError, RuntimeBase

# Errors of a checkpoint that cannot be used here: the load is refused, the caller carries on.
# (checkpoint.CheckpointError and onnx_runtime.OnnxModelError are ValueErrors; importing
# sdm_policy_core.checkpoint would import torch; ImportError: onnxruntime not installed.)
LOAD_ERRORS = (ConfigError, ValueError, OSError, PolicyOutputError, ImportError)
RATE_WINDOW_S = 2.0  # [s] the command rate is counted over this window


def load_runtime(
    path: str, config: DeploymentConfig, sampler: str, steps: int, seed: int
) -> RuntimeBase:
    """Load the runtime of `config.backend` for checkpoint `path`.

    Each backend is imported only here: the onnxruntime backend never imports torch. Empty
    sampler / 0 steps: the checkpoint's own.
    """
    options = {}
    if config.backend == "onnxruntime":  # its noise is numpy's default_rng(seed)
        from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime as Runtime
    else:
        from sdm_policy_core.runtime import PolicyRuntime as Runtime

        options["noise"] = config.sampler_noise
    return Runtime(
        path,
        sampler=sampler or None,
        steps=steps or None,
        threads=config.torch_threads,
        seed=seed,
        **options,
    )


class ControlSession:
    """The loaded model, its state machine, the stale watch and the step.

    See the module docstring. `cloud_to_base(frame_id, stamp)`: the 4x4 transform of a
    cloud's frame into the base frame (raises ConversionError for a frame it cannot place);
    None: the profile's camera mount.
    """

    def __init__(
        self,
        profile: RobotProfile,
        config: DeploymentConfig,
        log: Any,
        cloud_to_base: Callable[[str, Any], np.ndarray] | None = None,
    ) -> None:
        self.profile, self.config, self.log = profile, config, log
        self.inputs = SensorInputs(profile, log, cloud_to_base)
        self.assembler, self.trigger = self.inputs.assembler, self.inputs.trigger
        self.lock = threading.RLock()
        self.controller: control.PolicyController | None = None
        self.checkpoint = ""  # what the last load loaded (or the caller's default)
        self.policy_id = ""
        self.state, self.message = NO_CHECKPOINT, "no checkpoint loaded"
        self._command_times: deque[float] = deque()
        self.timing = PipelineTimes()  # the control loop records each planned step's stages

    # -- the model -------------------------------------------------------------------------------
    def load(self, path: str, sampler: str, steps: int, seed: int) -> str:
        """Load checkpoint `path` (disabled) and return its policy id.

        Raises one of LOAD_ERRORS (keeping the old model) if it cannot run here.
        """
        self.log.info(f"loading {path} ({self.config.backend})")
        runtime = load_runtime(path, self.config, sampler, steps, seed)
        self.install(runtime, path)
        self.log.info(
            f"loaded {runtime.policy_id} ({runtime.kind}, sampler "
            f"{runtime.sampler} x{runtime.steps}) from {path}"
        )
        return runtime.policy_id

    def install(self, runtime: RuntimeBase, path: str = "") -> None:
        """Run `runtime` from now on, disabled: it never inherits the old one's permission."""
        controller = control.PolicyController(runtime, self.profile, self.config)
        with self.lock:
            if self.controller is not None:
                self.controller.set_enabled(False)
            self.controller = controller
            self.checkpoint = path
            self.policy_id = runtime.policy_id
            self.state, self.message = DISABLED, "model loaded, disabled"

    def unload(self, why: str) -> None:
        with self.lock:
            if self.controller is not None:
                self.controller.set_enabled(False)
            self.controller = None
            self.policy_id = ""
            self.state, self.message = NO_CHECKPOINT, why

    def configure(self, config: DeploymentConfig, changed: set[str], seed: int) -> None:
        """Apply new settings; `changed` names the ones set (a new sampler_seed re-seeds noise)."""
        self.config = config
        with self.lock:
            controller = self.controller
            if controller is None:
                return
            if "sampler_seed" in changed:
                controller.runtime.generator.manual_seed(seed)
            controller.cfg = config
            if changed & {"sampler", "ddim_steps"}:
                try:
                    controller.runtime.set_sampler(config.sampler, config.ddim_steps)
                except ValueError as err:
                    self.log.error(f"sampler not changed: {err}")

    # -- the state machine -----------------------------------------------------------------------
    def activate(self) -> None:
        """Start commanding: a fresh history and plan (never one made before the hand-over)."""
        with self.lock:
            self.controller.set_enabled(True)
            self.state, self.message = control.WAITING_FOR_DATA, "activated"
        self.trigger.restart()  # sim time may restart (a new simulator)
        self.timing.clear()  # the latency of this activation's steps
        self.log.info("activated: commanding from fresh observations")

    def deactivate(self) -> None:
        """Hold: no new targets (the robot's controller keeps the last one)."""
        with self.lock:
            self.controller.set_enabled(False)
            self.state, self.message = DISABLED, "deactivated"
        self.log.info("deactivated: no new targets")

    def rearm(self) -> None:
        """Handle being enabled again while active: clear a fault, plan afresh."""
        with self.lock:
            self.controller.set_enabled(True)
        self.trigger.restart()

    def reset(self) -> None:
        """Clear the observation history and the planned actions."""
        with self.lock:
            if self.controller is not None:
                self.controller.reset()
        self.trigger.restart()

    def refuse(self, reason: str) -> None:
        """Refuse a request: log it, and the status message says why."""
        self.log.error(reason)
        with self.lock:
            self.message = reason

    def fail(self, err: Exception) -> None:
        """Handle a step that raised: FAULT until re-enabled or reloaded."""
        with self.lock:
            self.state, self.message = FAULT, f"control step: {err}"
        self.log.error(f"control step failed: {err!r}")

    # -- inputs ----------------------------------------------------------------------------------
    def receive(self, topic: str, msg: Any) -> None:
        """Take a sensor message of `topic` (points, image, joint_states or ee_pose).

        Decoded and handed on, or counted and dropped when malformed; ignored while no model is
        loaded or the model needs none.
        """
        controller = self.controller
        if controller is not None:
            self.inputs.receive(controller, topic, msg, self.config.trigger == "observation")

    # -- the step --------------------------------------------------------------------------------
    def step(self, now: float) -> control.TickResult | None:
        """Run one tick of the controller at `now` [s] (the clock of the message stamps).

        Returns None while no model is loaded or when the policy's output faulted.
        """
        with self.lock:
            controller = self.controller
        if controller is None:
            return None
        try:
            result = controller.tick(now)
        except PolicyOutputError as err:
            with self.lock:
                controller.set_fault(f"policy output: {err}")
                self.state, self.message = FAULT, str(err)
            self.log.error(f"{err}: fault; reload or re-enable after checking")
            return None
        with self.lock:
            self.state, self.message = result.state, result.message
        if result.state == FAULT and result.halt:
            self.log.error(result.message)
        return result

    def last_preprocess_time(self) -> float:
        """[s] the controller's newest observation assembly (0 while none is loaded)."""
        controller = self.controller
        return controller.counters.last_preprocess_time if controller is not None else 0.0

    def commanded(self) -> None:
        """Count a published command (the status's control rate counts them)."""
        self._command_times.append(time.monotonic())

    # -- status ----------------------------------------------------------------------------------
    def status(self, lifecycle: str, sim_time: bool) -> tuple[int, str, float]:
        """Return (state, message, commands per second) for lifecycle state `lifecycle`.

        `lifecycle` is one of unconfigured, inactive, active.
        """
        cutoff = time.monotonic() - RATE_WINDOW_S
        while self._command_times and self._command_times[0] < cutoff:
            self._command_times.popleft()
        if lifecycle == "active":
            self._watch_observations(sim_time)
        with self.lock:
            state, message = self.state, self.message
        if lifecycle == "inactive" and state != FAULT:
            state = DISABLED
            message = "model loaded, disabled: call ~/enable (or activate) to start commanding"
        elif lifecycle == "unconfigured":
            state = NO_CHECKPOINT
        return state, message, len(self._command_times) / RATE_WINDOW_S

    def _watch_observations(self, sim_time: bool) -> None:
        """Go HOLDING when observations stopped for stale_age_s of wall time.

        With `trigger: observation` or sim time (a stopped /clock) no step runs once the sensors
        or the simulator stop, so no command is sent; this makes the status say why. The plan is
        left to the step, which drops it on stale data.
        """
        last, cfg = self.inputs.last_observation_wall, self.config
        if last is None or (cfg.trigger != "observation" and not sim_time):
            return  # the timer runs on wall time, and its steps report staleness themselves
        silent = time.monotonic() - last
        if silent > cfg.stale_age_s:
            with self.lock:
                if self.state in (RUNNING, HOLDING):
                    self.state = HOLDING
                    self.message = (
                        f"no observation for {silent:.1f} s (wall clock; limit "
                        f"{cfg.stale_age_s} s): holding, no commands"
                    )
