# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Message <-> numpy conversions on real rosbags messages.

Message <-> numpy conversions on real rosbags messages: every cloud layout, every image
encoding, joint states, poses; round trips through CDR; malformed input raises
ConversionError (never IndexError/struct.error).
"""

from __future__ import annotations

import re

import numpy as np
import pointcloud2
import pytest
from rosbags.typesys import Stores, get_typestore
from transforms3d.euler import euler2quat
from transforms3d.quaternions import quat2mat

from sdm_policy_core.conversions import (
    ConversionError,
    array_to_image_fields,
    array_to_pointcloud2_fields,
    compressed_image_to_depth,
    compressed_image_to_rgb,
    fill_image,
    fill_pointcloud2,
    image_to_array,
    image_to_depth,
    image_to_rgb,
    joint_state_to_array,
    joint_trajectory_to_array,
    matrix_from_translation_quaternion,
    matrix_to_translation_quaternion,
    pointcloud2_to_array,
    pose_to_matrix,
    pose_to_vector,
    seconds_to_stamp_fields,
    stamp_to_nanoseconds,
    stamp_to_seconds,
    vector_to_pose_fields,
)

TS = get_typestore(Stores.ROS2_KILTED)
T = TS.types
PointCloud2 = T["sensor_msgs/msg/PointCloud2"]
PointField = T["sensor_msgs/msg/PointField"]
Image = T["sensor_msgs/msg/Image"]
JointState = T["sensor_msgs/msg/JointState"]
Header = T["std_msgs/msg/Header"]
Time = T["builtin_interfaces/msg/Time"]
F32, F64, U8, U16, U32 = 7, 8, 2, 4, 6


def _header(sec: int = 3, nanosec: int = 250_000_000, frame: str = "camera") -> object:
    return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame)


def _cloud(
    fields: list[tuple[str, int, int]],
    records: np.ndarray,
    height: int = 1,
    row_pad: int = 0,
    bigendian: bool = False,
) -> object:
    """Build a PointCloud2 of the structured `records`, rows padded with garbage.

    A PointCloud2 whose data are the structured `records` (H*W,), rows padded by
    `row_pad` bytes of 0xAB garbage.
    """
    point_step = records.dtype.itemsize
    width = len(records) // height
    rows = np.frombuffer(records.tobytes(), np.uint8).reshape(height, width * point_step)
    pad = np.full((height, row_pad), 0xAB, np.uint8)
    data = np.ascontiguousarray(np.concatenate([rows, pad], axis=1)).reshape(-1)
    return PointCloud2(
        header=_header(),
        height=height,
        width=width,
        fields=[PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        is_bigendian=bigendian,
        point_step=point_step,
        row_step=width * point_step + row_pad,
        data=data,
        is_dense=False,
    )


def _roundtrip(msg: object) -> object:
    """Serialise to CDR and back: what a bag reader hands us."""
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


XYZ = np.array([[0.5, -1.25, 2.0], [1e-3, 7.0, -3.5], [100.25, 0.0, 1.0]])


# -- PointCloud2 layouts --------------------------------------------------------------------------


def test_float64_xyz():
    rec = np.zeros(3, dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8")])
    rec["x"], rec["y"], rec["z"] = XYZ.T
    msg = _roundtrip(_cloud([("x", 0, F64), ("y", 8, F64), ("z", 16, F64)], rec))
    out = pointcloud2_to_array(msg)
    assert out.dtype == np.float32 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, XYZ.astype(np.float32))


@pytest.mark.parametrize("rgb_type", [F32, U32])
@pytest.mark.parametrize("name", ["rgb", "rgba"])
def test_packed_colour_float32_or_uint32(rgb_type: int, name: str):
    colours = np.array([[255, 0, 16], [1, 128, 254], [0, 0, 0]], dtype=np.uint32)
    packed = (np.uint32(0x7F) << 24) | (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    code = "<f4" if rgb_type == F32 else "<u4"
    rec = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("c", code)])
    rec["x"], rec["y"], rec["z"] = XYZ.T
    rec["c"] = packed.view(code)
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), (name, 12, rgb_type)]
    out = pointcloud2_to_array(_roundtrip(_cloud(fields, rec)), channels=6)
    np.testing.assert_array_equal(out[:, :3], XYZ.astype(np.float32))
    np.testing.assert_array_equal(out[:, 3:], (colours / 255.0).astype(np.float32))
    # channels=3 ignores the colour
    np.testing.assert_array_equal(
        pointcloud2_to_array(_cloud(fields, rec)), XYZ.astype(np.float32)
    )


def test_separate_uint8_colour_fields():
    rec = np.zeros(
        2,
        dtype=[
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("r", "u1"),
            ("g", "u1"),
            ("b", "u1"),
            ("pad", "u1"),
        ],
    )
    rec["x"], rec["r"], rec["g"], rec["b"] = [1, 2], [255, 0], [51, 102], [0, 255]
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("r", 12, U8), ("g", 13, U8)]
    fields.append(("b", 14, U8))
    out = pointcloud2_to_array(_cloud(fields, rec), channels=6)
    np.testing.assert_allclose(out[:, 3:], [[1, 0.2, 0], [0, 0.4, 1]], rtol=1e-6)


def test_padding_fields_at_odd_offsets_match_sensor_msgs_py():
    # An Ouster-like layout: intensity first, x/y/z unaligned, a ring field and tail padding.
    dtype = np.dtype(
        {
            "names": ["intensity", "x", "y", "z", "ring"],
            "formats": ["<f4", "<f4", "<f4", "<f4", "<u2"],
            "offsets": [0, 5, 13, 21, 25],
            "itemsize": 31,
        }
    )
    rec = np.zeros(3, dtype=dtype)
    rec["x"], rec["y"], rec["z"] = XYZ.T
    rec["intensity"], rec["ring"] = 9.0, 7
    fields = [("intensity", 0, F32), ("x", 5, F32), ("y", 13, F32), ("z", 21, F32)]
    fields.append(("ring", 25, U16))
    msg = _roundtrip(_cloud(fields, rec))
    out = pointcloud2_to_array(msg)
    np.testing.assert_array_equal(out, XYZ.astype(np.float32))
    reference = pointcloud2.read_points(msg, field_names=["x", "y", "z"])  # sensor_msgs_py port
    np.testing.assert_array_equal(out, np.stack([reference[n] for n in "xyz"], axis=1))


def test_organized_cloud_with_nan_holes_keeps_row_major_order():
    height, width = 4, 5
    xyz = np.arange(height * width * 3, dtype=np.float32).reshape(-1, 3)
    xyz[[0, 7, 19], 1] = np.nan
    xyz[12, 2] = np.inf
    rec = np.zeros(height * width, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    rec["x"], rec["y"], rec["z"] = xyz.T
    msg = _roundtrip(_cloud([("x", 0, F32), ("y", 4, F32), ("z", 8, F32)], rec, height=height))
    out = pointcloud2_to_array(msg)
    keep = np.isfinite(xyz).all(axis=1)
    assert out.shape == (16, 3)
    np.testing.assert_array_equal(out, xyz[keep])
    assert pointcloud2_to_array(msg, remove_non_finite=False).shape == (20, 3)


def test_big_endian_cloud():
    rec = np.zeros(3, dtype=[("x", ">f4"), ("y", ">f4"), ("z", ">f4"), ("rgb", ">u4")])
    rec["x"], rec["y"], rec["z"] = XYZ.T
    rec["rgb"] = [0x00FF0000, 0x0000FF00, 0x000000FF]
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("rgb", 12, U32)]
    msg = _roundtrip(_cloud(fields, rec, bigendian=True))
    out = pointcloud2_to_array(msg, channels=6)
    np.testing.assert_array_equal(out[:, :3], XYZ.astype(np.float32))
    np.testing.assert_array_equal(out[:, 3:], np.eye(3, dtype=np.float32))


def test_row_step_padding():
    height, width = 3, 4
    xyz = np.random.default_rng(0).normal(size=(height * width, 3)).astype(np.float32)
    rec = np.zeros(height * width, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    rec["x"], rec["y"], rec["z"] = xyz.T
    msg = _cloud([("x", 0, F32), ("y", 4, F32), ("z", 8, F32)], rec, height=height, row_pad=13)
    assert msg.row_step == width * 12 + 13
    np.testing.assert_array_equal(pointcloud2_to_array(_roundtrip(msg)), xyz)


@pytest.mark.parametrize("channels", [3, 6])
def test_pointcloud2_round_trip_through_cdr(channels: int):
    rng = np.random.default_rng(1)
    points = rng.normal(size=(257, channels)).astype(np.float32)
    if channels == 6:
        points[:, 3:] = rng.integers(0, 256, size=(257, 3)) / 255.0
    fields = array_to_pointcloud2_fields(points, frame_id="base_link")
    assert fields["point_step"] == 4 * (channels if channels == 3 else 4)
    assert fields["row_step"] * fields["height"] == len(fields["data"])
    assert fields["fields"][0] == ("x", 0, F32, 1) and fields["frame_id"] == "base_link"
    msg = PointCloud2(
        header=_header(),
        height=1,
        width=1,
        fields=[],
        is_bigendian=False,
        point_step=1,
        row_step=1,
        data=np.zeros(1, np.uint8),
        is_dense=True,
    )
    fill_pointcloud2(msg, points, PointField, frame_id="base_link", stamp_ns=5_000_000_001)
    assert msg.header.frame_id == "base_link" and msg.header.stamp.sec == 5
    back = pointcloud2_to_array(_roundtrip(msg), channels=channels)
    np.testing.assert_allclose(back, points, atol=0, rtol=1e-7 if channels == 3 else 1e-6)
    if channels == 6:  # PCL's packing, as sensor_msgs_py reads it
        packed = pointcloud2.read_points(msg, field_names=["rgb"])["rgb"].view("<u4")
        assert ((packed >> 16) & 255)[0] == round(points[0, 3] * 255)


def _good_cloud() -> object:
    rec = np.zeros(3, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
    rec["x"], rec["y"], rec["z"] = XYZ.T
    return _cloud([("x", 0, F32), ("y", 4, F32), ("z", 8, F32)], rec)


def _mutate(**changes) -> object:
    msg = _good_cloud()
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (_mutate(point_step=8, row_step=24), "point_step 8 is smaller than field 'z'"),
        (_mutate(data=np.zeros(35, np.uint8)), "data has 35 bytes but row_step 36"),
        (_mutate(row_step=30, data=np.zeros(30, np.uint8)), "row_step 30 is smaller"),
        (_mutate(width=2**40), "claims"),
        (_mutate(width=1000, row_step=12000), "data has 36 bytes but row_step 12000"),
        (_mutate(height=0), "no points"),
        (_mutate(width=0, row_step=0, data=np.zeros(0, np.uint8)), "no points"),
        (_mutate(fields=[PointField(name="x", offset=0, datatype=F32, count=1)]), r"\['y', 'z'\]"),
        (
            _mutate(
                fields=[
                    PointField(name=n, offset=4 * i, datatype=9, count=1)
                    for i, n in enumerate("xyz")
                ]
            ),
            "unsupported datatype 9",
        ),
        (_mutate(point_step=0, row_step=0, data=np.zeros(0, np.uint8)), "point_step"),
        (_mutate(data=np.full(36, 0xFF, np.uint8)), "no finite point"),
    ],
)
def test_malformed_clouds_raise_conversion_error(msg: object, match: str):
    with pytest.raises(ConversionError, match=match):
        pointcloud2_to_array(msg)


def test_cloud_colour_errors_and_empty_allowed():
    with pytest.raises(ConversionError, match="no colour field"):
        pointcloud2_to_array(_good_cloud(), channels=6)
    rec = np.zeros(1, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<f8")])
    fields = [("x", 0, F32), ("y", 4, F32), ("z", 8, F32), ("rgb", 12, F64)]
    with pytest.raises(ConversionError, match="must be 4 bytes"):
        pointcloud2_to_array(_cloud(fields, rec), channels=6)
    with pytest.raises(ConversionError, match="channels"):
        pointcloud2_to_array(_good_cloud(), channels=4)
    empty = _mutate(width=0, row_step=0, data=np.zeros(0, np.uint8))
    assert pointcloud2_to_array(empty, allow_empty=True).shape == (0, 3)
    with pytest.raises(ConversionError, match="no field"):
        pointcloud2_to_array(object())


# -- Images ---------------------------------------------------------------------------------------

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
MONO16 = RNG.integers(0, 65536, size=(5, 7), dtype=np.uint16)
DEPTH_M = RNG.uniform(0.1, 4.0, size=(5, 7)).astype(np.float32)


def _image(encoding: str, pixels: np.ndarray, pad: int = 3, bigendian: bool = False) -> object:
    """Build an Image of `pixels` (H, W[, C]) in their raw layout, rows padded with `pad` bytes."""
    height = pixels.shape[0]
    raw = np.frombuffer(np.ascontiguousarray(pixels).tobytes(), np.uint8).reshape(height, -1)
    data = np.concatenate([raw, np.full((height, pad), 0xCD, np.uint8)], axis=1).reshape(-1)
    return Image(
        header=_header(),
        height=height,
        width=pixels.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=raw.shape[1] + pad,
        data=data,
    )


ALPHA = np.full((5, 7, 1), 200, np.uint8)
IMAGE_CASES = {
    "rgb8": (RGB, RGB),
    "bgr8": (RGB[:, :, ::-1], RGB),
    "rgba8": (np.concatenate([RGB, ALPHA], axis=2), RGB),
    "bgra8": (np.concatenate([RGB[:, :, ::-1], ALPHA], axis=2), RGB),
    "mono8": (RGB[:, :, 0], RGB[:, :, 0]),
    "mono16": (MONO16, MONO16),
    "16UC1": (MONO16, MONO16.astype(np.float32) * np.float32(0.001)),
    "32FC1": (DEPTH_M, DEPTH_M),
}


@pytest.mark.parametrize("encoding", sorted(IMAGE_CASES))
def test_every_image_encoding_with_row_padding(encoding: str):
    raw, expected = IMAGE_CASES[encoding]
    out = image_to_array(_roundtrip(_image(encoding, raw, pad=5)))
    assert out.dtype == expected.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("encoding", "code"), [("mono16", ">u2"), ("16UC1", ">u2"), ("32FC1", ">f4")]
)
def test_big_endian_images(encoding: str, code: str):
    raw, expected = IMAGE_CASES[encoding]
    out = image_to_array(_image(encoding, raw.astype(code), bigendian=True))
    np.testing.assert_array_equal(out, expected)
    assert out.dtype.isnative


@pytest.mark.parametrize("encoding", sorted(IMAGE_CASES))
def test_image_round_trip(encoding: str):
    _, expected = IMAGE_CASES[encoding]
    msg = Image(
        header=_header(),
        height=0,
        width=0,
        encoding="",
        is_bigendian=0,
        step=0,
        data=np.zeros(0, np.uint8),
    )
    fill_image(msg, expected, encoding, frame_id="cam", stamp_ns=1)
    fields = array_to_image_fields(expected, encoding)
    assert fields["step"] * fields["height"] == len(fields["data"])
    back = image_to_array(_roundtrip(msg))
    if encoding == "16UC1":  # millimetre quantisation
        np.testing.assert_allclose(back, expected, atol=6e-4)
    else:
        np.testing.assert_array_equal(back, expected)


def test_rgb_and_depth_views_and_image_errors():
    np.testing.assert_array_equal(image_to_rgb(_image("bgr8", RGB[:, :, ::-1])), RGB)
    gray = image_to_rgb(_image("mono8", RGB[:, :, 0]))
    assert gray.shape == (5, 7, 3) and (gray[:, :, 2] == RGB[:, :, 0]).all()
    np.testing.assert_array_equal(image_to_depth(_image("32FC1", DEPTH_M)), DEPTH_M)
    with pytest.raises(ConversionError, match="unsupported image encoding 'rgb8' for depth"):
        image_to_depth(_image("rgb8", RGB))
    with pytest.raises(ConversionError, match="unsupported image encoding '16UC1' for RGB"):
        image_to_rgb(_image("16UC1", MONO16))
    bad = _image("yuv422", RGB)
    with pytest.raises(ConversionError, match=r"'yuv422'.*rgb8, bgr8.*32FC1"):
        image_to_array(bad)
    short = _image("rgb8", RGB, pad=0)
    short.step = 20  # < 7 * 3
    with pytest.raises(ConversionError, match="step 20 is smaller"):
        image_to_array(short)
    truncated = _image("rgb8", RGB)
    truncated.data = truncated.data[:-1]
    with pytest.raises(ConversionError, match="bytes but step"):
        image_to_array(truncated)
    with pytest.raises(ConversionError, match="empty"):
        empty = _image("mono8", RGB[:, :, 0])
        empty.height, empty.data = 0, np.zeros(0, np.uint8)
        image_to_array(empty)
    with pytest.raises(ConversionError, match=r"\(H, W, 3\) uint8"):
        array_to_image_fields(DEPTH_M, "rgb8")


# -- Joint states, trajectories -------------------------------------------------------------------


def _joint_state(names, positions) -> object:
    return JointState(
        header=_header(),
        name=list(names),
        position=np.asarray(positions, np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def test_joint_state_reordering_and_errors():
    msg = _roundtrip(_joint_state(["j2", "j1", "gripper", "j3"], [2.0, 1.0, 0.04, 3.0]))
    out = joint_state_to_array(msg, ["j1", "j2", "j3"])  # extra joint ignored
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(joint_state_to_array(msg), [2.0, 1.0, 0.04, 3.0])
    with pytest.raises(ConversionError, match=r"lacks joint\(s\) \['j4', 'j5'\]"):
        joint_state_to_array(msg, ["j1", "j4", "j5"])
    with pytest.raises(ConversionError, match=r"NaN/Inf for joint\(s\) \['j2'\]"):
        joint_state_to_array(_joint_state(["j1", "j2"], [0.0, np.nan]), ["j1", "j2"])
    with pytest.raises(ConversionError, match="1 values for 2 joint names"):
        joint_state_to_array(_joint_state(["j1", "j2"], [0.0]), ["j1"])
    with pytest.raises(ConversionError, match="0 values"):
        joint_state_to_array(msg, ["j1"], field="velocity")


def test_joint_trajectory_first_point_reordered():
    traj = T["trajectory_msgs/msg/JointTrajectory"]
    point = T["trajectory_msgs/msg/JointTrajectoryPoint"]
    duration = T["builtin_interfaces/msg/Duration"]
    msg = traj(
        header=_header(),
        joint_names=["b", "a"],
        points=[
            point(
                positions=np.array([2.0, 1.0]),
                velocities=np.zeros(0),
                accelerations=np.zeros(0),
                effort=np.zeros(0),
                time_from_start=duration(sec=0, nanosec=1),
            )
        ],
    )
    np.testing.assert_array_equal(joint_trajectory_to_array(_roundtrip(msg), ["a", "b"]), [1, 2])
    msg.points = []
    with pytest.raises(ConversionError, match="no points"):
        joint_trajectory_to_array(msg)


# -- Poses and time -------------------------------------------------------------------------------


def test_pose_vector_matrix_and_round_trip():
    pose_stamped = T["geometry_msgs/msg/PoseStamped"]
    pose_t, point_t, quat_t = (
        T["geometry_msgs/msg/Pose"],
        T["geometry_msgs/msg/Point"],
        T["geometry_msgs/msg/Quaternion"],
    )
    q = euler2quat(0.3, -0.2, 1.1)  # w, x, y, z
    msg = pose_stamped(
        header=_header(),
        pose=pose_t(
            position=point_t(x=1.0, y=-2.0, z=0.5),
            orientation=quat_t(x=2 * q[1], y=2 * q[2], z=2 * q[3], w=2 * q[0]),  # not unit
        ),
    )
    vec = pose_to_vector(_roundtrip(msg))
    np.testing.assert_allclose(vec, [1.0, -2.0, 0.5, *q], atol=1e-12)
    mat = pose_to_matrix(msg)
    np.testing.assert_allclose(mat[:3, :3], quat2mat(q), atol=1e-12)
    np.testing.assert_allclose(mat[:3, 3], [1.0, -2.0, 0.5])
    t, q2 = matrix_to_translation_quaternion(matrix_from_translation_quaternion(vec[:3], q))
    np.testing.assert_allclose(t, vec[:3])
    np.testing.assert_allclose(np.abs(q2 @ q), 1.0, atol=1e-12)
    fields = vector_to_pose_fields(vec)
    assert fields["orientation"]["w"] == pytest.approx(q[0])
    # TransformStamped reads the same way
    tf = T["geometry_msgs/msg/TransformStamped"](
        header=_header(),
        child_frame_id="camera",
        transform=T["geometry_msgs/msg/Transform"](
            translation=T["geometry_msgs/msg/Vector3"](x=1.0, y=-2.0, z=0.5),
            rotation=quat_t(x=q[1], y=q[2], z=q[3], w=q[0]),
        ),
    )
    np.testing.assert_allclose(pose_to_vector(tf), vec, atol=1e-12)
    msg.pose.orientation = quat_t(x=0.0, y=0.0, z=0.0, w=0.0)
    with pytest.raises(ConversionError, match="zero norm"):
        pose_to_vector(msg)


def test_stamps():
    stamp = Time(sec=12, nanosec=500_000_001)
    assert stamp_to_nanoseconds(stamp) == 12_500_000_001
    assert stamp_to_seconds(_header(12, 500_000_001)) == pytest.approx(12.500000001)
    assert seconds_to_stamp_fields(12.5) == {"sec": 12, "nanosec": 500_000_000}
    assert seconds_to_stamp_fields(-0.25) == {"sec": -1, "nanosec": 750_000_000}


# -- sensor_msgs/CompressedImage (bag2zarr's test checks the formats against raw twins) ----------


def _compressed(fmt: str, data: bytes) -> object:
    return T["sensor_msgs/msg/CompressedImage"](
        header=_header(), format=fmt, data=np.frombuffer(data, np.uint8)
    )


def test_compressed_images_decode_or_say_what_is_wrong():
    import cv2

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    png = cv2.imencode(".png", rgb[:, :, ::-1])[1].tobytes()  # coded BGR, as image_transport
    np.testing.assert_array_equal(compressed_image_to_rgb(_compressed("png", png)), rgb)
    coded_rgb = cv2.imencode(".png", rgb)[1].tobytes()  # a publisher that says it coded rgb8
    msg = _compressed("rgb8; png compressed rgb8", coded_rgb)
    np.testing.assert_array_equal(compressed_image_to_rgb(msg), rgb)
    mono = cv2.imencode(".png", rgb[:, :, 0])[1].tobytes()
    np.testing.assert_array_equal(
        compressed_image_to_rgb(_compressed("mono8; png compressed mono8", mono)),
        np.repeat(rgb[:, :, :1], 3, axis=2),
    )
    mm = np.array([[0, 250, 1000], [65535, 1, 7]], np.uint16)  # a plain 16-bit png: millimetres
    depth = compressed_image_to_depth(_compressed("png", cv2.imencode(".png", mm)[1].tobytes()))
    np.testing.assert_allclose(depth, mm * np.float32(0.001))
    cases = {
        (compressed_image_to_rgb, "jpeg", b"not a jpeg"): "'jpeg'): 10 bytes that OpenCV cannot",
        (compressed_image_to_rgb, "jpeg", b""): "has no data",
        (compressed_image_to_rgb, "16UC1; compressedDepth png", png): "configure the topic as "
        "depth",
        (compressed_image_to_depth, "16UC1; compressedDepth rvl", png): "RVL-coded depth is "
        "not supported",
        (compressed_image_to_depth, "16UC1; compressedDepth png", b"abc"): "has only 3 bytes",
        (compressed_image_to_depth, "bgr8; compressedDepth", png): "compressedDepth of 'bgr8'",
        (compressed_image_to_depth, "rgb8; png compressed bgr8", png): "is not depth",
        (compressed_image_to_depth, "png", png): "decodes to uint8 (4, 5, 3), not a 16-bit",
    }
    for (convert, fmt, data), expected in cases.items():
        with pytest.raises(ConversionError, match=re.escape(expected)):
            convert(_compressed(fmt, data))
