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
from pathlib import Path

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
from sdm_policy_core.deploy.loop import ControlLoop
from sdm_policy_core.deploy.session import LOAD_ERRORS, ControlSession
from sdm_policy_core.robot import RobotProfile, load_robot_profile
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
SENSORS = {
    "points": PointCloud2,
    "image": Image,
    "joint_states": JointState,
    "ee_pose": PoseStamped,
}
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

        self.session = ControlSession(
            self.profile, self.config, self.get_logger(), self._extrinsics.cloud_to_base
        )
        self.session.checkpoint = str(
            self.get_parameter("checkpoint").value
        )  # what configure loads
        self._load_error: Exception | None = None
        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._service_group = MutuallyExclusiveCallbackGroup()
        for topic, msg_type in SENSORS.items():
            self.create_subscription(
                msg_type,
                topic,
                lambda msg, topic=topic: self.session.receive(topic, msg),
                qos,
                callback_group=self._sensor_group,
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
        # The control step runs in a thread of its own (sdm_policy_core.deploy.loop), and every
        # callback is short, so one SingleThreadedExecutor serves them all.
        self._loop = ControlLoop(
            self.session,
            now=lambda: self.get_clock().now().nanoseconds * 1e-9,
            publish=self._publish,
            sync_s=lambda: float(self.get_parameter("observation_sync_s").value),
        )
        # Status runs on the steady clock: it keeps reporting when /clock (sim time) stops.
        self._steady_clock = Clock(clock_type=ClockType.STEADY_TIME)
        self._status_timer = self._make_status_timer()
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
        """An unexpected error in a transition: unload, log, back to unconfigured."""
        why = f"error in a transition from {state.label} ({self._load_error!r}): unloaded"
        self.get_logger().error(why + "; configure again to reload")
        self.session.unload(why)
        return SUCCESS

    # -- parameters -------------------------------------------------------------------------
    def _on_parameters_set(self, params: list[Parameter]) -> None:
        self.config = dataclass_from_parameters(self, DeploymentConfig)
        names = {p.name for p in params}
        if "status_rate_hz" in names:
            self._status_timer.cancel()
            self.destroy_timer(self._status_timer)
            self._status_timer = self._make_status_timer()
        self.session.configure(self.config, names, self._sampler_seed())

    def _make_status_timer(self):
        return self.create_timer(
            1.0 / self.config.status_rate_hz,
            self._publish_status,
            callback_group=self._service_group,
            clock=self._steady_clock,
        )

    # -- model ------------------------------------------------------------------------------
    def _load(self, path: str, sampler: str, steps: int) -> str:
        """Load checkpoint `path` (disabled); raise (keeping the old one) if unfit."""
        return self.session.load(path, sampler, steps, self._sampler_seed())

    def _sampler_seed(self) -> int:
        return int(self.get_parameter("sampler_seed").value)

    # -- the control thread -----------------------------------------------------------------
    def start(self) -> None:
        """Start the control thread (sdm_policy_ros.process calls it once the node spins)."""
        self._loop.start()

    def close(self) -> None:
        """Stop the control thread and the status timer before the node and context go."""
        self._status_timer.cancel()
        self._loop.stop()

    def _publish(self, result: control.TickResult) -> None:
        """What a control step decided, on the robot's topics."""
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
        if result.command is not None:
            stamp = self.get_clock().now().to_msg()
            self._pub_out.publish(
                messages.command_msg(p, result.command, result.trajectory, dt, stamp)
            )

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
        clock = self.get_clock().now()
        lifecycle = self.lifecycle_state()
        sim_time = bool(self.get_parameter("use_sim_time").value)
        state, message, rate = self.session.status(lifecycle, sim_time)
        with self.session.lock:
            msg = messages.status_msg(
                clock.to_msg(),
                state,
                message,
                lifecycle,
                self.session.policy_id,
                rate,
                self.session.controller,
                clock.nanoseconds * 1e-9,
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
