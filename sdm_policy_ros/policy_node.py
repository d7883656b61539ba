"""`policy_node`: the SDM / diffusion policy as a managed ROS 2 node (`sdm_policy_node`).

Contract (ARCHITECTURE.md): subscribes `points` (sensor_msgs/PointCloud2) and `joint_states`
(sensor_msgs/JointState); publishes the robot profile's output — `joint_trajectory`
(trajectory_msgs/JointTrajectory), `joint_commands` (std_msgs/Float64MultiArray) or `ee_target`
(geometry_msgs/PoseStamped) — plus `action_chunk` (sdm_msgs/ActionChunk), `status`
(sdm_msgs/PolicyStatus) and `/diagnostics`; serves `~/enable` (std_srvs/SetBool), `~/reset`
(std_srvs/Trigger) and `~/load_checkpoint` (sdm_msgs/LoadCheckpoint).

Lifecycle (rclpy.lifecycle; `~/get_state`, `~/change_state`): configure loads the checkpoint
(`checkpoint` parameter or the last ~/load_checkpoint) and warms it up; inactive publishes no
commands; activate starts control; deactivate holds (no new targets); cleanup unloads; an
unexpected error in a transition goes through error processing to unconfigured. A transition
asked in the wrong state is refused (logged), the node stays up. `autostart`: auto (configure at
start when `checkpoint` is set, as before lifecycle; never activates), unconfigured, inactive or
active. `~/enable` drives the same transitions: true = configure if needed, then activate (and
clears a fault); false = deactivate.

Sensor callbacks only decode and cache the newest message (malformed ones are counted and
dropped); the control step runs at `control_rate_hz` on the steady clock (or on each new cloud,
`trigger: observation`, the mode for simulators) in a thread of its own, outside the executor,
and calls the core's PolicyController: no command from stale or invalid observations, every
target within the profile's limits and `max_step` of the measured joints, a tracking fault when
the arm does not follow (nothing more until re-enabled).

With simulators (`use_sim_time`, e.g. sim_bridge_node): `trigger: observation` acts once per
simulated step; `observation_sync_s` makes it wait for the joint state of the same step (clouds
and states travel on separate topics); `sampler_seed` seeds the sampler's noise (set it again to
re-seed, as `sdm sim-eval` does per evaluation seed). Status and /diagnostics run on the steady
clock, so they keep reporting (HOLDING, "no observation for ... s") when /clock stops.
A cloud already acted on is not acted on again when it comes back (same stamp): a lockstep
simulator resends its observation until a command arrives. Lockstep simulators want
`sensor_qos: reliable` (a lost message stalls the loop); real sensors the default best effort.

Clouds are placed in the base frame per `transform_source` (sdm_policy_ros.extrinsics): tf2
lookups at each cloud's stamp where tf2_ros is importable, else the profile's camera mount; a
cloud in a frame neither knows is rejected, never guessed.

`backend`: `torch` runs the checkpoint with PyTorch (PolicyRuntime); `onnxruntime` runs the
graph `sdm export --format onnx` wrote (a .onnx with its .onnx.json sidecar, or a checkpoint
directory holding one) with OnnxPolicyRuntime, and the process never imports torch (each runtime
is imported when a model is loaded). A model that does not fit is refused at configure with
what differs.

    policy_node --ros-args --params-file config/policy.yaml \
        -p checkpoint:=runs/sdm/checkpoints/latest -p robot:=generic_7dof
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sdm_msgs.msg import ActionChunk, PolicyStatus
from sdm_msgs.srv import LoadCheckpoint
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from sdm_policy_core import control
from sdm_policy_core.config import ConfigError, DeploymentConfig, to_dict
from sdm_policy_core.conversions import (
    ConversionError,
    image_to_rgb,
    joint_state_to_array,
    pointcloud2_to_array,
    pose_to_vector,
    stamp_to_seconds,
)
from sdm_policy_core.robot import RobotProfile, StateAssembler, load_robot_profile
from sdm_policy_core.runtime_base import PolicyOutputError
from sdm_policy_ros import policy_messages as messages
from sdm_policy_ros.extrinsics import make_extrinsics
from sdm_policy_ros.params import (
    dataclass_from_parameters,
    declare_dataclass_parameters,
    validating_callback,
)
from sdm_policy_ros.process import run_node

NODE_NAME = "sdm_policy_node"
SENSOR_QOS = {
    "sensor_data": qos_profile_sensor_data,
    "reliable": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
}
AUTOSTART = ("auto", "unconfigured", "inactive", "active")
# Errors of a checkpoint that cannot be used here: the load is refused, the node carries on.
# (checkpoint.CheckpointError and onnx_runtime.OnnxModelError are ValueErrors; importing
# sdm_policy_core.checkpoint would import torch; ImportError: onnxruntime not installed.)
LOAD_ERRORS = (ConfigError, ValueError, OSError, PolicyOutputError, ImportError)
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def _profile_directory() -> Path | None:
    """config/robots of the installed package (None: the core's source-tree default)."""
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory("sdm_policy_ros")) / "config" / "robots"
        return share if share.is_dir() else None
    except Exception:  # not installed with colcon: use the source tree
        return None


class PolicyNode(LifecycleNode):
    """Runs a PolicyRuntime from sdm_policy_core on the robot's sensor streams."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self.config: DeploymentConfig = declare_dataclass_parameters(self, DeploymentConfig)
        self.declare_parameter(
            "robot",
            "generic_7dof",
            ParameterDescriptor(
                description="robot profile: a name in config/robots or a YAML path", read_only=True
            ),
        )
        self.declare_parameter(
            "checkpoint",
            "",
            ParameterDescriptor(
                description="checkpoint directory that configure loads (with autostart auto: "
                "at start); empty: load later with ~/load_checkpoint",
                read_only=True,
            ),
        )
        self.declare_parameter(
            "autostart",
            "auto",
            ParameterDescriptor(
                description="lifecycle state reached at start: auto (inactive when checkpoint is "
                "set, else unconfigured), unconfigured, inactive (loaded, no commands) or active "
                "(commands as soon as fresh data arrive: only where the robot may move at once)",
                read_only=True,
                dynamic_typing=True,  # `autostart:=true` gets the error below, not a traceback
            ),
        )
        self.declare_parameter(
            "sampler_seed",
            0,
            ParameterDescriptor(
                description="seed of the sampler's noise generator; applied at every checkpoint "
                "load and whenever this parameter is set (sim-eval sets it per evaluation seed, "
                "as sdm eval does)"
            ),
        )
        self.declare_parameter(
            "observation_sync_s",
            0.0,
            ParameterDescriptor(
                description="[s] trigger: observation: wait up to this long (wall time) for a "
                "joint state stamped at or after the cloud before acting, so that cloud and "
                "state of one step form the observation; 0: act on the newest state at once",
                dynamic_typing=True,
            ),
        )
        self.declare_parameter(
            "transform_source",
            "auto",
            ParameterDescriptor(
                description="where clouds are placed in the base frame: tf (tf2_ros lookups at "
                "each cloud's stamp), profile (the robot profile's camera mount), auto (tf when "
                "tf2_ros is importable, else profile)",
                read_only=True,
            ),
        )
        self.declare_parameter(
            "sensor_qos",
            "sensor_data",
            ParameterDescriptor(
                description="QoS of the sensor subscriptions: sensor_data (best effort, depth 5: "
                "real sensors) or reliable (depth 10: lockstep simulators, where a lost message "
                "stalls the loop)",
                read_only=True,
            ),
        )
        self.add_on_set_parameters_callback(validating_callback(self, DeploymentConfig))
        self.add_post_set_parameters_callback(self._on_parameters_set)
        self.profile: RobotProfile = load_robot_profile(
            self.get_parameter("robot").value, _profile_directory()
        )
        self._extrinsics = make_extrinsics(
            self, self.profile, str(self.get_parameter("transform_source").value)
        )
        sensor_qos = str(self.get_parameter("sensor_qos").value)
        if sensor_qos not in SENSOR_QOS:
            raise ConfigError(f"sensor_qos must be one of {list(SENSOR_QOS)}, got {sensor_qos!r}")
        qos = SENSOR_QOS[sensor_qos]

        autostart = self.get_parameter("autostart").value
        if autostart not in AUTOSTART:
            raise ConfigError(f"autostart must be one of {list(AUTOSTART)}, got {autostart!r}")

        self._assembler = StateAssembler(self.profile)
        self._lock = threading.RLock()
        self._controller: control.PolicyController | None = None
        self._checkpoint = str(self.get_parameter("checkpoint").value)  # what configure loads
        self._load_error: Exception | None = None
        self._policy_id = ""
        self._state, self._message = PolicyStatus.STATE_NO_CHECKPOINT, "no checkpoint loaded"
        self._command_times: list[float] = []
        self._last_status_log = 0.0
        # The control step runs in its own thread, and every callback is short, so one
        # SingleThreadedExecutor serves them all. Measured with 1024-point clouds at 30 Hz on 2
        # cores: with the step inside a MultiThreadedExecutor, a DDIM-10 chunk took 1-5 s
        # (executor threads competing with the inference for the GIL and the cores); this way
        # it takes ~75 ms, the one-step chunk ~9 ms (`sdm bench node`).
        self._wake = threading.Event()
        self._stop_control = threading.Event()
        self._trigger_stamp = -1.0
        self._acted_stamp = -1.0  # trigger: observation: the cloud stamp of the last step
        # trigger: observation with observation_sync_s: the control thread waits for the state.
        self._state_stamp = -1.0
        self._state_arrived = threading.Condition()
        # Wall time of the newest accepted observation: with sim time or observation triggers
        # no tick runs when the data stop, so the status timer (steady clock) reports it.
        self._last_observation_wall: float | None = None

        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        for msg_type, topic, callback in (
            (PointCloud2, "points", self._on_cloud),
            (Image, "image", self._on_image),
            (JointState, "joint_states", self._on_joint_state),
            (PoseStamped, "ee_pose", self._on_ee_pose),
        ):
            self.create_subscription(
                msg_type, topic, callback, qos, callback_group=self._sensor_group
            )
        # Command outputs are lifecycle publishers: they publish only while active.
        out = self.profile.output
        self._pub_out = self.create_lifecycle_publisher(messages.OUTPUT_TYPES[out], out, 10)
        self._pub_chunk = self.create_lifecycle_publisher(ActionChunk, "action_chunk", 10)
        self._status_pub = self.create_publisher(PolicyStatus, "status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(
            SetBool, "~/enable", self._on_enable, callback_group=self._service_group
        )
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=self._service_group)
        self.create_service(
            LoadCheckpoint,
            "~/load_checkpoint",
            self._on_load_checkpoint,
            callback_group=self._service_group,
        )
        self._control_thread = threading.Thread(
            target=self._control_loop, name="sdm_control", daemon=True
        )
        # Status runs on the steady clock: it keeps reporting when /clock (sim time) stops.
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        self._status_timer = self.create_timer(
            1.0 / self.config.status_rate_hz,
            self._publish_status,
            callback_group=self._service_group,
            clock=self._steady_clock,
        )
        self._autostart(autostart)
        active = self.lifecycle_state() == "active"
        self.get_logger().info(
            f"started {'enabled' if active else 'disabled'} (lifecycle "
            f"{self.lifecycle_state()}), robot {self.profile.name!r} ({out}), clouds placed by "
            f"{self._extrinsics.source}, parameters "
            + json.dumps(to_dict(self.config), sort_keys=True)
        )

    # -- lifecycle --------------------------------------------------------------------------
    def lifecycle_state(self) -> str:
        """unconfigured, inactive, active or finalized (a transition state while one runs)."""
        return self._state_machine.current_state[1]

    def _autostart(self, mode: str) -> None:
        """Reach the `autostart` state; a checkpoint that cannot be loaded fails the start."""
        if mode == "auto":
            mode = "inactive" if self._checkpoint else "unconfigured"
        if mode == "unconfigured":
            return
        if not self._checkpoint:
            raise ConfigError(f"autostart {mode} needs the checkpoint parameter")
        if self.trigger_configure() != SUCCESS:
            raise self._load_error or ConfigError(f"could not configure {self._checkpoint}")
        if mode == "active" and self.trigger_activate() != SUCCESS:
            raise ConfigError(f"could not activate: {self._message}")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and warm up the checkpoint (refused: stay unconfigured, the reason logged)."""
        self._load_error = None
        if not self._checkpoint:
            self._refuse(
                "configure needs a checkpoint: set the checkpoint parameter or call "
                "~/load_checkpoint"
            )
            return FAILURE
        try:
            if self._controller is None:  # else ~/load_checkpoint has just loaded it
                self._load(self._checkpoint, self.config.sampler, self.config.ddim_steps)
        except LOAD_ERRORS as err:
            self._load_error = err
            self._refuse(f"configure refused {self._checkpoint}: {err}")
            return FAILURE
        except Exception as err:  # unforeseen: error processing (on_error) unloads
            self._load_error = err
            return TransitionCallbackReturn.ERROR
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start control: a fresh history and plan (never one made before the hand-over)."""
        with self._lock:
            self._controller.set_enabled(True)
            self._state, self._message = PolicyStatus.STATE_WAITING_FOR_DATA, "activated"
        with self._state_arrived:
            self._state_stamp = -1.0  # sim time may restart (a new simulator)
        self._acted_stamp = -1.0
        self.get_logger().info("activated: commanding from fresh observations")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Hold: no new targets (the robot's controller keeps the last one)."""
        with self._lock:
            self._controller.set_enabled(False)
            self._state, self._message = PolicyStatus.STATE_DISABLED, "deactivated"
        self.get_logger().info("deactivated: no new targets")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload("unloaded (cleanup)")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload("shut down")
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """An unexpected error in a transition: unload, log, back to unconfigured."""
        why = f"error in a transition from {state.label} ({self._load_error!r}): unloaded"
        self.get_logger().error(why + "; configure again to reload")
        self._unload(why)
        return SUCCESS

    def _unload(self, why: str) -> None:
        with self._lock:
            if self._controller is not None:
                self._controller.set_enabled(False)
            self._controller = None
            self._policy_id = ""
            self._state, self._message = PolicyStatus.STATE_NO_CHECKPOINT, why

    def _refuse(self, reason: str) -> None:
        self.get_logger().error(reason)
        with self._lock:
            self._message = reason

    # -- parameters -------------------------------------------------------------------------
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self.config = dataclass_from_parameters(self, DeploymentConfig)
        names = {p.name for p in params}
        if "status_rate_hz" in names:
            self._status_timer.cancel()
            self.destroy_timer(self._status_timer)
            self._status_timer = self.create_timer(
                1.0 / self.config.status_rate_hz,
                self._publish_status,
                callback_group=self._service_group,
                clock=self._steady_clock,
            )
        if "sampler_seed" in names:
            with self._lock:
                if self._controller is not None:
                    self._controller.runtime.generator.manual_seed(self._sampler_seed())
        with self._lock:
            if self._controller is not None:
                self._controller.cfg = self.config
                if names & {"sampler", "ddim_steps"}:
                    try:
                        self._controller.runtime.set_sampler(
                            self.config.sampler, self.config.ddim_steps
                        )
                    except ValueError as err:
                        self.get_logger().error(f"sampler not changed: {err}")

    # -- model ------------------------------------------------------------------------------
    def _load(self, path: str, sampler: str, steps: int) -> str:
        """Build a controller for checkpoint `path`; raise (keeping the old one) if unfit."""
        self.get_logger().info(f"loading {path} ({self.config.backend})")
        options = {}
        if self.config.backend == "onnxruntime":  # its noise is numpy's default_rng(seed)
            from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime as Runtime
        else:
            from sdm_policy_core.runtime import PolicyRuntime as Runtime

            options["noise"] = self.config.sampler_noise
        runtime = Runtime(
            path,
            sampler=sampler or None,
            steps=steps or None,
            threads=self.config.torch_threads,
            seed=self._sampler_seed(),
            **options,
        )
        controller = control.PolicyController(runtime, self.profile, self.config)
        with self._lock:
            if self._controller is not None:
                self._controller.set_enabled(False)
            self._controller = controller  # disabled: it never inherits the old one's permission
            self._checkpoint = path
            self._policy_id = runtime.policy_id
            self._state, self._message = PolicyStatus.STATE_DISABLED, "model loaded, disabled"
        self.get_logger().info(
            f"loaded {runtime.policy_id} ({runtime.kind}, sampler "
            f"{runtime.sampler} x{runtime.steps}) from {path}"
        )
        return runtime.policy_id

    def _sampler_seed(self) -> int:
        return int(self.get_parameter("sampler_seed").value)

    # -- sensor callbacks: decode, validate, cache ------------------------------------------
    def _decoded(self, controller, msg, what: str, decode) -> tuple[object, float] | None:
        """(decode(msg), stamp [s]); a malformed message is counted, logged (throttled) and
        dropped: None."""
        try:
            stamp = stamp_to_seconds(msg.header.stamp)
            if stamp <= 0:
                raise ConversionError("header.stamp is zero")
            return decode(msg), stamp
        except (ConversionError, ValueError) as err:
            controller.reject(what, str(err))
            self._throttled_warning(f"rejected {type(msg).__name__}: {err}")
            return None

    def _on_cloud(self, msg: PointCloud2) -> None:
        controller = self._controller
        if controller is None or not controller.uses_cloud:
            return

        def decode(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
            to_base = self._extrinsics.cloud_to_base(msg.header.frame_id, msg.header.stamp)
            points = pointcloud2_to_array(msg, channels=controller.channels)
            points = points[np.isfinite(points).all(axis=1)]
            if len(points) == 0:
                raise ConversionError("no finite points")
            return points, to_base

        if (got := self._decoded(controller, msg, "cloud", decode)) is None:
            return
        (points, to_base), stamp = got
        controller.update_cloud(points, stamp, to_base)
        self._last_observation_wall = time.monotonic()
        if self.config.trigger == "observation":
            self._trigger_stamp = stamp
            self._wake.set()

    def _on_image(self, msg: Image) -> None:
        controller = self._controller
        if controller is None or not controller.uses_image:
            return
        if (got := self._decoded(controller, msg, "image", image_to_rgb)) is not None:
            controller.update_image(*got)
            self._last_observation_wall = time.monotonic()

    def _on_joint_state(self, msg: JointState) -> None:
        controller = self._controller
        if controller is None or not self._assembler.needs_joints:
            return

        def decode(msg: JointState) -> np.ndarray:
            return joint_state_to_array(msg, self._assembler.joint_names)

        if (got := self._decoded(controller, msg, "state", decode)) is not None:
            self._assembler.update_joints(*got)
            self._forward_state(controller)

    def _on_ee_pose(self, msg: PoseStamped) -> None:
        controller = self._controller
        if controller is None or not self._assembler.needs_pose:
            return
        if (got := self._decoded(controller, msg, "state", pose_to_vector)) is not None:
            self._assembler.update_pose(*got)
            self._forward_state(controller)

    def _forward_state(self, controller) -> None:
        assembled = self._assembler.assemble()
        if assembled is not None:  # every source of agent_pos has arrived
            controller.update_state(*assembled)
            with self._state_arrived:
                self._state_stamp = assembled[1]
                self._state_arrived.notify_all()
            if not (controller.uses_cloud or controller.uses_image):
                # A state-only policy: the state is its observation (and its trigger).
                self._last_observation_wall = time.monotonic()
                if self.config.trigger == "observation":
                    self._trigger_stamp = assembled[1]
                    self._wake.set()

    # -- the control thread -----------------------------------------------------------------
    def start(self) -> None:
        """Start the control thread (sdm_policy_ros.process calls it once the node spins)."""
        self._control_thread.start()

    def close(self) -> None:
        """Stop the control thread and the status timer before the node and context go."""
        self._stop_control.set()
        self._wake.set()
        self._status_timer.cancel()
        if self._control_thread.is_alive():
            self._control_thread.join(timeout=5.0)

    def _control_loop(self) -> None:
        """trigger timer: a step every 1/control_rate_hz s (steady clock; a late step is not
        repeated); trigger observation: a step per new cloud (after its joint state when
        observation_sync_s > 0)."""
        next_time = time.monotonic()
        while not self._stop_control.is_set():
            if self.config.trigger == "observation":
                if not self._wake.wait(timeout=0.1):
                    continue
                self._wake.clear()
                if self._stop_control.is_set():
                    break
                stamp = self._trigger_stamp
                if stamp == self._acted_stamp:
                    continue  # a cloud already acted on, again (a lockstep simulator resends)
                sync_s = float(self.get_parameter("observation_sync_s").value)
                if sync_s > 0 and self._assembler.needs_joints:
                    with self._state_arrived:
                        self._state_arrived.wait_for(
                            lambda s=stamp: self._state_stamp >= s, sync_s
                        )
            else:
                next_time += 1.0 / self.config.control_rate_hz
                delay = next_time - time.monotonic()
                if delay > 0:
                    if self._stop_control.wait(delay):
                        break
                else:
                    next_time = time.monotonic()  # fell behind: no burst of late steps
            try:
                if self._control_step() and self.config.trigger == "observation":
                    self._acted_stamp = stamp
            except Exception as err:  # the loop must survive anything a step raises
                with self._lock:
                    self._state, self._message = PolicyStatus.STATE_FAULT, f"control step: {err}"
                self.get_logger().error(f"control step failed: {err!r}")

    def _throttled_warning(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_status_log > 2.0:
            self._last_status_log = now
            self.get_logger().warning(text)

    # -- control ----------------------------------------------------------------------------
    def _control_step(self) -> bool:
        """One tick of the controller; True when it published a command."""
        with self._lock:
            controller = self._controller
        if controller is None:
            return False
        now = self.get_clock().now().nanoseconds * 1e-9
        try:
            result = controller.tick(now)
        except PolicyOutputError as err:
            with self._lock:
                controller.set_fault(f"policy output: {err}")
                self._state, self._message = PolicyStatus.STATE_FAULT, str(err)
            self.get_logger().error(f"{err}: fault; reload or re-enable after checking")
            return False
        with self._lock:
            self._state, self._message = result.state, result.message
        if result.state == control.FAULT and result.halt:
            self.get_logger().error(result.message)
        if self._stop_control.is_set():
            return False  # closing: the publishers are about to go with the node
        dt, p = 1.0 / self.config.control_rate_hz, self.profile
        if result.halt and self.config.on_fault == "stop" and p.output == "joint_trajectory":
            # An empty trajectory makes joint_trajectory_controller stop where it is.
            self._pub_out.publish(JointTrajectory())
        if result.chunk is not None:
            self._pub_chunk.publish(
                messages.action_chunk_msg(
                    result.chunk, result.obs_stamp, p.action_names, p.base_frame, dt
                )
            )
        if result.command is None:
            return False
        stamp = self.get_clock().now().to_msg()
        self._pub_out.publish(
            messages.command_msg(p, result.command, result.trajectory, dt, stamp)
        )
        self._command_times.append(time.monotonic())
        return True

    # -- services ---------------------------------------------------------------------------
    def _on_enable(self, request: SetBool.Request, response: SetBool.Response):
        """true: configure when needed, activate (or clear a fault while active); false:
        deactivate. Drives the lifecycle transitions, so both interfaces agree."""
        response.success, response.message = self._set_enabled(bool(request.data))
        self.get_logger().info(f"~/enable({request.data}): {response.message}")
        return response

    def _set_enabled(self, enable: bool) -> tuple[bool, str]:
        state = self.lifecycle_state()
        if not enable:
            if state == "active" and self.trigger_deactivate() != SUCCESS:
                return False, f"deactivate failed: {self._message}"
            return True, "disabled"
        if state == "unconfigured":
            if not self._checkpoint:
                return False, (
                    "cannot enable: no checkpoint loaded; load one first "
                    "(~/load_checkpoint or the checkpoint parameter)"
                )
            if self.trigger_configure() != SUCCESS:
                return False, f"cannot enable: {self._message}"
            state = self.lifecycle_state()
        if state == "inactive":
            if self.trigger_activate() != SUCCESS:
                return False, f"cannot enable: activate failed: {self._message}"
            return True, "enabled"
        if state == "active":
            with self._lock:
                self._controller.set_enabled(True)  # clears a fault; a fresh plan
            with self._state_arrived:
                self._state_stamp = -1.0
            self._acted_stamp = -1.0
            return True, "enabled"
        return False, f"cannot enable in lifecycle state {state!r}"

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            if self._controller is not None:
                self._controller.reset()
        with self._state_arrived:
            self._state_stamp = -1.0
        self._acted_stamp = -1.0
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
            response.policy_id = self._policy_id
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
            else f"loaded {response.policy_id}, but configure failed: {self._message}"
        )
        return response

    # -- status -----------------------------------------------------------------------------
    def _watch_observations(self) -> None:
        """Report HOLDING when observations stopped for stale_age_s of wall time.

        With `trigger: observation` or sim time (`use_sim_time`, a stopped /clock) no control
        tick runs once the sensors or the simulator stop, so no command is sent; this makes the
        status say why. The plan is left to the tick, which drops it on stale data.
        """
        last = self._last_observation_wall
        sim_time = bool(self.get_parameter("use_sim_time").value)
        if last is None or self.lifecycle_state() != "active":
            return
        if self.config.trigger != "observation" and not sim_time:
            return  # the control timer runs on wall time and reports staleness itself
        silent = time.monotonic() - last
        if silent > self.config.stale_age_s:
            with self._lock:
                if self._state in (PolicyStatus.STATE_RUNNING, PolicyStatus.STATE_HOLDING):
                    self._state = PolicyStatus.STATE_HOLDING
                    self._message = (
                        f"no observation for {silent:.1f} s (wall clock; limit "
                        f"{self.config.stale_age_s} s): holding, no commands"
                    )

    def _publish_status(self) -> None:
        now_msg = self.get_clock().now().to_msg()
        now = self.get_clock().now().nanoseconds * 1e-9
        window = 2.0
        cutoff = time.monotonic() - window
        self._command_times = [t for t in self._command_times if t >= cutoff]
        self._watch_observations()
        lifecycle = self.lifecycle_state()
        with self._lock:
            state, message = self._state, self._message
            if lifecycle == "inactive" and state != PolicyStatus.STATE_FAULT:
                state = PolicyStatus.STATE_DISABLED
                message = "model loaded, disabled: call ~/enable (or activate) to start commanding"
            elif lifecycle == "unconfigured":
                state = PolicyStatus.STATE_NO_CHECKPOINT
            msg = messages.status_msg(
                now_msg,
                state,
                message,
                lifecycle,
                self._policy_id,
                len(self._command_times) / window,
                self._controller,
                now,
            )
        self._status_pub.publish(msg)
        extra = {"sampler": self.config.sampler, "transform_source": self._extrinsics.source}
        self._diag_pub.publish(
            messages.diagnostics_msg(msg, self.get_fully_qualified_name(), extra)
        )


def main(args: list[str] | None = None) -> int:
    return run_node(
        NODE_NAME,
        PolicyNode,
        args=args,
        startup_errors=(ConfigError, PolicyOutputError, ValueError, ImportError),
    )


if __name__ == "__main__":
    sys.exit(main())
