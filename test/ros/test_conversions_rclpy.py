# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The core's message conversions accept real rclpy messages.

The core's message conversions accept real rclpy messages (not only rosbags ones), and a
cloud serialised by rclpy reads back identically through rosbags.
"""

from __future__ import annotations

import numpy as np
from rclpy.serialization import serialize_message
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import Image, JointState, PointCloud2, PointField

from sdm_policy_core.conversions import (
    fill_image,
    fill_pointcloud2,
    image_to_array,
    joint_state_to_array,
    pointcloud2_to_array,
)


def test_conversions_accept_rclpy_messages():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(1000, 6)).astype(np.float32)
    points[:, 3:] = rng.integers(0, 256, size=(1000, 3)) / 255.0
    cloud = fill_pointcloud2(PointCloud2(), points, PointField, frame_id="base", stamp_ns=7)
    assert cloud.header.frame_id == "base" and cloud.header.stamp.nanosec == 7
    np.testing.assert_allclose(pointcloud2_to_array(cloud, channels=6), points, rtol=1e-6)
    # the same bytes, deserialised by rosbags (what bag2zarr reads), give the same array
    typestore = get_typestore(Stores.ROS2_KILTED)
    via_bag = typestore.deserialize_cdr(serialize_message(cloud), "sensor_msgs/msg/PointCloud2")
    np.testing.assert_array_equal(pointcloud2_to_array(via_bag, channels=6),
                                  pointcloud2_to_array(cloud, channels=6))  # fmt: skip

    rgb = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    image = fill_image(Image(), rgb, "bgr8")
    assert image.encoding == "bgr8" and image.step == 18
    np.testing.assert_array_equal(image_to_array(image), rgb)
    depth = fill_image(Image(), np.full((4, 6), 1.234, np.float32), "16UC1")
    np.testing.assert_allclose(image_to_array(depth), 1.234, atol=1e-6)

    state = JointState(name=["j2", "j1", "finger"], position=[0.2, 0.1, 0.04])
    np.testing.assert_array_equal(joint_state_to_array(state, ["j1", "j2"]), [0.1, 0.2])
