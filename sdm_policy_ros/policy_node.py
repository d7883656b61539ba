# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`policy_node`: the SDM / diffusion policy as a managed ROS 2 node (`sdm_policy_node`).

Contract (ARCHITECTURE.md): subscribes `points` (sensor_msgs/PointCloud2) and `joint_states`
(sensor_msgs/JointState); publishes the robot profile's output — `joint_trajectory`
(trajectory_msgs/JointTrajectory), `joint_commands` (std_msgs/Float64MultiArray) or `ee_target`
(geometry_msgs/PoseStamped) — plus `action_chunk` (sdm_msgs/ActionChunk), `status`
(sdm_msgs/PolicyStatus) and `/diagnostics`; serves `~/enable` (std_srvs/SetBool), `~/reset`
(std_srvs/Trigger) and `~/load_checkpoint` (sdm_msgs/LoadCheckpoint). Parameters:
`policy_params.PolicyNodeParameters`.

Lifecycle (rclpy.lifecycle; `~/get_state`, `~/change_state`): configure loads the checkpoint
(`checkpoint` parameter or the last ~/load_checkpoint) and warms it up; inactive publishes no
commands; activate starts control; deactivate holds (no new targets); cleanup unloads; an
unexpected error in a transition goes through error processing to unconfigured. A transition
asked in the wrong state is refused (logged), the node stays up. `autostart`: auto (configure at
start when `checkpoint` is set, as before lifecycle; never activates), unconfigured, inactive or
active. `~/enable` drives the same transitions: true = configure if needed, then activate (and
clears a fault); false = deactivate.

This node is the ROS face of `sdm_policy_core.deploy`: the session decodes the sensor messages
(malformed ones are counted and dropped), runs the enable / hold / fault state machine and the
core's PolicyController (no command from stale or invalid observations, every target within the
profile's limits and `max_step` of the measured joints, a tracking fault when the arm does not
follow); the control loop steps at `control_rate_hz` on the steady clock, or on each new cloud
(`trigger: observation`, for simulators, with `observation_sync_s` to wait for the joint state of
the same step), in a thread of its own. What the node adds: the lifecycle, the services, the
messages (`policy_messages`), and status and /diagnostics on the steady clock, so they keep
reporting (HOLDING, "no observation for ... s") when /clock (`use_sim_time`) stops.
/diagnostics also says where the latency of the newest planned steps went (`latency_ms.<stage>`,
p50 / p99: `sdm_policy_core.deploy.timing`), and the node logs the breakdown at close. Lockstep
simulators want `sensor_qos: reliable` (a lost message stalls the loop); real sensors the default
best effort.

Clouds are placed in the base frame per `transform_source` (sdm_policy_ros.extrinsics): tf2
lookups at each cloud's stamp where tf2_ros is importable, else the profile's camera mount; a
cloud in a frame neither knows is rejected, never guessed. `backend`: `torch` (PolicyRuntime) or
`onnxruntime` (the graph `sdm export --format onnx` wrote; the process never imports torch). A
model that does not fit is refused at configure with what differs.

    policy_node --ros-args --params-file config/policy.yaml \
        -p checkpoint:=runs/sdm/checkpoints/latest -p robot:=generic_7dof
"""

from __future__ import annotations

import json
import sys

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sdm_msgs.msg import ActionChunk, PolicyStatus
from sdm_msgs.srv import LoadCheckpoint
from std_srvs.srv import SetBool, Trigger

from sdm_policy_core import control
from sdm_policy_core.config import ConfigError, to_dict
from sdm_policy_core.deploy.loop import ControlLoop
from sdm_policy_core.deploy.session import LOAD_ERRORS, ControlSession
from sdm_policy_core.robot import load_robot_profile
from sdm_policy_core.runtime_base import PolicyOutputError
from sdm_policy_ros import policy_messages as messages
from sdm_policy_ros.extrinsics import make_extrinsics
from sdm_policy_ros.params import (
    dataclass_from_parameters,
    declare_dataclass_parameters,
    validating_callback,
)
from sdm_policy_ros.policy_params import SENSOR_QOS, PolicyNodeParameters, profile_directory
from sdm_policy_ros.process import run_node, signals_deferred

NODE_NAME = "sdm_policy_node"
SWITCH_INTERVAL_S = 0.0005  # [s] see start()
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class PolicyNode(LifecycleNode):
    """Runs a policy from sdm_policy_core on the robot's sensor streams."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.config = declare_dataclass_parameters(self, PolicyNodeParameters)
        self.add_on_set_parameters_callback(validating_callback(self, PolicyNodeParameters))
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self.profile = load_robot_profile(self.config.robot, profile_directory())
        self._extrinsics = make_extrinsics(self, self.profile, self.config.transform_source)
        self.session = ControlSession(
            self.profile, self.config, self.get_logger(), self._extrinsics.cloud_to_base
        )
        self.session.checkpoint = self.config.checkpoint  # what configure loads
        self._load_error: Exception | None = None
        sensors, services = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        for topic, msg_type in messages.SENSOR_TYPES.items():
            self.create_subscription(
                msg_type,
                topic,
                lambda msg, topic=topic: self.session.receive(topic, msg),
                SENSOR_QOS[self.config.sensor_qos],
                callback_group=sensors,
            )
        # Command outputs are lifecycle publishers: they publish only while active.
        out = self.profile.output
        self._pub_out = self.create_lifecycle_publisher(messages.OUTPUT_TYPES[out], out, 10)
        self._pub_chunk = self.create_lifecycle_publisher(ActionChunk, "action_chunk", 10)
        self._status_pub = self.create_publisher(PolicyStatus, "status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for srv_type, name, callback in (
            (SetBool, "~/enable", self._on_enable),
            (Trigger, "~/reset", self._on_reset),
            (LoadCheckpoint, "~/load_checkpoint", self._on_load_checkpoint),
        ):
            self.create_service(srv_type, name, callback, callback_group=services)
        # The control step runs in a thread of its own (sdm_policy_core.deploy.loop), and every
        # callback is short, so one executor thread serves them all (main: rclpy's C++
        # EventsExecutor).
        self._loop = ControlLoop(
            self.session,
            now=lambda: self.get_clock().now().nanoseconds * 1e-9,
            build=self._messages,
            send=self._send,
            sync_s=lambda: self.config.observation_sync_s,
        )
        # Status runs on the steady clock: it keeps reporting when /clock (sim time) stops.
        self._status_group, self._steady_clock = services, Clock(clock_type=ClockType.STEADY_TIME)
        self._status_timer = self._make_status_timer()
        self._autostart(self.config.autostart)
        self.get_logger().info(
            f"started {'enabled' if self.lifecycle_state() == 'active' else 'disabled'} "
            f"(lifecycle {self.lifecycle_state()}), robot {self.profile.name!r} ({out}), clouds "
            f"placed by {self._extrinsics.source}, parameters "
            + json.dumps(to_dict(self.config), sort_keys=True)
        )

    # -- lifecycle --------------------------------------------------------------------------
    def lifecycle_state(self) -> str:
        """unconfigured, inactive, active or finalized (a transition state while one runs)."""
        return self._state_machine.current_state[1]

    def _autostart(self, mode: str) -> None:
        """Reach the `autostart` state; a checkpoint that cannot be loaded fails the start."""
        checkpoint = self.session.checkpoint
        if mode == "auto":
            mode = "inactive" if checkpoint else "unconfigured"
        if mode == "unconfigured":
            return
        if not checkpoint:
            raise ConfigError(f"autostart {mode} needs the checkpoint parameter")
        if self.trigger_configure() != SUCCESS:
            raise self._load_error or ConfigError(f"could not configure {checkpoint}")
        if mode == "active" and self.trigger_activate() != SUCCESS:
            raise ConfigError(f"could not activate: {self.session.message}")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and warm up the checkpoint (refused: stay unconfigured, the reason logged)."""
        self._load_error = None
        checkpoint = self.session.checkpoint
        if not checkpoint:
            self.session.refuse(
                "configure needs a checkpoint: set the checkpoint parameter or call "
                "~/load_checkpoint"
            )
            return FAILURE
        try:
            if self.session.controller is None:  # else ~/load_checkpoint has just loaded it
                self._load(checkpoint, self.config.sampler, self.config.ddim_steps)
        except LOAD_ERRORS as err:
            self._load_error = err
            self.session.refuse(f"configure refused {checkpoint}: {err}")
            return FAILURE
        except Exception as err:  # unforeseen: error processing (on_error) unloads
            self._load_error = err
            return TransitionCallbackReturn.ERROR
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.deactivate()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.unload("unloaded (cleanup)")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.session.unload("shut down")
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Handle an unexpected error in a transition: unload, log, back to unconfigured."""
        why = f"error in a transition from {state.label} ({self._load_error!r}): unloaded"
        self.get_logger().error(why + "; configure again to reload")
        self.session.unload(why)
        return SUCCESS

    # -- parameters, model ------------------------------------------------------------------
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self.config = dataclass_from_parameters(self, PolicyNodeParameters)
        names = {p.name for p in params}
        if "status_rate_hz" in names:
            self._status_timer.cancel()
            self.destroy_timer(self._status_timer)
            self._status_timer = self._make_status_timer()
        self.session.configure(self.config, names, self.config.sampler_seed)

    def _make_status_timer(self):
        return self.create_timer(
            1.0 / self.config.status_rate_hz,
            self._publish_status,
            callback_group=self._status_group,
            clock=self._steady_clock,
        )

    def _load(self, path: str, sampler: str, steps: int) -> str:
        """Load checkpoint `path` (disabled); raise (keeping the old one) if unfit."""
        if self.config.backend == "torch":
            # torch's import runs Python inside pybind11 callbacks: a signal's Shutdown raised
            # there aborts the process; it is raised once the import is done instead.
            with signals_deferred():
                import torch  # noqa: F401
        return self.session.load(path, sampler, steps, self.config.sampler_seed)

    # -- the control thread -----------------------------------------------------------------
    def start(self) -> None:
        """Start the control thread (sdm_policy_ros.process calls it once the node spins)."""
        # A woken thread waits for the GIL up to the switch interval (5 ms by default) while
        # another runs Python: the control step after the executor's callback, the inference's
        # Python between its ops while the executor takes the next message.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._loop.start()

    def close(self) -> None:
        """Stop the control thread and status timer, and log where the latency went.

        Stop the control thread and the status timer before the node and context go; log
        where the latency of the newest planned steps went (`sdm bench node` reads it).
        """
        self._status_timer.cancel()
        self._loop.stop()
        timing = self.session.timing.summary()
        if timing["steps"]:
            self.get_logger().info(
                f"pipeline latency of the last {timing['steps']} planned steps [ms]: "
                + json.dumps(timing, sort_keys=True)
            )

    def _messages(self, result: control.TickResult) -> list[tuple[str, object]]:
        """Return what a control step decided, as (topic, message) (from the control thread)."""
        stamp = self.get_clock().now().to_msg()
        dt = 1.0 / self.config.control_rate_hz
        return messages.step_msgs(self.profile, result, dt, self.config.on_fault, stamp)

    def _send(self, msgs: list[tuple[str, object]]) -> None:
        for topic, msg in msgs:
            (self._pub_chunk if topic == "action_chunk" else self._pub_out).publish(msg)

    # -- services ---------------------------------------------------------------------------
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response):
        """Enable or disable the policy by driving the lifecycle transitions.

        true: configure when needed, activate (or clear a fault while active); false:
        deactivate. Drives the lifecycle transitions, so both interfaces agree.
        """
        response.success, response.message = self._set_enabled(bool(request.data))
        self.get_logger().info(f"~/enable({request.data}): {response.message}")
        return response

    def _set_enabled(self, enable: bool) -> tuple[bool, str]:
        state = self.lifecycle_state()
        if not enable:
            if state == "active" and self.trigger_deactivate() != SUCCESS:
                return False, f"deactivate failed: {self.session.message}"
            return True, "disabled"
        if state == "unconfigured":
            if not self.session.checkpoint:
                return False, (
                    "cannot enable: no checkpoint loaded; load one first "
                    "(~/load_checkpoint or the checkpoint parameter)"
                )
            if self.trigger_configure() != SUCCESS:
                return False, f"cannot enable: {self.session.message}"
            state = self.lifecycle_state()
        if state == "inactive":
            if self.trigger_activate() != SUCCESS:
                return False, f"cannot enable: activate failed: {self.session.message}"
            return True, "enabled"
        if state == "active":
            self.session.rearm()  # clears a fault; a fresh plan
            return True, "enabled"
        return False, f"cannot enable in lifecycle state {state!r}"

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        self.session.reset()
        response.success = True
        response.message = "observation history and planned actions cleared"
        return response

    def _on_load_checkpoint(self, request, response):
        """Swap the checkpoint (refused: the old one keeps running); the node ends inactive."""
        sampler = request.sampler or self.config.sampler
        try:
            response.policy_id = self._load(
                request.path, sampler, request.steps or self.config.ddim_steps
            )
        except LOAD_ERRORS as err:
            response.success = False
            response.message = f"refused {request.path}: {err}"
            response.policy_id = self.session.policy_id
            self.get_logger().error(response.message)
            return response
        state = self.lifecycle_state()
        if state == "active":
            self.trigger_deactivate()
        elif state == "unconfigured":
            self.trigger_configure()  # the checkpoint just loaded: now configured
        response.success = self.lifecycle_state() == "inactive"
        response.message = (
            f"loaded {response.policy_id}; disabled until ~/enable"
            if response.success
            else f"loaded {response.policy_id}, but configure failed: {self.session.message}"
        )
        return response

    # -- status -----------------------------------------------------------------------------
    def _publish_status(self) -> None:
        now, lifecycle = self.get_clock().now(), self.lifecycle_state()
        sim_time = bool(self.get_parameter("use_sim_time").value)
        state, message, rate = self.session.status(lifecycle, sim_time)
        with self.session.lock:
            msg = messages.status_msg(
                now.to_msg(),
                state,
                message,
                lifecycle,
                self.session.policy_id,
                rate,
                self.session.controller,
                now.nanoseconds * 1e-9,
            )
        self._status_pub.publish(msg)
        extra = {
            "sampler": self.config.sampler,
            "transform_source": self._extrinsics.source,
            **messages.latency_values(self.session.timing.summary()),
        }
        self._diag_pub.publish(
            messages.diagnostics_msg(msg, self.get_fully_qualified_name(), extra)
        )


def main(args: list[str] | None = None) -> int:
    return run_node(
        NODE_NAME,
        PolicyNode,
        args=args,
        startup_errors=(ConfigError, PolicyOutputError, ValueError, ImportError),
        executor_factory=_events_executor,
    )


def _events_executor():
    """Return rclpy's EventsExecutor, which keeps the GIL free for the control step.

    rclpy's EventsExecutor: waits and dispatches in C++, where the SingleThreadedExecutor
    rebuilt its wait set in Python for every message, holding the GIL the control step needs
    (`sdm bench node`, BENCHMARKS.md: queueing p50 0.3 -> 0.0 ms, p99 2.0 -> 0.1 ms).
    """
    from rclpy.experimental import EventsExecutor

    return EventsExecutor()


if __name__ == "__main__":
    sys.exit(main())
