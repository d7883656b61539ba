# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ROS message <-> numpy conversions, shared by the policy node and the bag converter.

Pure functions, duck-typed on field names: they accept rclpy messages (`sensor_msgs.msg.*`) and
messages deserialised by `rosbags` alike, because both expose the ROS field names as attributes.
Nothing here imports rclpy or any `*_msgs` package.

Conventions (ARCHITECTURE.md): clouds are (N, 3) xyz or (N, 6) xyz + rgb float32, xyz in
metres, rgb in [0, 1]; images are (H, W, 3) uint8 RGB; depth is (H, W) float32 metres; poses
are (7,) float64 vectors [x, y, z, qw, qx, qy, qz] (metres, unit quaternion in transforms3d's
w-first order); times are seconds (float) or nanoseconds (int).

`sensor_msgs_py`, `cv_bridge` and `tf_transformations` are not installable on our machines
(ENVIRONMENT.md), so this module is the one implementation used everywhere; the tests check it
against `pointcloud2` (the PyPI port of sensor_msgs_py.point_cloud2) and transforms3d (what
tf_transformations wraps), so results do not depend on what happens to be importable.

Malformed input raises `ConversionError` (a ValueError) with a message saying what is wrong;
callbacks catch it, count it and skip the message.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from transforms3d.affines import compose
from transforms3d.quaternions import mat2quat, quat2mat


class ConversionError(ValueError):
    """A message cannot be converted; the message says which field is wrong and how."""


# sensor_msgs/PointField datatypes -> numpy type codes (without byte order).
POINTFIELD_DTYPES: dict[int, str] = {
    1: "i1",  # INT8
    2: "u1",  # UINT8
    3: "i2",  # INT16
    4: "u2",  # UINT16
    5: "i4",  # INT32
    6: "u4",  # UINT32
    7: "f4",  # FLOAT32
    8: "f8",  # FLOAT64
}
POINTFIELD_FLOAT32 = 7

# A cloud with more points than this is rejected before any allocation (a corrupt width/height).
MAX_POINTS = 2**31 - 1

# Image encodings read by `image_to_array`: (numpy type code, channels).
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
DEPTH_ENCODINGS = ("16UC1", "32FC1")
DEPTH_16UC1_SCALE = 0.001  # REP 118: 16UC1 depth is in millimetres; we return metres


# ------------------------------------------------------------------------------------------------
# Small helpers


def _get(msg: Any, name: str, what: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ConversionError(f"{what} has no field {name!r} ({type(msg).__name__})") from None


def _int(value: Any, name: str, what: str) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConversionError(f"{what}.{name} must be an integer, got {value!r}") from None
    if out < 0:
        raise ConversionError(f"{what}.{name} must be >= 0, got {out}")
    return out


def _buffer(data: Any, what: str) -> np.ndarray:
    """(nbytes,) uint8 view of a message's `data` (bytes, array.array, ndarray, memoryview)."""
    if isinstance(data, np.ndarray):
        if data.dtype == np.uint8 and data.ndim == 1:
            return data
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a list of ints (e.g. a message built by hand)
        try:
            return np.asarray(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ConversionError(f"{what}.data is not a byte buffer: {err}") from None


def _data_for(msg: Any, payload: bytes) -> Any:
    """Return `payload` in the form msg.data takes.

    A uint8 ndarray for rosbags messages (their serialiser needs one), bytes for rclpy
    (assigning bytes is ~500x faster than an array).
    """
    if isinstance(getattr(msg, "data", None), np.ndarray) or hasattr(type(msg), "__msgtype__"):
        return np.frombuffer(payload, dtype=np.uint8)
    return payload


def _set_header(msg: Any, frame_id: str | None, stamp_ns: int | None) -> None:
    header = getattr(msg, "header", None)
    if header is None:
        return
    if frame_id is not None:
        header.frame_id = frame_id
    if stamp_ns is not None:
        header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)


# ------------------------------------------------------------------------------------------------
# Time


def stamp_to_nanoseconds(stamp: Any) -> int:
    """builtin_interfaces/Time (or a Header, whose `.stamp` is used) -> integer nanoseconds."""
    if hasattr(stamp, "stamp"):
        stamp = stamp.stamp
    return int(_get(stamp, "sec", "stamp")) * 1_000_000_000 + int(_get(stamp, "nanosec", "stamp"))


def stamp_to_seconds(stamp: Any) -> float:
    """builtin_interfaces/Time (or a Header) -> seconds as a float."""
    return stamp_to_nanoseconds(stamp) * 1e-9


def seconds_to_stamp_fields(seconds: float) -> dict[str, int]:
    """Seconds -> {'sec', 'nanosec'} of a builtin_interfaces/Time (nanosec in [0, 1e9))."""
    sec, nanosec = divmod(round(float(seconds) * 1e9), 1_000_000_000)
    return {"sec": int(sec), "nanosec": int(nanosec)}


# ------------------------------------------------------------------------------------------------
# sensor_msgs/PointCloud2


def _cloud_dtype(msg: Any, channels: int) -> tuple[np.dtype, str | None]:
    """Build the structured dtype of the fields we read, and the colour layout.

    Structured dtype (itemsize = point_step) of the fields we read, and the colour layout
    ('packed' for an rgb/rgba field, 'separate' for r, g, b uint8 fields, None).
    """
    fields = list(_get(msg, "fields", "PointCloud2"))
    point_step = _int(_get(msg, "point_step", "PointCloud2"), "point_step", "PointCloud2")
    order = ">" if bool(_get(msg, "is_bigendian", "PointCloud2")) else "<"
    by_name: dict[str, Any] = {}
    for field in fields:
        by_name.setdefault(str(_get(field, "name", "PointField")), field)
    present = sorted(by_name)
    missing = [n for n in ("x", "y", "z") if n not in by_name]
    if missing:
        raise ConversionError(f"PointCloud2 has no field(s) {missing}; its fields are {present}")
    wanted: list[tuple[str, str]] = [("x", "x"), ("y", "y"), ("z", "z")]  # (field, output name)
    color = None
    if channels == 6:
        packed = next((n for n in ("rgb", "rgba") if n in by_name), None)
        if packed is not None:
            wanted.append((packed, "rgb"))
            color = "packed"
        elif all(n in by_name for n in ("r", "g", "b")):
            wanted += [("r", "r"), ("g", "g"), ("b", "b")]
            color = "separate"
        else:
            raise ConversionError(
                f"PointCloud2 has no colour field (rgb, rgba or r/g/b) for channels=6; "
                f"its fields are {present}"
            )
    names, formats, offsets = [], [], []
    for field_name, out_name in wanted:
        field = by_name[field_name]
        datatype = _int(_get(field, "datatype", "PointField"), "datatype", f"field {field_name}")
        if datatype not in POINTFIELD_DTYPES:
            raise ConversionError(
                f"PointCloud2 field {field_name!r} has unsupported datatype {datatype}; "
                f"supported: {sorted(POINTFIELD_DTYPES)} (sensor_msgs/PointField INT8..FLOAT64)"
            )
        code = POINTFIELD_DTYPES[datatype]
        if out_name == "rgb":  # PCL packs 0x00RRGGBB into the bits of a float32 / (u)int32
            if np.dtype(code).itemsize != 4:
                raise ConversionError(
                    f"PointCloud2 field {field_name!r} must be 4 bytes (packed colour), "
                    f"got datatype {datatype}"
                )
            code = "u4"
        elif color == "separate" and out_name in ("r", "g", "b") and code != "u1":
            raise ConversionError(
                f"PointCloud2 colour field {field_name!r} must be UINT8, got datatype {datatype}"
            )
        offset = _int(_get(field, "offset", "PointField"), "offset", f"field {field_name}")
        size = np.dtype(code).itemsize
        if offset + size > point_step:
            raise ConversionError(
                f"PointCloud2 point_step {point_step} is smaller than field {field_name!r} "
                f"(offset {offset} + {size} bytes)"
            )
        names.append(out_name)
        formats.append(order + code)
        offsets.append(offset)
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )
    return dtype, color


def pointcloud2_to_array(
    msg: Any, channels: int = 3, allow_empty: bool = False, remove_non_finite: bool = True
) -> np.ndarray:
    """sensor_msgs/PointCloud2 of any field layout -> (N, channels) float32.

    channels: 3 for xyz (m), 6 for xyz + rgb in [0, 1] (from a packed `rgb`/`rgba` field,
        float32 or uint32 as PCL writes it, or separate uint8 `r`, `g`, `b` fields).
    Handles float32/float64 (any PointField datatype) coordinates, padding fields and arbitrary
    offsets/point_step, big-endian data, row_step padding and organised clouds (height > 1).
    Points with a NaN/Inf coordinate (holes of organised clouds) are removed unless
    `remove_non_finite` is False. The fields are read through one strided view of `msg.data`
    (no per-point Python work); the result is a new array.
    allow_empty: return a (0, channels) array for a cloud without points instead of raising.
    Raises ConversionError for malformed clouds (sizes inconsistent with the data, missing
    x/y/z, unsupported datatypes, fields beyond point_step) and, unless allowed, empty clouds.
    """
    if channels not in (3, 6):
        raise ConversionError(f"channels must be 3 (xyz) or 6 (xyz + rgb), got {channels}")
    what = "PointCloud2"
    height = _int(_get(msg, "height", what), "height", what)
    width = _int(_get(msg, "width", what), "width", what)
    point_step = _int(_get(msg, "point_step", what), "point_step", what)
    row_step = _int(_get(msg, "row_step", what), "row_step", what)
    data = _buffer(_get(msg, "data", what), what)
    count = height * width
    if count > MAX_POINTS:
        raise ConversionError(f"PointCloud2 claims {height} x {width} points, more than plausible")
    dtype, color = _cloud_dtype(msg, channels)
    if count == 0:
        if allow_empty:
            return np.empty((0, channels), dtype=np.float32)
        raise ConversionError(f"PointCloud2 has no points (height {height}, width {width})")
    if point_step == 0:
        raise ConversionError("PointCloud2 point_step is 0 for a non-empty cloud")
    if row_step < width * point_step:
        raise ConversionError(
            f"PointCloud2 row_step {row_step} is smaller than width {width} x point_step "
            f"{point_step} = {width * point_step}"
        )
    if data.nbytes != row_step * height:
        raise ConversionError(
            f"PointCloud2 data has {data.nbytes} bytes but row_step {row_step} x height "
            f"{height} = {row_step * height}"
        )
    points = np.ndarray(
        (height, width), dtype=dtype, buffer=data, offset=0, strides=(row_step, point_step)
    )
    out = np.empty((count, channels), dtype=np.float32)
    for i, name in enumerate("xyz"):
        out[:, i].reshape(height, width)[...] = points[name]
    if color == "packed":
        packed = points["rgb"]
        for i, shift in enumerate((16, 8, 0)):
            channel = ((packed >> np.uint32(shift)) & np.uint32(0xFF)).astype(np.float32)
            out[:, 3 + i].reshape(height, width)[...] = channel / np.float32(255.0)
    elif color == "separate":
        for i, name in enumerate("rgb"):
            out[:, 3 + i].reshape(height, width)[...] = points[name] / np.float32(255.0)
    if remove_non_finite:
        finite = np.isfinite(out[:, :3]).all(axis=1)
        if not finite.all():
            out = out[finite]
            if len(out) == 0 and not allow_empty:
                raise ConversionError("PointCloud2 has no finite point (all NaN/Inf)")
    return out


def array_to_pointcloud2_fields(points: np.ndarray, frame_id: str | None = None) -> dict:
    """(N, 3|6) points (xyz m, + rgb in [0, 1]) -> the fields of an unorganised PointCloud2.

    Returns {'height': 1, 'width': N, 'fields': [(name, offset, datatype, count), ...],
    'is_bigendian': False, 'point_step', 'row_step', 'data': bytes, 'is_dense'} (+ 'frame_id'
    when given). xyz are float32 at offsets 0, 4, 8; colour is packed PCL-style into the bits of
    a float32 field `rgb` at offset 12 (0x00RRGGBB). is_dense is False when a coordinate is
    NaN/Inf.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] not in (3, 6):
        raise ConversionError(f"points must be (N, 3) or (N, 6), got shape {points.shape}")
    count = points.shape[0]
    xyz = points[:, :3].astype(np.float32)
    fields = [("x", 0, POINTFIELD_FLOAT32, 1), ("y", 4, POINTFIELD_FLOAT32, 1)]
    fields.append(("z", 8, POINTFIELD_FLOAT32, 1))
    if points.shape[1] == 6:
        rgb = np.rint(np.clip(np.nan_to_num(points[:, 3:6].astype(np.float64)), 0, 1) * 255)
        rgb = rgb.astype(np.uint32)
        packed = (rgb[:, 0] << np.uint32(16)) | (rgb[:, 1] << np.uint32(8)) | rgb[:, 2]
        record = np.empty((count, 4), dtype="<f4")
        record[:, :3] = xyz
        record[:, 3] = packed.astype("<u4").view("<f4")
        fields.append(("rgb", 12, POINTFIELD_FLOAT32, 1))
    else:
        record = xyz.astype("<f4", copy=False)
    point_step = 4 * len(fields)
    out = {
        "height": 1,
        "width": count,
        "fields": fields,
        "is_bigendian": False,
        "point_step": point_step,
        "row_step": point_step * count,
        "data": np.ascontiguousarray(record).tobytes(),
        "is_dense": bool(np.isfinite(xyz).all()),
    }
    if frame_id is not None:
        out["frame_id"] = frame_id
    return out


def fill_pointcloud2(
    msg: Any,
    points: np.ndarray,
    point_field_cls: type,
    frame_id: str | None = None,
    stamp_ns: int | None = None,
) -> Any:
    """Fill an existing PointCloud2 (rclpy or rosbags) from (N, 3|6) points; returns `msg`.

    point_field_cls: the PointField class of the same family (rclpy's
    `sensor_msgs.msg.PointField` or a rosbags typestore's `sensor_msgs/msg/PointField`).
    `data` is assigned in one piece (bytes for rclpy, a uint8 array for rosbags).
    """
    fields = array_to_pointcloud2_fields(points)
    _set_header(msg, frame_id, stamp_ns)
    msg.height = fields["height"]
    msg.width = fields["width"]
    msg.fields = [
        point_field_cls(name=name, offset=offset, datatype=datatype, count=count)
        for name, offset, datatype, count in fields["fields"]
    ]
    msg.is_bigendian = fields["is_bigendian"]
    msg.point_step = fields["point_step"]
    msg.row_step = fields["row_step"]
    msg.data = _data_for(msg, fields["data"])
    msg.is_dense = fields["is_dense"]
    return msg


# ------------------------------------------------------------------------------------------------
# sensor_msgs/Image


def _supported_encodings() -> str:
    return ", ".join(IMAGE_ENCODINGS)


def image_to_array(msg: Any) -> np.ndarray:
    """Convert sensor_msgs/Image to a new numpy array in a fixed convention per encoding.

    rgb8, bgr8, rgba8, bgra8 -> (H, W, 3) uint8 RGB (BGR is reordered, alpha dropped);
    mono8 -> (H, W) uint8; mono16 -> (H, W) uint16;
    16UC1 -> (H, W) float32 depth in metres (REP 118 millimetres x 0.001; 0 = no reading);
    32FC1 -> (H, W) float32 (depth in metres by REP 118).
    Honours `step` row padding and `is_bigendian`. Raises ConversionError for an unsupported
    encoding (naming it and the supported ones) or sizes inconsistent with the data.
    """
    what = "Image"
    encoding = str(_get(msg, "encoding", what))
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r}; supported: {_supported_encodings()}"
        )
    code, channels = IMAGE_ENCODINGS[encoding]
    height = _int(_get(msg, "height", what), "height", what)
    width = _int(_get(msg, "width", what), "width", what)
    step = _int(_get(msg, "step", what), "step", what)
    data = _buffer(_get(msg, "data", what), what)
    if height == 0 or width == 0:
        raise ConversionError(f"Image is empty ({height} x {width})")
    order = ">" if bool(_get(msg, "is_bigendian", what)) else "<"
    dtype = np.dtype(order + code)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ConversionError(
            f"Image step {step} is smaller than width {width} x {channels * dtype.itemsize} "
            f"bytes per pixel ({encoding}) = {row_bytes}"
        )
    if data.nbytes != step * height:
        raise ConversionError(
            f"Image data has {data.nbytes} bytes but step {step} x height {height} = "
            f"{step * height}"
        )
    pixels = np.ndarray(
        (height, width, channels),
        dtype=dtype,
        buffer=data,
        strides=(step, channels * dtype.itemsize, dtype.itemsize),
    )
    if encoding in ("rgb8", "rgba8"):
        return np.ascontiguousarray(pixels[:, :, :3])
    if encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    plane = pixels[:, :, 0]
    if encoding == "16UC1":
        return plane.astype(np.float32) * np.float32(DEPTH_16UC1_SCALE)
    return plane.astype(dtype.newbyteorder("="), copy=True)


def image_to_rgb(msg: Any) -> np.ndarray:
    """sensor_msgs/Image of a colour or mono8 encoding -> (H, W, 3) uint8 RGB."""
    encoding = str(_get(msg, "encoding", "Image"))
    if encoding not in COLOR_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r} for RGB; supported: "
            f"{', '.join(COLOR_ENCODINGS)}"
        )
    array = image_to_array(msg)
    return np.repeat(array[:, :, None], 3, axis=2) if array.ndim == 2 else array


def image_to_depth(msg: Any) -> np.ndarray:
    """sensor_msgs/Image of a depth encoding (16UC1 mm or 32FC1 m) -> (H, W) float32 metres."""
    encoding = str(_get(msg, "encoding", "Image"))
    if encoding not in DEPTH_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r} for depth; supported: 16UC1 (mm), "
            f"32FC1 (m) (REP 118)"
        )
    return image_to_array(msg)


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """Convert a numpy array to Image fields: the inverse of `image_to_array`.

    numpy array -> Image fields {'height', 'width', 'encoding', 'is_bigendian', 'step',
    'data': bytes} (no row padding, little-endian).

    rgb8/bgr8 take (H, W, 3) uint8 RGB; rgba8/bgra8 take (H, W, 3) RGB (alpha 255) or
    (H, W, 4) RGBA; mono8 (H, W) uint8; mono16 (H, W) uint16; 16UC1 (H, W) depth in metres
    (rounded to millimetres, NaN/Inf/negative -> 0, clipped to 65.535 m); 32FC1 (H, W) float.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ConversionError(
            f"unsupported image encoding {encoding!r}; supported: {_supported_encodings()}"
        )
    array = np.asarray(array)
    _, channels = IMAGE_ENCODINGS[encoding]
    if channels == 1:
        if array.ndim != 2:
            raise ConversionError(f"{encoding} needs an (H, W) array, got shape {array.shape}")
        if encoding == "16UC1":
            mm = np.rint(np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0) * 1000.0)
            pixels = np.clip(mm, 0, 65535).astype("<u2")
        else:
            code = IMAGE_ENCODINGS[encoding][0]
            pixels = array.astype("<" + code)
    else:
        if array.ndim != 3 or array.shape[2] not in (3, 4) or array.dtype != np.uint8:
            raise ConversionError(
                f"{encoding} needs an (H, W, 3) uint8 RGB array, got {array.dtype} {array.shape}"
            )
        rgb = array[:, :, :3]
        if encoding.startswith("bgr"):
            rgb = rgb[:, :, ::-1]
        if channels == 4:
            alpha = (
                array[:, :, 3:4]
                if array.shape[2] == 4
                else np.full((*array.shape[:2], 1), 255, np.uint8)
            )
            pixels = np.concatenate([rgb, alpha], axis=2)
        else:
            pixels = rgb
    pixels = np.ascontiguousarray(pixels)
    height, width = pixels.shape[:2]
    return {
        "height": int(height),
        "width": int(width),
        "encoding": encoding,
        "is_bigendian": 0,
        "step": int(pixels.strides[0]) if height else int(width * pixels.itemsize * channels),
        "data": pixels.tobytes(),
    }


def fill_image(
    msg: Any,
    array: np.ndarray,
    encoding: str,
    frame_id: str | None = None,
    stamp_ns: int | None = None,
) -> Any:
    """Fill an existing sensor_msgs/Image (rclpy or rosbags) from an array; returns `msg`."""
    fields = array_to_image_fields(array, encoding)
    _set_header(msg, frame_id, stamp_ns)
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = encoding, fields["is_bigendian"], fields["step"]
    msg.data = _data_for(msg, fields["data"])
    return msg


# ------------------------------------------------------------------------------------------------
# sensor_msgs/CompressedImage (image_transport's `compressed` and `compressedDepth` formats)

# compressed_depth_image_transport's ConfigHeader before the PNG: int32 format, float32 A, B.
COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")


def _imdecode(msg: Any, data: np.ndarray, flags: int) -> np.ndarray:
    import cv2  # opencv-python-headless; imported here so that importing conversions stays light

    what = f"CompressedImage (format {str(_get(msg, 'format', 'CompressedImage'))!r})"
    if data.size == 0:
        raise ConversionError(f"{what} has no data")
    try:
        array = cv2.imdecode(data, flags)
    except cv2.error as err:
        raise ConversionError(f"{what}: {str(err).strip()[:120]}") from None
    if array is None:
        raise ConversionError(f"{what}: {data.size} bytes that OpenCV cannot decode (jpeg/png)")
    return array


def compressed_image_to_rgb(msg: Any) -> np.ndarray:
    """Decode sensor_msgs/CompressedImage (jpeg, png) -> (H, W, 3) uint8 RGB.

    As image_transport's `compressed` writes it: format '<encoding>; jpeg compressed bgr8', or
    just 'jpeg'.

    Colour data is coded in BGR order (OpenCV's, as image_transport codes it) unless the
    format names 'compressed rgb8'; mono is repeated to 3 channels, 16-bit scaled to 8-bit.
    """
    import cv2

    fmt = str(_get(msg, "format", "CompressedImage"))
    if "compresseddepth" in fmt.lower():
        raise ConversionError(
            f"CompressedImage format {fmt!r} is compressed depth: configure the topic as depth"
        )
    data = _buffer(_get(msg, "data", "CompressedImage"), "CompressedImage")
    bgr = _imdecode(msg, data, cv2.IMREAD_COLOR)
    if bgr.ndim == 2:  # IMREAD_COLOR always gives 3 channels; guard against odd builds
        return np.repeat(bgr[:, :, None], 3, axis=2)
    if "compressed rgb" in fmt.lower():
        return np.ascontiguousarray(bgr)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def compressed_image_to_depth(msg: Any) -> np.ndarray:
    """sensor_msgs/CompressedImage of depth -> (H, W) float32 metres, as image_to_depth.

    image_transport `compressedDepth` (format '16UC1; compressedDepth png', '32FC1;
    compressedDepth'): a 12-byte header (format, A, B) then a 16-bit PNG. 16UC1: millimetres
    (0 = no reading). 32FC1: quantised inverse depth q, depth = A / (q - B), q = 0 -> NaN
    (no reading or beyond the publisher's depth_max). A plain 16-bit single-channel PNG
    (format 'png', '16UC1; png compressed 16UC1') is read as 16UC1 millimetres.
    RVL-coded compressedDepth is refused with what to do.
    """
    import cv2

    fmt = str(_get(msg, "format", "CompressedImage"))
    data = _buffer(_get(msg, "data", "CompressedImage"), "CompressedImage")
    encoding = fmt.split(";")[0].strip() if ";" in fmt else ""
    if "compresseddepth" in fmt.lower():
        if "rvl" in fmt.lower():
            raise ConversionError(
                f"CompressedImage format {fmt!r}: RVL-coded depth is not supported; record with "
                f"the compressedDepth format parameter 'png'"
            )
        if encoding not in DEPTH_ENCODINGS:
            raise ConversionError(
                f"CompressedImage format {fmt!r}: compressedDepth of {encoding!r}; supported: "
                f"16UC1 (mm), 32FC1 (m)"
            )
        if data.size <= COMPRESSED_DEPTH_HEADER.size:
            raise ConversionError(f"CompressedImage format {fmt!r} has only {data.size} bytes")
        _, quant_a, quant_b = COMPRESSED_DEPTH_HEADER.unpack_from(data)
        data = data[COMPRESSED_DEPTH_HEADER.size :]
    elif encoding and encoding not in ("16UC1", "mono16"):
        raise ConversionError(
            f"CompressedImage format {fmt!r} is not depth: use compressedDepth (16UC1, 32FC1) "
            f"or a 16-bit png"
        )
    plane = _imdecode(msg, data, cv2.IMREAD_UNCHANGED)
    if plane.ndim != 2 or plane.dtype != np.uint16:
        raise ConversionError(
            f"CompressedImage format {fmt!r} decodes to {plane.dtype} {plane.shape}, not a "
            f"16-bit single-channel depth image"
        )
    if encoding != "32FC1":
        return plane.astype(np.float32) * np.float32(DEPTH_16UC1_SCALE)
    depth = np.full(plane.shape, np.nan, np.float32)
    valid = plane != 0
    with np.errstate(divide="ignore"):  # as the C++ decoder: float32 A / (q - B)
        depth[valid] = np.float32(quant_a) / (
            plane[valid].astype(np.float32) - np.float32(quant_b)
        )
    return depth


# ------------------------------------------------------------------------------------------------
# Joint states and trajectories


def _float_vector(values: Any, what: str) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise ConversionError(f"{what} is not a numeric sequence: {err}") from None


def _reorder(
    values: np.ndarray, msg_names: Sequence[str], names: Sequence[str] | None, what: str
) -> np.ndarray:
    msg_names = [str(n) for n in msg_names]
    if len(values) < len(msg_names):
        raise ConversionError(f"{what} has {len(values)} values for {len(msg_names)} joint names")
    if names is None:
        out = values[: len(msg_names)]
        names = msg_names
    else:
        index = {}
        for i, name in enumerate(msg_names):
            index.setdefault(name, i)
        missing = [n for n in names if n not in index]
        if missing:
            raise ConversionError(f"{what} lacks joint(s) {missing}; it has {msg_names}")
        out = values[[index[n] for n in names]]
    bad = [n for n, v in zip(names, out, strict=True) if not np.isfinite(v)]
    if bad:
        raise ConversionError(f"{what} has NaN/Inf for joint(s) {bad}")
    return out


def joint_state_to_array(
    msg: Any, names: Sequence[str] | None = None, field: str = "position"
) -> np.ndarray:
    """sensor_msgs/JointState -> (len(names),) float64 in the order of `names`.

    names: wanted joint order; joints of the message not named are ignored. None keeps the
        message's own order (all its joints).
    field: 'position' (rad or m), 'velocity' or 'effort'.
    Raises ConversionError when a named joint is missing (listing the missing and present
    ones), `field` has fewer values than `name`, or a value is NaN/Inf.
    """
    if field not in ("position", "velocity", "effort"):
        raise ConversionError(f"field must be position, velocity or effort, got {field!r}")
    values = _float_vector(_get(msg, field, "JointState"), f"JointState.{field}")
    return _reorder(values, list(_get(msg, "name", "JointState")), names, f"JointState.{field}")


def joint_trajectory_to_array(
    msg: Any, names: Sequence[str] | None = None, point: int = 0
) -> np.ndarray:
    """Read trajectory_msgs/JointTrajectory -> positions (len(names),) float64 of a point.

    The positions of `points[point]`, reordered to `names` (None: the message's joint order).
    """
    points = list(_get(msg, "points", "JointTrajectory"))
    if not points:
        raise ConversionError("JointTrajectory has no points")
    if not -len(points) <= point < len(points):
        raise ConversionError(f"JointTrajectory has {len(points)} points, no point {point}")
    values = _float_vector(_get(points[point], "positions", "JointTrajectoryPoint"), "positions")
    joint_names = list(_get(msg, "joint_names", "JointTrajectory"))
    return _reorder(values, joint_names, names, f"JointTrajectory.points[{point}].positions")


# ------------------------------------------------------------------------------------------------
# Poses and transforms (transforms3d: quaternions are w-first)


def _unwrap_pose(pose: Any) -> tuple[Any, Any]:
    """Return (position-like, orientation-like) of a pose or transform message.

    Accepts Pose / PoseStamped / PoseWithCovariance(Stamped) / Transform / TransformStamped.
    """
    for _ in range(3):
        if hasattr(pose, "pose"):
            pose = pose.pose
        elif hasattr(pose, "transform"):
            pose = pose.transform
    position = getattr(pose, "position", None)
    if position is None:
        position = getattr(pose, "translation", None)
    orientation = getattr(pose, "orientation", None)
    if orientation is None:
        orientation = getattr(pose, "rotation", None)
    if position is None or orientation is None:
        raise ConversionError(
            f"{type(pose).__name__} is not a pose or transform (needs position/orientation or "
            f"translation/rotation)"
        )
    return position, orientation


def normalized_quaternion(q_wxyz: Sequence[float]) -> np.ndarray:
    """(4,) [w, x, y, z] scaled to unit norm; ConversionError for NaN/Inf or zero norm."""
    q = np.asarray(q_wxyz, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.isfinite(q).all():
        raise ConversionError(f"quaternion must be 4 finite numbers, got {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if norm < 1e-9:
        raise ConversionError(f"quaternion {q.tolist()} has zero norm")
    return q / norm


def pose_to_vector(pose: Any) -> np.ndarray:
    """Convert geometry_msgs Pose/PoseStamped/Transform(Stamped) -> (7,) float64.

    [x, y, z, qw, qx, qy, qz] (metres; unit quaternion, its sign kept).
    """
    position, orientation = _unwrap_pose(pose)
    xyz = np.array([position.x, position.y, position.z], dtype=np.float64)
    if not np.isfinite(xyz).all():
        raise ConversionError(f"pose position has NaN/Inf: {xyz.tolist()}")
    q = normalized_quaternion([orientation.w, orientation.x, orientation.y, orientation.z])
    return np.concatenate([xyz, q])


def vector_to_pose_fields(vector: Sequence[float]) -> dict[str, dict[str, float]]:
    """Convert (7,) [x, y, z, qw, qx, qy, qz] -> {'position': {...}, 'orientation': {...}}.

    {'position': {x, y, z}, 'orientation': {x, y, z, w}} (the quaternion normalised).
    """
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.shape != (7,) or not np.isfinite(v[:3]).all():
        raise ConversionError(f"pose vector must be 7 finite numbers, got {v.tolist()}")
    w, x, y, z = normalized_quaternion(v[3:])
    return {
        "position": {"x": float(v[0]), "y": float(v[1]), "z": float(v[2])},
        "orientation": {"x": float(x), "y": float(y), "z": float(z), "w": float(w)},
    }


def fill_pose(msg: Any, vector: Sequence[float]) -> Any:
    """Fill an existing geometry_msgs/Pose (or the `.pose` of a PoseStamped); returns `msg`."""
    fields = vector_to_pose_fields(vector)
    pose = msg.pose if hasattr(msg, "pose") else msg
    for key, value in fields["position"].items():
        setattr(pose.position, key, value)
    for key, value in fields["orientation"].items():
        setattr(pose.orientation, key, value)
    return msg


def matrix_from_translation_quaternion(
    translation: Sequence[float], quaternion_wxyz: Sequence[float]
) -> np.ndarray:
    """(3,) translation (m) + (4,) [w, x, y, z] -> (4, 4) float64 homogeneous transform."""
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,) or not np.isfinite(t).all():
        raise ConversionError(f"translation must be 3 finite numbers, got {t.tolist()}")
    return compose(t, quat2mat(normalized_quaternion(quaternion_wxyz)), np.ones(3))


def matrix_to_translation_quaternion(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(4, 4) rigid transform -> ((3,) translation, (4,) [w, x, y, z] unit quaternion)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        raise ConversionError(f"transform must be 4x4, got {matrix.shape}")
    return matrix[:3, 3].copy(), normalized_quaternion(mat2quat(matrix[:3, :3]))


def pose_to_matrix(pose: Any) -> np.ndarray:
    """Pose/PoseStamped/Transform(Stamped) -> (4, 4) float64 transform (child -> parent)."""
    v = pose_to_vector(pose)
    return matrix_from_translation_quaternion(v[:3], v[3:])
