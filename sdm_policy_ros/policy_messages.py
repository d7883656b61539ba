# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The policy node's messages, built by pure functions from arrays and the core's state.

Kept apart from the node so that what the robot receives can be read (and tested) in one place:
the sensor topics it reads, targets as JointTrajectory / Float64MultiArray / PoseStamped, the
chunk, the status and the /diagnostics entry.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from sdm_msgs.msg import ActionChunk, PolicyStatus
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from sdm_policy_core.control import PolicyController, TickResult
from sdm_policy_core.keys import (
    ACTION,
    CONTRACT_INPUTS,
    CONTRACT_OUTPUTS,
    ROS_TOPICS,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_TRAJECTORY,
)
from sdm_policy_core.robot import RobotProfile
from sdm_policy_core.runtime_base import ActionChunk as Chunk


def message_type(name: str) -> type:
    """Return the message class of a ROS type name such as "sensor_msgs/msg/PointCloud2"."""
    package, kind, cls = name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), cls)


# sensor topic -> its type (sdm_policy_core.deploy.session.ControlSession.receive decodes them)
SENSOR_TYPES = {topic: message_type(name) for topic, name in CONTRACT_INPUTS.items()}
# robot profile `output` -> the message type published on the topic of that name
OUTPUT_TYPES = {topic: message_type(CONTRACT_OUTPUTS[topic]) for topic in ROS_TOPICS[ACTION]}
STATE_NAMES = {
    PolicyStatus.STATE_NO_CHECKPOINT: "no checkpoint",
    PolicyStatus.STATE_DISABLED: "disabled",
    PolicyStatus.STATE_WAITING_FOR_DATA: "waiting for data",
    PolicyStatus.STATE_RUNNING: "running",
    PolicyStatus.STATE_HOLDING: "holding",
    PolicyStatus.STATE_FAULT: "fault",
}


def stamp_msg(seconds: float) -> TimeMsg:
    """[s] -> builtin_interfaces/Time."""
    ns = round(seconds * 1e9)
    return TimeMsg(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_msg(seconds: float) -> Duration:
    ns = round(seconds * 1e9)
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def action_chunk_msg(
    chunk: Chunk, obs_stamp: float, names: Sequence[str], frame_id: str, dt: float
) -> ActionChunk:
    """Build the planned chunk (horizon, Da), stamped with the observation it was planned from."""
    msg = ActionChunk()
    msg.header.stamp = stamp_msg(obs_stamp)
    msg.header.frame_id = frame_id
    msg.names = list(names)
    msg.horizon, msg.action_dim = chunk.actions.shape
    msg.dt = dt
    msg.actions = chunk.actions.astype(np.float32).ravel().tolist()
    msg.policy_id, msg.sampler, msg.steps = chunk.policy_id, chunk.sampler, chunk.steps
    msg.inference_time = chunk.inference_time
    return msg


def joint_trajectory_msg(names: Sequence[str], targets: np.ndarray, dt: float) -> JointTrajectory:
    """Build a trajectory of targets (n, Da): point k is to be reached (k + 1) * dt s from now."""
    msg = JointTrajectory()
    msg.joint_names = list(names)
    for k, target in enumerate(np.atleast_2d(targets)):
        msg.points.append(
            JointTrajectoryPoint(
                positions=[float(v) for v in target], time_from_start=duration_msg((k + 1) * dt)
            )
        )
    return msg


def command_msg(
    profile: RobotProfile,
    command: np.ndarray,
    trajectory: np.ndarray | None,
    dt: float,
    stamp: TimeMsg,
) -> JointTrajectory | Float64MultiArray | PoseStamped:
    """Build the profile's output message for a safe command (Da,) or trajectory (n, Da)."""
    if profile.output == TOPIC_JOINT_TRAJECTORY:
        targets = trajectory if trajectory is not None else command
        return joint_trajectory_msg(profile.action_names, targets, dt)
    if profile.output == TOPIC_JOINT_COMMANDS:
        return joint_commands_msg(command)
    return ee_target_msg(command, profile.base_frame, stamp)


def step_msgs(
    profile: RobotProfile, result: TickResult, dt: float, on_fault: str, stamp: TimeMsg
) -> list[tuple[str, object]]:
    """List the (topic, message) pairs to publish for a control step's result.

    (topic, message) to publish for a control step's result, in order: on a halt with
    on_fault stop, an empty JointTrajectory (joint_trajectory_controller stops where it is);
    the chunk when the policy ran; the command.
    """
    out: list[tuple[str, object]] = []
    if result.halt and on_fault == "stop" and profile.output == TOPIC_JOINT_TRAJECTORY:
        out.append((profile.output, JointTrajectory()))
    if result.chunk is not None:
        chunk = action_chunk_msg(
            result.chunk, result.obs_stamp, profile.action_names, profile.base_frame, dt
        )
        out.append(("action_chunk", chunk))
    if result.command is not None:
        command = command_msg(profile, result.command, result.trajectory, dt, stamp)
        out.append((profile.output, command))
    return out


def joint_commands_msg(command: np.ndarray) -> Float64MultiArray:
    return Float64MultiArray(data=[float(v) for v in command])


def ee_target_msg(command: np.ndarray, frame_id: str, stamp: TimeMsg) -> PoseStamped:
    """[x, y, z, (qw, qx, qy, qz), ...] -> PoseStamped (the quaternion normalised)."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, command[:3])
    if len(command) >= 7:
        q = command[3:7] / max(np.linalg.norm(command[3:7]), 1e-9)
        o = msg.pose.orientation
        o.w, o.x, o.y, o.z = map(float, q)
    return msg


def status_msg(
    stamp: TimeMsg,
    state: int,
    message: str,
    lifecycle_state: str,
    policy_id: str,
    control_rate: float,
    controller: PolicyController | None,
    now: float,
) -> PolicyStatus:
    """Build the status message; `now` [s] on the clock of the observation stamps."""
    msg = PolicyStatus()
    msg.header.stamp = stamp
    msg.state = state
    msg.enabled = lifecycle_state == "active"
    msg.policy_id = policy_id
    msg.message = message
    msg.lifecycle_state = lifecycle_state
    msg.control_rate = control_rate
    msg.observation_age = -1.0
    msg.seam_jump = -1.0
    if controller is not None:
        c = controller.counters
        msg.last_inference_time = c.last_inference_time
        msg.observation_age = controller.observation_age(now)
        msg.rejected_point_clouds = c.rejected_point_clouds
        msg.rejected_images = c.rejected_images
        msg.rejected_states = c.rejected_states
        msg.skipped_ticks = c.skipped_ticks
        msg.seam_jump = c.seams.last
        msg.max_seam_jump = c.seams.max
        msg.tracking_error = controller.tracking.error
    return msg


def latency_values(timing: dict) -> dict[str, str]:
    """Format a `deploy.timing` summary as /diagnostics values (p50 / p99 per stage).

    /diagnostics values of a `deploy.timing` summary: "latency_ms.<stage>" (and ".total",
    cloud stamp -> command published) = "p50 <ms> / p99 <ms>" over the newest planned steps.
    """
    rows = {**timing["stages_ms"], "total": timing["total_ms"]}
    return {
        f"latency_ms.{name}": f"p50 {v['p50']:.2f} / p99 {v['p99']:.2f}"
        for name, v in rows.items()
        if v
    }


def diagnostics_msg(status: PolicyStatus, name: str, values: dict[str, object]) -> DiagnosticArray:
    """One /diagnostics entry for `status`: OK running, ERROR fault, WARN otherwise."""
    if status.state == PolicyStatus.STATE_RUNNING:
        level = DiagnosticStatus.OK
    elif status.state == PolicyStatus.STATE_FAULT:
        level = DiagnosticStatus.ERROR
    else:
        level = DiagnosticStatus.WARN
    every = {
        "enabled": status.enabled,
        "lifecycle_state": status.lifecycle_state,
        "control_rate_hz": f"{status.control_rate:.1f}",
        "observation_age_s": f"{status.observation_age:.3f}",
        "rejected_point_clouds": status.rejected_point_clouds,
        "rejected_states": status.rejected_states,
        "skipped_ticks": status.skipped_ticks,
        "last_inference_ms": f"{status.last_inference_time * 1e3:.1f}",
        "seam_jump": f"{status.seam_jump:.4f}",
        "max_seam_jump": f"{status.max_seam_jump:.4f}",
        "tracking_error": f"{status.tracking_error:.4f}",
        **values,
    }
    diag = DiagnosticArray()
    diag.header.stamp = status.header.stamp
    diag.status.append(
        DiagnosticStatus(
            level=level,
            name=f"{name}: policy",
            message=f"{STATE_NAMES[status.state]}: {status.message}",
            hardware_id=status.policy_id,
            values=[KeyValue(key=k, value=str(v)) for k, v in every.items()],
        )
    )
    return diag
