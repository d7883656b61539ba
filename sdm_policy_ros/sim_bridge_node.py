# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sim_bridge_node`: the embedded simulator as a ROS 2 robot (`sim_bridge`).

`sim_bridge_node`: the embedded simulator as a ROS 2 robot (`sim_bridge`): MetaWorld on
MuJoCo, or a task of the evaluation registry that can be served (obstacle-2d, obstacle-2d-cue:
a point mass, agent_pos only; sdm_policy_core.sim.episode.served_task lists them).

It speaks the robot side of the contract in ARCHITECTURE.md, so the policy node, a teleoperator
and a recorder cannot tell it from a real arm:

Publishes (all stamped with simulation time, frame `frame_id`, default `world`):
- `/clock` (rosgraph_msgs/Clock): simulation time; run the other nodes with use_sim_time:=true.
  Published before the observations of every step, and at `control_rate_hz` while idle.
  Order per step: /clock, episode_status, joint_states, image, points, expert_observation.
- `points` (sensor_msgs/PointCloud2, MetaWorld only): (num_points, 3) float32 xyz [m] in the
  world frame
  (+ rgb with `cloud_channels` 6),
  already cropped to the workspace and farthest-point sampled (DP3's MetaWorld observation).
- `image` (sensor_msgs/Image, rgb8): MetaWorld only, when `image_size` > 0.
- `joint_states` (sensor_msgs/JointState): agent_pos as positions [m] under the names
  hand_{x,y,z}, right_finger_{x,y,z}, left_finger_{x,y,z} (config/robots/metaworld_sim.yaml);
  obstacle-2d: x, y (config/robots/obstacle_2d.yaml; obstacle-2d-cue adds side, ±1).
- `episode_status` (sdm_msgs/EpisodeStatus, reliable, transient local): on every reset and
  step, before that step's observations, and at 1 Hz while idle.
- `~/expert_observation` (std_msgs/Float64MultiArray): MetaWorld's (39,) state vector of the
  step (what the scripted experts act on, see expert_teleop_node); layout.dim[0].label is the
  task name, dim[0].size 39. MetaWorld only, with `publish_expert_observation`.

Subscribes `joint_commands` (std_msgs/Float64MultiArray): MetaWorld's action (dx, dy, dz, grip)
in [-1, 1] (hand displacement in cm per step, gripper effort); obstacle-2d's (vx, vy) in
[-1, 1] (5 cm per step at full command). Malformed commands are counted and dropped.

Stepping (`step_mode`):
- `lockstep` (default): the simulator advances one control step per received command, as fast
  as commands come (Gazebo's lockstep, Isaac Sim's step-on-demand): a slow policy slows the
  simulation instead of missing steps, which is what makes a ROS evaluation reproduce the
  in-process `sdm eval`. When no command arrives within `command_timeout_s` (wall time), the
  robot holds: a zero-command step (MetaWorld: gripper effort unchanged) every control period until
  commands come back; held steps count towards `max_episode_steps`. Before that, every
  `observation_resend_s` without a command the newest observation (joint states, image, cloud:
  the same messages, same stamps) is published again, so a subscriber that matched late or lost
  it (best-effort QoS) still gets the step; the policy node does not act twice on one stamp.
  The expert observation has no stamp to tell a repeat from a new step and is not resent.
- `realtime`: a wall-clock timer steps at `control_rate_hz` with the newest command received
  since the last step, or holds when none arrived.
After each step the new observation is published; after the step that ends the episode only
the final `episode_status` (done) is, and the robot waits for the next reset.

Episodes end on success (held on `stop_on_success` steps; 0 = never end early), at
`max_episode_steps`, on a terminal failure of the task (obstacle-2d: a collision, reason
`failed`), on `~/end_episode`, or on a new reset. Services:
- `~/reset_episode` (sdm_msgs/ResetEpisode): task (empty: keep) + seed -> success, message,
  episode_id. An unknown task is refused with the list of valid ones, and so is a task of
  another family than the bridge's (MetaWorld tasks switch among themselves only).
- `~/end_episode` (std_srvs/Trigger): end the running episode now (reason `ended`).
- `~/report_success` (std_srvs/Trigger): success = the current or last episode succeeded;
  message = that episode as JSON (episode_id, task, seed, step, done, success, end_reason,
  first_success_step, held_steps, commanded_steps, resent_observations, reward, wall_s,
  achieved_hz,
  command_latency_ms {p50, p99, mean, n} and every value in command_latencies_ms: wall time
  from publishing an observation to receiving the next command, rejected_commands).

    sim_bridge_node --ros-args -p task:=button-press-v3 -p seed:=3 -p control_rate_hz:=10.0
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock as ClockMsg
from sdm_msgs.msg import EpisodeStatus
from sdm_msgs.srv import ResetEpisode
from sensor_msgs.msg import Image, JointState, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger

from sdm_policy_core.config import ConfigError
from sdm_policy_core.conversions import fill_image, fill_pointcloud2
from sdm_policy_core.keys import (
    AGENT_POS,
    IMAGE,
    POINT_CLOUD,
    TOPIC_EPISODE_STATUS,
    TOPIC_IMAGE,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)
from sdm_policy_core.sim.episode import FULL_STATE_DIM, EpisodeRunner, served_task
from sdm_policy_core.sim.metaworld_env import SimulatorError, UnknownTaskError
from sdm_policy_ros.params import declare_dataclass_parameters, parameter
from sdm_policy_ros.process import run_node

NODE_NAME = "sim_bridge"
STEP_MODES = ("lockstep", "realtime")

# Observations and commands: reliable, so that a lockstep loop never waits on a lost message
# (best-effort subscribers such as the policy node's sensor QoS are compatible).
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# The newest episode status reaches late joiners (a driver that starts after the bridge).
LATCHED = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


@dataclass
class SimBridgeParameters:
    """The node's parameters (all read-only: set at start), declared by sdm_policy_ros.params."""

    task: str = parameter(
        "button-press-v3", "task of the first episode: MetaWorld v3, or obstacle-2d(-cue)"
    )
    seed: int = parameter(0, "reset seed of the episode started at launch (start_episode)")
    start_episode: bool = parameter(
        True, "start an episode at launch; false: wait for ~/reset_episode"
    )
    num_points: int = parameter(
        512, "MetaWorld: points per published cloud (farthest point sampling)"
    )
    cloud_channels: int = parameter(
        3, "MetaWorld: 3 xyz clouds; 6 xyz + rgb (float32 r, g, b in [0, 1])"
    )
    image_size: int = parameter(
        0, "[px] MetaWorld: side of the published RGB image; 0: no image topic"
    )
    max_episode_steps: int = parameter(
        0,
        "control steps before an episode ends unsuccessfully; 0: the task's own (MetaWorld "
        "200, obstacle-2d 60)",
    )
    stop_on_success: int = parameter(
        1, "end an episode after this many success steps; 0: never early"
    )
    control_rate_hz: float = parameter(
        10.0, "[Hz] control rate: simulated seconds per step = 1 / rate"
    )
    step_mode: str = parameter(
        "lockstep",
        "lockstep: one step per command; realtime: a wall-clock timer",
        choices=STEP_MODES,
    )
    command_timeout_s: float = parameter(
        1.0, "[s] lockstep: wall time without a command before holding"
    )
    observation_resend_s: float = parameter(
        0.5,
        "[s] lockstep: resend the newest observation after this long without a command; 0: never",
    )
    frame_id: str = parameter("world", "frame of the cloud and image headers")
    publish_expert_observation: bool = parameter(
        True, "publish ~/expert_observation for expert teleop"
    )

    def __post_init__(self) -> None:
        """Fail fast with a message naming the bad parameter and what is valid."""
        served_task(self.task)  # UnknownTaskError / ValueError list the tasks
        problems = []
        if self.cloud_channels not in (3, 6):
            problems.append(f"cloud_channels must be 3 or 6, got {self.cloud_channels}")
        if not self.control_rate_hz > 0:
            problems.append(f"control_rate_hz must be > 0, got {self.control_rate_hz}")
        if not self.command_timeout_s > 0:
            problems.append(f"command_timeout_s must be > 0, got {self.command_timeout_s}")
        if not self.observation_resend_s >= 0:
            problems.append(
                f"observation_resend_s must be >= 0 (0: never), got {self.observation_resend_s}"
            )
        if self.num_points < 1:
            problems.append(f"num_points must be >= 1, got {self.num_points}")
        for name in ("image_size", "stop_on_success", "seed", "max_episode_steps"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if problems:
            raise ConfigError("; ".join(problems))


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "mean": 0.0, "n": 0}
    a = np.asarray(values, dtype=np.float64)
    return {
        "p50": float(np.percentile(a, 50)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "n": len(values),
    }


class SimBridgeNode(Node):
    """MetaWorld on MuJoCo behind the robot-side ROS 2 topics; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        p = declare_dataclass_parameters(self, SimBridgeParameters, read_only=True)
        self.step_mode = p.step_mode
        self.rate_hz = p.control_rate_hz
        self.command_timeout_s = p.command_timeout_s
        self.resend_s = p.observation_resend_s
        self.frame_id = p.frame_id
        self.runner = EpisodeRunner(
            p.task,
            control_period_s=1.0 / self.rate_hz,
            max_episode_steps=p.max_episode_steps,
            stop_on_success=p.stop_on_success,
            env_kwargs={
                "num_points": p.num_points,
                "image_size": p.image_size,
                "cloud_channels": p.cloud_channels,
            },
        )
        keys = self.runner.observation_keys

        self._pub_clock = self.create_publisher(ClockMsg, "/clock", RELIABLE)
        self._pub_status = self.create_publisher(EpisodeStatus, TOPIC_EPISODE_STATUS, LATCHED)
        self._pub_joints = self.create_publisher(JointState, TOPIC_JOINT_STATES, RELIABLE)
        self._pub_points = (
            self.create_publisher(PointCloud2, TOPIC_POINTS, RELIABLE)
            if POINT_CLOUD in keys
            else None
        )
        self._pub_image = (
            self.create_publisher(Image, TOPIC_IMAGE, RELIABLE) if IMAGE in keys else None
        )
        self._pub_expert = (
            self.create_publisher(Float64MultiArray, "~/expert_observation", RELIABLE)
            if p.publish_expert_observation and self.runner.full_state() is not None
            else None
        )
        self.create_subscription(
            Float64MultiArray, TOPIC_JOINT_COMMANDS, self._on_command, RELIABLE
        )
        self.create_service(ResetEpisode, "~/reset_episode", self._on_reset_episode)
        self.create_service(Trigger, "~/end_episode", self._on_end_episode)
        self.create_service(Trigger, "~/report_success", self._on_report_success)
        # Wall-clock timer: holds (lockstep), steps (realtime), idle /clock and status.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer = self.create_timer(1.0 / self.rate_hz, self._on_tick, clock=self._steady)

        self._pending: np.ndarray | None = None  # realtime: newest command since the last step
        self._last_command_wall = time.monotonic()
        self._obs_wall: float | None = None  # when the newest observation was published
        self._sent: list[tuple[object, object]] = []  # (publisher, message) of that observation
        self._sent_wall = 0.0  # when it was last (re)sent
        self._resent = 0  # resends this episode
        self._latencies: list[float] = []  # [s] observation -> next command, this episode
        self._rejected = 0
        self._last_warning = 0.0
        self._last_idle_status = 0.0
        if p.start_episode:
            self._start_episode(p.seed, None)
        self.get_logger().info(
            f"started: {self.runner.task}, {self.step_mode} at {self.rate_hz:g} Hz, "
            f"{self.runner.max_episode_steps} steps per episode, "
            f"{'episode running' if self.runner.active else 'waiting for ~/reset_episode'}"
        )

    # -- episodes -------------------------------------------------------------------------------
    def _start_episode(self, seed: int, task: str | None) -> None:
        if self.runner.active:  # the old episode is over: say so before the new one starts
            self.runner.end("reset")
            self._publish_status()
        self._await_matching()
        obs = self.runner.reset(seed, task)
        self._last_command_wall = time.monotonic()  # the command timeout starts at the reset
        self._timer.reset()  # realtime: the first step comes one full period after the reset
        self._pending = None
        self._latencies = []
        self._resent = 0
        self._publish_step(obs)

    def _await_matching(self, limit_s: float = 2.0) -> None:
        """Wait until every discovered observation subscriber is matched (at most limit_s).

        Before an episode's first observation: wait (at most limit_s) until every subscriber
        discovery shows on an observation topic is matched to our publisher, so the first
        observation reaches a policy or teleoperator that has just come up (discovery and
        endpoint matching finish at different times).
        """
        publishers = [self._pub_joints, self._pub_points, self._pub_image, self._pub_expert]
        publishers = [p for p in publishers if p is not None]
        deadline = time.monotonic() + limit_s
        while True:
            unmatched = [
                p.topic_name
                for p in publishers
                if p.get_subscription_count() < self.count_subscribers(p.topic_name)
            ]
            if not unmatched:
                return
            if time.monotonic() > deadline:
                self.get_logger().warning(
                    f"subscribers of {', '.join(unmatched)} not matched after {limit_s} s; "
                    "starting the episode anyway"
                )
                return
            time.sleep(0.02)

    def _step(self, action: np.ndarray | None) -> None:
        obs = self.runner.step(action)
        self._pending = None
        self._publish_step(obs)
        st = self.runner.status
        if st.done:
            self.get_logger().info(
                f"episode {st.episode_id} ({st.task}, seed {st.seed}) ended: {st.end_reason}, "
                f"success {st.success}, {st.step} steps ({st.held_steps} held)"
            )

    def _publish_step(self, obs: dict[str, np.ndarray] | None) -> None:
        """Publish a step: /clock, episode_status, then the observations.

        /clock, episode_status, then (unless the episode ended) the observations: joint
        states, image, cloud and last the expert observation, so that in every recording a
        step's command arrives after that step's cloud.
        """
        stamp = self._stamp()
        self._pub_clock.publish(ClockMsg(clock=stamp))
        self._publish_status()
        self._sent = []
        if obs is None:
            self._obs_wall = None
            return
        joints = JointState(name=list(self.runner.state_names), position=obs[AGENT_POS].tolist())
        joints.header.stamp = stamp
        joints.header.frame_id = self.frame_id
        self._sent.append((self._pub_joints, joints))
        if self._pub_image is not None:
            image = Image()
            fill_image(image, obs[IMAGE], "rgb8")
            image.header.stamp, image.header.frame_id = stamp, self.frame_id
            self._sent.append((self._pub_image, image))
        if self._pub_points is not None:
            cloud = PointCloud2()
            fill_pointcloud2(cloud, obs[POINT_CLOUD], PointField)
            cloud.header.stamp, cloud.header.frame_id = stamp, self.frame_id
            self._sent.append((self._pub_points, cloud))
        self._send_observation()
        self._obs_wall = time.monotonic()
        if self._pub_expert is not None:  # last: a teleoperator's command follows the cloud
            msg = Float64MultiArray(data=self.runner.full_state().tolist())
            msg.layout.dim = [
                MultiArrayDimension(
                    label=self.runner.task, size=FULL_STATE_DIM, stride=FULL_STATE_DIM
                )
            ]
            self._pub_expert.publish(msg)

    def _send_observation(self) -> None:
        for publisher, msg in self._sent:
            publisher.publish(msg)
        self._sent_wall = time.monotonic()

    def _stamp(self) -> Time:
        """Return the simulation time of the newest state as a message stamp."""
        ns = self.runner.status.sim_time_ns
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def _publish_status(self) -> None:
        st = self.runner.status
        msg = EpisodeStatus()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = self.frame_id
        msg.episode_id, msg.step, msg.max_steps = st.episode_id, st.step, st.max_steps
        msg.success, msg.done = st.success, st.done
        msg.task, msg.seed = st.task, st.seed
        self._pub_status.publish(msg)

    # -- commands and the clock ------------------------------------------------------------------
    def _on_command(self, msg: Float64MultiArray) -> None:
        action = np.asarray(msg.data, dtype=np.float64)
        n = self.runner.action_dim
        if action.shape != (n,) or not np.isfinite(action).all():
            self._rejected += 1
            self._warn(f"rejected joint_commands {list(msg.data)}: need {n} finite values")
            return
        if not self.runner.active:
            return  # between episodes the robot ignores commands
        self._last_command_wall = time.monotonic()
        if self._obs_wall is not None:
            self._latencies.append(self._last_command_wall - self._obs_wall)
            self._obs_wall = None
        if self.step_mode == "lockstep":
            self._step(action)
        else:
            self._pending = action

    def _on_tick(self) -> None:
        now = time.monotonic()
        if not self.runner.active:
            self._pub_clock.publish(ClockMsg(clock=self._stamp()))
            if now - self._last_idle_status >= 1.0:
                self._last_idle_status = now
                self._publish_status()
            return
        if self.step_mode == "realtime":
            self._step(self._pending)  # None: no fresh command -> hold
        elif now - self._last_command_wall >= self.command_timeout_s:
            self._warn(f"no command for {now - self._last_command_wall:.1f} s: holding")
            self._step(None)  # and again every control period until commands come back
        elif (
            self.resend_s > 0
            and self._obs_wall is not None
            and self._sent
            and now - self._sent_wall >= self.resend_s
        ):
            self._resent += 1
            self._send_observation()

    def _warn(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last_warning > 2.0:
            self._last_warning = now
            self.get_logger().warning(text)

    # -- services --------------------------------------------------------------------------------
    def _on_reset_episode(self, request: ResetEpisode.Request, response: ResetEpisode.Response):
        try:
            self._start_episode(int(request.seed), request.task or None)
        except (UnknownTaskError, ValueError, SimulatorError) as err:
            response.success, response.message = False, str(err)
            response.episode_id = self.runner.status.episode_id
            self.get_logger().error(f"reset refused: {err}")
            return response
        st = self.runner.status
        response.success, response.episode_id = True, st.episode_id
        response.message = f"episode {st.episode_id}: {st.task}, seed {st.seed}"
        return response

    def _on_end_episode(self, request: Trigger.Request, response: Trigger.Response):
        if not self.runner.active:
            response.success, response.message = False, "no episode is running"
            return response
        self.runner.end("ended")
        self._publish_status()
        response.success, response.message = True, json.dumps(self._summary())
        return response

    def _on_report_success(self, request: Trigger.Request, response: Trigger.Response):
        response.success = self.runner.status.success
        response.message = json.dumps(self._summary())
        return response

    def _summary(self) -> dict[str, object]:
        summary = self.runner.summary()
        latencies_ms = [round(1e3 * t, 3) for t in self._latencies]
        summary["command_latency_ms"] = _percentiles(latencies_ms)
        summary["command_latencies_ms"] = latencies_ms
        summary["rejected_commands"] = self._rejected
        summary["resent_observations"] = self._resent
        summary["step_mode"] = self.step_mode
        summary["control_rate_hz"] = self.rate_hz
        return summary

    def close(self) -> None:
        self.runner.close()


def main(args: list[str] | None = None) -> int:
    # close() frees the GL context while the libraries are loaded
    return run_node(
        NODE_NAME,
        SimBridgeNode,
        args=args,
        startup_errors=(UnknownTaskError, ValueError, SimulatorError),
    )


if __name__ == "__main__":
    sys.exit(main())
