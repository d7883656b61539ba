# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""TransformBuffer (data/transforms.py): tf2's lookupTransform semantics.

TransformBuffer (data/transforms.py): tf2's lookupTransform semantics on static and dynamic
transforms, checked against transforms3d (what tf_transformations wraps).
"""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from transforms3d.axangles import axangle2mat
from transforms3d.quaternions import axangle2quat

from sdm_policy_core.data.transforms import TransformBuffer, TransformError

TYPES = get_typestore(Stores.ROS2_KILTED).types
NS = 1_000_000_000
T0 = 1_700_000_000 * NS


def transform(parent: str, child: str, xyz, q_wxyz=(1.0, 0, 0, 0), stamp_ns: int = 0):
    """Build a rosbags geometry_msgs/TransformStamped: the pose of `child` in `parent`."""
    sec, nanosec = divmod(int(stamp_ns), NS)
    w, x, y, z = (float(v) for v in q_wxyz)
    return TYPES["geometry_msgs/msg/TransformStamped"](
        header=TYPES["std_msgs/msg/Header"](
            stamp=TYPES["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=parent
        ),
        child_frame_id=child,
        transform=TYPES["geometry_msgs/msg/Transform"](
            translation=TYPES["geometry_msgs/msg/Vector3"](*map(float, xyz)),
            rotation=TYPES["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )


def message(*transforms):
    return TYPES["tf2_msgs/msg/TFMessage"](transforms=list(transforms))


def pose(xyz, axis=(0, 0, 1), angle=0.0) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = axangle2mat(axis, angle)
    m[:3, 3] = xyz
    return m


def test_static_chain_through_the_common_ancestor():
    buffer = TransformBuffer()
    buffer.add_message(
        message(
            transform("base_link", "arm", [1, 0, 0], axangle2quat([0, 0, 1], np.pi / 2)),
            transform("arm", "camera", [0, 2, 0]),
            transform("base_link", "table", [0, 0, -1]),
        ),
        static=True,
        source="/tf_static",
    )
    base_camera = pose([1, 0, 0], angle=np.pi / 2) @ pose([0, 2, 0])
    np.testing.assert_allclose(buffer.lookup("base_link", "/camera", 0), base_camera, atol=1e-12)
    np.testing.assert_allclose(
        buffer.lookup("table", "camera", 5 * NS),  # static: any time
        np.linalg.inv(pose([0, 0, -1])) @ base_camera,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        buffer.lookup("camera", "base_link", 0), np.linalg.inv(base_camera), atol=1e-12
    )
    np.testing.assert_array_equal(buffer.lookup("nowhere", "nowhere", 0), np.eye(4))
    with pytest.raises(
        TransformError,
        match=r"'camera' and 'odom' are not connected: 'camera' "
        r"reaches camera -> arm -> base_link, 'odom' reaches odom",
    ):
        buffer.lookup("odom", "camera", 0)
    assert buffer.frames() == ["arm", "base_link", "camera", "table"]


def test_dynamic_transforms_interpolate_translation_and_slerp_rotation():
    """Dynamic transforms interpolate translation and slerp rotation.

    An arm joint turning at constant speed about z while the base slides along y: between
    samples linear translation and slerp are exact, so lookups match the true pose.
    """
    buffer = TransformBuffer()
    buffer.add_message(message(transform("arm", "camera", [0.1, 0, 0.3])), True, "/tf_static")

    def true_pose(t_s: float) -> np.ndarray:
        return pose([0.5, -0.2 + 0.4 * t_s, 0.2], angle=np.deg2rad(60) * t_s)

    for k in range(11):  # 10 Hz samples, published out of order and one twice
        t = (10 - k) / 10 if k % 2 else k / 10
        quat = axangle2quat([0, 0, 1], np.deg2rad(60) * t)
        quat = -quat if k % 3 == 0 else quat  # q and -q: the same rotation
        xyz = true_pose(t)[:3, 3]
        buffer.add_message(message(transform("base", "arm", xyz, quat, T0 + round(t * NS))), False)
    stamps = T0 + np.array([0, 0.05, 0.25, 0.5, 0.73, 1.0]) * NS
    got = buffer.lookup_many("base", "camera", stamps.astype(np.int64), tolerance_ns=NS // 10)
    for matrix, t in zip(got, (stamps - T0) / NS, strict=True):
        np.testing.assert_allclose(matrix, true_pose(t) @ pose([0.1, 0, 0.3]), atol=1e-9)
        single = buffer.lookup("base", "camera", int(T0 + t * NS), tolerance_ns=NS // 10)
        np.testing.assert_allclose(single, matrix, atol=1e-12)
    assert len(buffer) == 1 + 11


def test_a_stamp_far_from_every_sample_is_refused_not_served_a_stale_transform():
    buffer = TransformBuffer()
    for t in (0.0, 0.1, 0.2, 1.2, 1.3):  # the publisher stalls for 1 s
        buffer.add(
            transform("base", "wrist", [t, 0, 0], stamp_ns=T0 + round(t * NS)), False, "/tf"
        )
    tol = 50_000_000
    # within tolerance of a sample: interpolated, or the end sample at the ends
    np.testing.assert_allclose(buffer.lookup("base", "wrist", T0 + 120_000_000, tol)[0, 3], 0.12)
    np.testing.assert_allclose(buffer.lookup("base", "wrist", T0 + 1_340_000_000, tol)[0, 3], 1.3)
    np.testing.assert_allclose(buffer.lookup("base", "wrist", T0 - 40_000_000, tol)[0, 3], 0.0)
    message = (
        r"'base' <- 'wrist' \(from /tf\) has no sample within 0.05 s of the stamp "
        r"1700000000.700 s: nearest previous 1700000000.200 s \(-0.500 s\), next "
        r"1700000001.200 s \(\+0.500 s\); its 5 samples span 1700000000.000 s to "
        r"1700000001.300 s"
    )
    with pytest.raises(TransformError, match=message):
        buffer.lookup_many("base", "wrist", [T0 + 100_000_000, T0 + 700_000_000], tol)
    with pytest.raises(TransformError, match=r"nearest previous 1700000001.300 s \(-0.100 s\);"):
        buffer.lookup("base", "wrist", T0 + 1_400_000_000, tol)
    with pytest.raises(TransformError, match=r"nearest next 1700000000.000 s \(\+0.060 s\);"):
        buffer.lookup("wrist", "base", T0 - 60_000_000, tol)


def test_a_frame_with_two_parents_or_both_kinds_is_refused_where_a_chain_uses_it():
    buffer = TransformBuffer()
    buffer.add(transform("base", "camera", [1, 0, 0]), True, "/tf_static")
    buffer.add(transform("base", "camera", [2, 0, 0], stamp_ns=T0), False, "/tf")
    buffer.add(transform("base", "gripper", [0, 1, 0]), True, "/tf_static")
    buffer.add(transform("tool", "gripper", [0, 0, 1]), True, "/tf_static")
    buffer.add(transform("base", "table", [0, 0, -1]), True, "/tf_static")
    with pytest.raises(
        TransformError,
        match=r"'camera' is published both statically \(in /tf_static\) and dynamically "
        r"\(in /tf\)",
    ):
        buffer.lookup("base", "camera", T0)
    with pytest.raises(TransformError, match=r"'gripper' has two parents, 'base' and 'tool'"):
        buffer.lookup("table", "gripper", T0)
    np.testing.assert_allclose(buffer.lookup("table", "base", T0)[:3, 3], [0, 0, 1])


def test_a_broken_transform_is_reported_and_the_rest_of_the_message_kept():
    buffer = TransformBuffer()
    with pytest.raises(ValueError, match=r"quaternion .* has zero norm"):
        buffer.add_message(
            message(
                transform("base", "bad", [0, 0, 0], (0, 0, 0, 0)),
                transform("base", "good", [1, 2, 3]),
            ),
            static=True,
        )
    np.testing.assert_allclose(buffer.lookup("base", "good", 0)[:3, 3], [1, 2, 3])
    assert "bad" not in buffer.frames()


def test_forgetting_old_samples_leaves_every_later_lookup_unchanged():
    """Forgetting old samples leaves every later lookup unchanged.

    What a streaming converter does with /tf: forget behind the clouds converted, keep
    adding; lookups at or after the cut give the same matrices as with every sample kept.
    """
    full, pruned = TransformBuffer(), TransformBuffer()
    stamps = T0 + np.arange(0, 2 * NS, 20_000_000)  # 50 Hz for 2 s

    def sample(t: int):
        t_s = (t - T0) / NS
        quat = axangle2quat([0, 0, 1], 0.8 * t_s)
        return transform("base", "wrist", [t_s, 0.1 * t_s, 0], quat, t)

    for t in stamps[:60]:
        full.add(sample(t), False, "/tf")
        pruned.add(sample(t), False, "/tf")
    cut = T0 + 910_000_000
    pruned.forget_before(cut)
    assert len(pruned) == 60 - 45  # the sample at 0.90 s stays: it precedes the cut
    for t in stamps[60:]:  # keeps growing after the cut
        full.add(sample(t), False, "/tf")
        pruned.add(sample(t), False, "/tf")
    queries = (T0 + np.array([0.91, 0.95, 1.17, 1.5, 1.98]) * NS).astype(np.int64)
    tol = 50_000_000
    np.testing.assert_array_equal(
        pruned.lookup_many("base", "wrist", queries, tol),
        full.lookup_many("base", "wrist", queries, tol),
    )
    with pytest.raises(TransformError, match=r"nearest next 1700000000.900 s"):
        pruned.lookup("base", "wrist", T0 + 500_000_000, tol)  # behind the cut: refused
