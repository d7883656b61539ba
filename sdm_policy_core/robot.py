# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Robot profiles: what a policy's state and action vectors mean on a given robot.

They also hold the limits every command is clamped to. Loaded strictly from YAML
(config/robots/*.yaml).

A profile says where the observation comes from (joint names read from sensor_msgs/JointState,
in the checkpoint's order; the camera's pose in the robot's base frame), what the action vector
is (`action_kind`), and how to command it (`output`):

- action_kind "joint_position": absolute joint targets (rad / m); clamped to the joint limits and
  to `max_step` from the latest *measured* positions (every action name must be a state name).
- action_kind "ee_position": absolute end-effector targets [x, y, z, (qw, qx, qy, qz), (grip)];
  the position is clamped to the workspace box and to `max_step` (m) from the measured position
  (the first three action names must be state names, e.g. ee.x ee.y ee.z).
- action_kind "raw": values sent as they are (deltas, velocities, normalised commands), clamped
  to [lower, upper] per dimension — e.g. MetaWorld's (dx, dy, dz, grip) in [-1, 1].

Tracking (joint_position, ee_position): a target is never more than `max_step` from the measured
position, so an arm that does not follow its commands (stuck, blocked, controller off) keeps
every target about `max_step` away. When the measured position stays farther than
`tracking_tolerance` from the previous target on every control tick for `tracking_timeout_s`,
the controller faults and commands nothing until it is enabled again. `untracked` names action
dimensions the check ignores (a gripper closed on an object never reaches its target).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from sdm_policy_core.config import ConfigError, from_dict
from sdm_policy_core.keys import ACTION, ROS_TOPICS, TOPIC_EE_TARGET, TOPIC_JOINT_TRAJECTORY

ACTION_KINDS = ("joint_position", "ee_position", "raw")
# a profile's `output`: the topic its actions are published on
OUTPUTS = ROS_TOPICS[ACTION]


@dataclass
class CameraMount:
    """Pose of the cloud's frame in the base frame: translation [m] + quaternion [w, x, y, z]."""

    frame_id: str = "camera_depth_optical_frame"
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        q = np.asarray(self.rotation_wxyz, dtype=np.float64)
        if q.shape != (4,) or not np.isclose(np.linalg.norm(q), 1.0, atol=1e-3):
            raise ConfigError(
                f"camera.rotation_wxyz must be a unit quaternion [w, x, y, z], "
                f"got {self.rotation_wxyz}"
            )
        if len(self.translation) != 3:
            raise ConfigError(f"camera.translation must be [x, y, z], got {self.translation}")

    def matrix(self) -> np.ndarray:
        """4x4 transform cloud frame -> base frame."""
        from transforms3d.affines import compose
        from transforms3d.quaternions import quat2mat

        return compose(np.asarray(self.translation), quat2mat(self.rotation_wxyz), np.ones(3))


@dataclass
class RobotProfile:
    name: str
    base_frame: str = "base_link"
    state_names: tuple[str, ...] = ()  # JointState names forming agent_pos, in order
    action_names: tuple[str, ...] = ()  # meaning of each action dimension, in order
    action_kind: str = "joint_position"
    output: str = TOPIC_JOINT_TRAJECTORY
    lower: tuple[float, ...] = ()  # per action dimension (rad, m, or command units)
    upper: tuple[float, ...] = ()
    max_step: float = 0.05  # per control tick: rad for joints, m for the ee position
    workspace_low: tuple[float, float, float] | None = None  # ee_position: box in base frame
    workspace_high: tuple[float, float, float] | None = None
    crop_low: tuple[float, float, float] | None = None  # cloud crop box in the base frame [m]
    crop_high: tuple[float, float, float] | None = None
    camera: CameraMount = field(default_factory=CameraMount)
    description: str = ""
    # [rad | m] measured position farther than this from the previous target counts as not
    # following; None: 0.75 * max_step. Must be < max_step (targets are never farther).
    tracking_tolerance: float | None = None
    tracking_timeout_s: float = 1.0  # [s] not following for this long: fault
    untracked: tuple[str, ...] = ()  # action names the tracking check ignores (grippers)

    def __post_init__(self) -> None:
        if self.action_kind not in ACTION_KINDS:
            raise ConfigError(
                f"robot.action_kind must be one of {list(ACTION_KINDS)}, got {self.action_kind!r}"
            )
        if self.output not in OUTPUTS:
            raise ConfigError(f"robot.output must be one of {list(OUTPUTS)}, got {self.output!r}")
        if not self.state_names or not self.action_names:
            raise ConfigError(f"robot {self.name!r} needs state_names and action_names")
        n = len(self.action_names)
        if len(self.lower) != n or len(self.upper) != n:
            raise ConfigError(
                f"robot {self.name!r}: lower/upper need {n} values (one per action name), "
                f"got {len(self.lower)} and {len(self.upper)}"
            )
        if any(lo > hi for lo, hi in zip(self.lower, self.upper, strict=True)):
            raise ConfigError(f"robot {self.name!r}: lower must be <= upper")
        if self.max_step <= 0:
            raise ConfigError(f"robot.max_step must be > 0, got {self.max_step}")
        if self.output == TOPIC_EE_TARGET and self.action_kind != "ee_position":
            raise ConfigError("robot.output ee_target needs action_kind ee_position")
        if self.action_kind == "ee_position" and (
            self.workspace_low is None or self.workspace_high is None
        ):
            raise ConfigError("robot.action_kind ee_position needs workspace_low/high")
        measured = self.action_names if self.action_kind == "joint_position" else ()
        if self.action_kind == "ee_position":
            measured = self.action_names[:3]
        missing = [n for n in measured if n not in self.state_names]
        if missing:
            raise ConfigError(
                f"robot {self.name!r}: action names {missing} are not state_names; "
                f"{self.action_kind} targets are bounded by the measured positions, so each "
                "must be read from the robot (add them to state_names)"
            )
        if self.tracking_tolerance is None:
            self.tracking_tolerance = 0.75 * self.max_step
        if not 0 < self.tracking_tolerance < self.max_step:
            raise ConfigError(
                f"robot.tracking_tolerance must be in (0, max_step = {self.max_step}), got "
                f"{self.tracking_tolerance}: a target is never more than max_step from the "
                "measured position, so a larger tolerance could never see a stuck arm"
            )
        if not 0 < self.tracking_timeout_s <= 60:
            raise ConfigError(
                f"robot.tracking_timeout_s must be in (0, 60] s, got {self.tracking_timeout_s}"
            )
        unknown = [n for n in self.untracked if n not in self.action_names]
        if unknown:
            raise ConfigError(
                f"robot.untracked {unknown} are not action names {list(self.action_names)}"
            )

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    def cloud_to_base(self, frame_id: str) -> np.ndarray:
        """Return the 4x4 transform of a cloud stamped in `frame_id` into base_frame (no tf).

        From this profile alone: the camera mount for camera.frame_id, identity for base_frame.
        Any other frame raises ValueError: a cloud from another sensor, or a mount entered for
        the wrong frame, would put every point in the wrong place.
        """
        if frame_id == self.camera.frame_id:
            return self.camera.matrix()
        if frame_id == self.base_frame:
            return np.eye(4)
        raise ValueError(
            f"cloud in frame {frame_id!r}, but robot profile {self.name!r} only knows "
            f"camera.frame_id {self.camera.frame_id!r} and base_frame {self.base_frame!r}: set "
            f"camera.frame_id (and its pose) to the cloud's frame, or publish tf and use "
            f"transform_source tf where tf2_ros is installed"
        )

    @property
    def state_dim(self) -> int:
        return len(self.state_names)


def robot_profile_dir() -> Path:
    """config/robots of the source tree (the ROS node passes its installed share path)."""
    return Path(__file__).resolve().parent.parent / "config" / "robots"


def available_profiles(directory: Path | None = None) -> list[str]:
    return sorted(p.stem for p in (directory or robot_profile_dir()).glob("*.yaml"))


def load_robot_profile(name_or_path: str | Path, directory: Path | None = None) -> RobotProfile:
    """Load a profile by name (<directory or config/robots>/<name>.yaml) or path; strict YAML."""
    path = Path(name_or_path)
    if not path.suffix:
        path = (directory or robot_profile_dir()) / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(
            f"robot profile {name_or_path!r} not found; available: "
            f"{available_profiles(directory)} (or give a path to a YAML file)"
        )
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"robot profile {path} must be a mapping")
    data.setdefault("name", path.stem)
    return from_dict(RobotProfile, data, "robot")


def check_fits(profile: RobotProfile, state_dim: int, action_dim: int) -> None:
    """Raise ConfigError unless a checkpoint's spec fits the robot."""
    problems = []
    if state_dim != profile.state_dim:
        problems.append(
            f"state_dim {state_dim} != {profile.state_dim} state_names of robot {profile.name!r}"
        )
    if action_dim != profile.action_dim:
        problems.append(
            f"action_dim {action_dim} != {profile.action_dim} action_names of "
            f"robot {profile.name!r}"
        )
    if problems:
        raise ConfigError("checkpoint does not fit the robot: " + "; ".join(problems))


class CommandLimiter:
    """Clamps a proposed action to the profile's limits and per-tick step (robot units)."""

    def __init__(self, profile: RobotProfile) -> None:
        self.profile = profile
        self.lower = np.asarray(profile.lower, dtype=np.float64)
        self.upper = np.asarray(profile.upper, dtype=np.float64)

    def __call__(self, action: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Return the safe command for `action` (Da,): within the limits and max_step.

        Within the limits and within max_step of `previous` (the measured position in action
        order; None: limits only).
        """
        p = self.profile
        out = np.clip(np.asarray(action, dtype=np.float64), self.lower, self.upper)
        if previous is None:
            return out
        previous = np.asarray(previous, dtype=np.float64)
        if p.action_kind == "joint_position":
            step = np.clip(out - previous, -p.max_step, p.max_step)
            out = np.clip(previous + step, self.lower, self.upper)
        elif p.action_kind == "ee_position":
            delta = out[:3] - previous[:3]
            norm = float(np.linalg.norm(delta))
            if norm > p.max_step:
                out[:3] = previous[:3] + delta * (p.max_step / norm)
            out[:3] = np.clip(out[:3], p.workspace_low, p.workspace_high)
        return out


EE_FIELDS = ("ee.x", "ee.y", "ee.z", "ee.qw", "ee.qx", "ee.qy", "ee.qz")


class StateAssembler:
    """Builds agent_pos from joint states and/or an end-effector pose.

    A profile's `state_names` may mix joint names (read from sensor_msgs/JointState) and the
    pose fields `ee.x ee.y ee.z` [m] / `ee.qw ee.qx ee.qy ee.qz` (read from a PoseStamped on
    `ee_pose`), e.g. [ee.x, ee.y, ee.z, panda_finger_joint1]. The state's stamp is the older
    of the two sources.
    """

    def __init__(self, profile: RobotProfile) -> None:
        names = list(profile.state_names)
        self.joint_names = [n for n in names if n not in EE_FIELDS]
        self._joint_slots = [i for i, n in enumerate(names) if n not in EE_FIELDS]
        self._ee_slots = [(i, EE_FIELDS.index(n)) for i, n in enumerate(names) if n in EE_FIELDS]
        self.needs_joints = bool(self.joint_names)
        self.needs_pose = bool(self._ee_slots)
        self._state = np.zeros(len(names), dtype=np.float32)
        self._joint_stamp: float | None = None
        self._pose_stamp: float | None = None

    def update_joints(self, values: np.ndarray, stamp: float) -> None:
        """Positions of `joint_names`, in that order."""
        self._state[self._joint_slots] = values
        self._joint_stamp = stamp

    def update_pose(self, vector: np.ndarray, stamp: float) -> None:
        """[x, y, z, qw, qx, qy, qz] of the end effector."""
        for slot, field_index in self._ee_slots:
            self._state[slot] = vector[field_index]
        self._pose_stamp = stamp

    def assemble(self) -> tuple[np.ndarray, float] | None:
        """(agent_pos copy, stamp) once every needed source has arrived, else None."""
        stamps = []
        if self.needs_joints:
            stamps.append(self._joint_stamp)
        if self.needs_pose:
            stamps.append(self._pose_stamp)
        if any(s is None for s in stamps):
            return None
        return self._state.copy(), min(stamps)
