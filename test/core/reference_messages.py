# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The reference arm and the sensor messages a robot sends it, built without ROS.

sensor_msgs/PointCloud2 and JointState built with the rosbags typestore, as a robot sends them
to policy_node; the arm of `test/core/test_control_reference.py` and
`test/core/deploy/test_session.py`.
"""

from __future__ import annotations

import numpy as np
from rosbags.typesys import Stores, get_typestore

from sdm_policy_core.conversions import array_to_pointcloud2_fields
from sdm_policy_core.robot import RobotProfile

TYPES = get_typestore(Stores.ROS2_KILTED).types
PROFILE = RobotProfile(
    name="reference_arm",
    state_names=("j1", "j2", "j3", "j4"),
    action_names=("j1", "j2", "j3"),
    lower=(-0.3, -0.3, -0.3),
    upper=(0.3, 0.3, 0.3),
    max_step=0.05,
    tracking_tolerance=0.03,
    tracking_timeout_s=0.5,
)
# The joint state message's order (and a joint the profile does not use).
MESSAGE_JOINTS = ("gripper", "j3", "j1", "j4", "j2")


def _header(t: float, frame: str = "base_link"):
    ns = round(t * 1e9)
    stamp = TYPES["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
    return TYPES["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)


def cloud_msg(rng: np.random.Generator, t: float, finite: bool = True):
    """40 points uniform in ±0.5 m (all NaN unless `finite`), stamped `t`, in base_link."""
    points = rng.uniform(-0.5, 0.5, (40, 3)).astype(np.float32)
    if not finite:
        points[:] = np.nan
    fields = array_to_pointcloud2_fields(points)
    point_field = TYPES["sensor_msgs/msg/PointField"]
    fields["fields"] = [
        point_field(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields["fields"]
    ]
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    return TYPES["sensor_msgs/msg/PointCloud2"](header=_header(t), **fields)


def joint_msg(position: np.ndarray, t: float, drop: str = ""):
    """PROFILE's joints at `position` in MESSAGE_JOINTS' order (without `drop`), stamped `t`."""
    by_name = dict(zip(PROFILE.state_names, position, strict=True), gripper=0.01)
    names = [n for n in MESSAGE_JOINTS if n != drop]
    values = np.array([by_name[n] for n in names], np.float64)
    empty = np.zeros(0, np.float64)
    return TYPES["sensor_msgs/msg/JointState"](
        header=_header(t), name=names, position=values, velocity=empty, effort=empty
    )
