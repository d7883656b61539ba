# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Where each point cloud sits in the robot's base frame (the policy node's `transform_source`).

- `tf`: tf2_ros (a ROS 2 install has it; the PyPI wheels do not). Every cloud is transformed
  with base_frame <- header.frame_id looked up at the cloud's own stamp, so a camera on the
  wrist or on a moving head works. A cloud whose transform is not (yet) known at that stamp is
  rejected with tf's reason: the policy never acts on a guessed camera pose.
- `profile`: the robot profile's static camera mount (`camera:` in config/robots/*.yaml), for a
  cloud in camera.frame_id, or identity for a cloud already in base_frame; a cloud in any other
  frame is rejected with a message naming the frames (see RobotProfile.cloud_to_base).
- `auto` (default): `tf` when tf2_ros is importable, `profile` otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rclpy.time import Time

from sdm_policy_core.config import ConfigError
from sdm_policy_core.conversions import ConversionError, pose_to_matrix, stamp_to_seconds
from sdm_policy_core.robot import RobotProfile

TRANSFORM_SOURCES = ("auto", "tf", "profile")


def import_tf2_ros() -> Any | None:
    """Return the tf2_ros module, or None where it is not installed."""
    try:
        import tf2_ros
    except ImportError:
        return None
    return tf2_ros


class ProfileExtrinsics:
    """The static camera mount of a robot profile."""

    source = "profile"

    def __init__(self, profile: RobotProfile) -> None:
        self.profile = profile
        # Computed once: this runs for every cloud.
        self._known = {
            f: profile.cloud_to_base(f) for f in (profile.base_frame, profile.camera.frame_id)
        }

    def cloud_to_base(self, frame_id: str, stamp: Any) -> np.ndarray:
        """4x4 cloud frame -> base frame; ConversionError for a frame the profile lacks."""
        known = self._known.get(frame_id)
        if known is not None:
            return known
        try:
            return self.profile.cloud_to_base(frame_id)  # raises, naming the frames it knows
        except ValueError as err:
            raise ConversionError(str(err)) from err


class TfExtrinsics:
    """Extrinsics from tf2 lookups at each cloud's stamp, never blocking.

    tf2 lookups at each cloud's stamp (the listener's subscriptions run on `node`'s
    executor, so a lookup never blocks: it answers from what the buffer holds).
    """

    source = "tf"

    def __init__(self, node: Any, profile: RobotProfile, tf2_ros: Any) -> None:
        self._tf2 = tf2_ros
        self.base_frame = profile.base_frame
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node, spin_thread=False)

    def cloud_to_base(self, frame_id: str, stamp: Any) -> np.ndarray:
        if not frame_id:
            raise ConversionError("cloud has an empty header.frame_id: tf cannot place it")
        if frame_id == self.base_frame:
            return np.eye(4)
        try:
            transform = self._buffer.lookup_transform(
                self.base_frame, frame_id, Time.from_msg(stamp)
            )
        except self._tf2.TransformException as err:
            raise ConversionError(
                f"no tf {self.base_frame} <- {frame_id} at {stamp_to_seconds(stamp):.3f} s: {err}"
            ) from err
        return pose_to_matrix(transform)


def make_extrinsics(node: Any, profile: RobotProfile, source: str):
    """Return the extrinsics for `transform_source` (see the module docstring)."""
    if source not in TRANSFORM_SOURCES:
        raise ConfigError(
            f"transform_source must be one of {list(TRANSFORM_SOURCES)}, got {source!r}"
        )
    tf2_ros = import_tf2_ros() if source != "profile" else None
    if source == "tf" and tf2_ros is None:
        raise ConfigError(
            "transform_source tf needs tf2_ros, which is not importable here (it ships with a "
            "ROS 2 install, not with the PyPI wheels): source your ROS 2 setup, or use "
            "transform_source profile with the camera mount in the robot profile"
        )
    if tf2_ros is not None:
        return TfExtrinsics(node, profile, tf2_ros)
    return ProfileExtrinsics(profile)
