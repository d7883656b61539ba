# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Serialised (CDR) sensor messages -> the arrays a dataset stores, in worker processes.

`sdm bag2zarr` hands batches of raw point clouds / images to a process pool; this module is
what the workers run. It imports neither torch nor zarr so that the workers stay small, and it
uses the same conversions (`sdm_policy_core.conversions`) and cloud preprocessing
(`sdm_policy_core.pointcloud.preprocess_cloud`) as the policy node.

    init_worker(typedefs)                              # once per process (rosbags type defs)
    results, seconds = decode_batch(jobs, settings)    # a dict of arrays or a reason per job,
                                                       # and the seconds spent per stage
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

from sdm_policy_core.conversions import (
    ConversionError,
    compressed_image_to_depth,
    compressed_image_to_rgb,
    image_to_depth,
    image_to_rgb,
    pointcloud2_to_array,
)
from sdm_policy_core.keys import ARRAY_DEPTH, ARRAY_IMAGE, ARRAY_POINT_CLOUD
from sdm_policy_core.pointcloud import preprocess_cloud

_TYPESTORE: Any = None


def init_worker(typedefs: dict) -> None:
    """Register the message definitions (a rosbags Typesdict) this process deserialises."""
    global _TYPESTORE
    store = get_typestore(Stores.EMPTY)
    store.register(typedefs)
    _TYPESTORE = store


def peek_header(raw: bytes | memoryview) -> tuple[int, str]:
    """Read (stamp in ns, frame_id) of a CDR message whose first field is a std_msgs/Header.

    Read from the bytes without deserialising the message (clouds are ~100 kB).
    """
    if len(raw) < 16:
        raise ConversionError(f"message of {len(raw)} bytes is too short for a Header")
    order = "<" if raw[1] & 1 else ">"  # CDR encapsulation: 0x0001 little-, 0x0000 big-endian
    sec, nanosec, length = struct.unpack_from(order + "iII", raw, 4)
    if nanosec >= 1_000_000_000 or 16 + length > len(raw):
        raise ConversionError("message header is corrupt (nanosec or frame_id length)")
    frame = bytes(raw[16 : 16 + max(length - 1, 0)]).decode("utf-8", errors="replace")
    return sec * 1_000_000_000 + nanosec, frame


@dataclass(frozen=True)
class CloudSettings:
    """Point cloud -> (num_points, channels) float32: finite -> transform -> crop -> FPS."""

    msgtype: str
    num_points: int
    channels: int
    low: tuple[float, float, float] | None
    high: tuple[float, float, float] | None
    seed: int = 0


@dataclass(frozen=True)
class ImageSettings:
    """Decode an Image -> (H, W, 3) uint8 RGB (kind 'rgb') or (H, W) float32 metres ('depth').

    Resized to `size` (width, height) when given (area for colour, nearest for depth).
    """

    msgtype: str
    kind: str
    size: tuple[int, int] | None = None


@dataclass(frozen=True)
class DecodeSettings:
    """What to decode for every job of a batch (None: the stream is not converted)."""

    cloud: CloudSettings | None = None
    image: ImageSettings | None = None
    depth: ImageSettings | None = None


# One sample to decode: (cloud bytes, cloud 4x4 transform or None, image bytes, depth bytes).
Job = tuple[bytes | None, np.ndarray | None, bytes | None, bytes | None]


def _deserialize(raw: bytes, msgtype: str, what: str) -> Any:
    if _TYPESTORE is None:
        raise RuntimeError("init_worker() was not called in this process")
    try:
        return _TYPESTORE.deserialize_cdr(raw, msgtype)
    except Exception as err:  # rosbags raises assorted errors on corrupt bytes
        raise ConversionError(f"cannot deserialise {what} ({msgtype}): {err}") from None


def decode_cloud(
    raw: bytes,
    transform: np.ndarray | None,
    cfg: CloudSettings,
    seconds: Counter | None = None,
) -> np.ndarray:
    """Decode a raw PointCloud2 -> (num_points, channels) float32 in the target frame.

    `seconds` (optional) accumulates the time of 'cloud_decode' (deserialise, fields -> array)
    and 'cloud_fps' (transform, crop, farthest point sampling).
    """
    started = time.perf_counter()
    msg = _deserialize(raw, cfg.msgtype, "point cloud")
    points = pointcloud2_to_array(msg, channels=cfg.channels, allow_empty=True)
    if len(points) == 0:
        raise ConversionError("empty cloud (no finite point)")
    low = None if cfg.low is None else np.asarray(cfg.low, np.float32)
    high = None if cfg.high is None else np.asarray(cfg.high, np.float32)
    decoded = time.perf_counter()
    try:
        return preprocess_cloud(
            points, cfg.num_points, cfg.channels, transform, low, high, seed=cfg.seed
        )
    except ValueError:
        raise ConversionError("no point left inside the crop box") from None
    finally:
        if seconds is not None:
            seconds["cloud_decode"] += decoded - started
            seconds["cloud_fps"] += time.perf_counter() - decoded


def decode_image(raw: bytes, cfg: ImageSettings) -> np.ndarray:
    """Decode a raw Image or CompressedImage (jpeg, png, compressedDepth), resized if asked.

    -> (H, W, 3) uint8 RGB or (H, W) float32 depth (m), resized if asked.
    """
    msg = _deserialize(raw, cfg.msgtype, "image")
    if cfg.msgtype.endswith("/CompressedImage"):
        rgb, depth = compressed_image_to_rgb, compressed_image_to_depth
    else:
        rgb, depth = image_to_rgb, image_to_depth
    array = rgb(msg) if cfg.kind == "rgb" else depth(msg)
    if cfg.size is not None and (array.shape[1], array.shape[0]) != tuple(cfg.size):
        import cv2  # only when resizing: keeps workers that do not resize lighter

        interpolation = cv2.INTER_AREA if cfg.kind == "rgb" else cv2.INTER_NEAREST
        array = cv2.resize(array, tuple(int(v) for v in cfg.size), interpolation=interpolation)
    return array


def decode_job(
    job: Job, settings: DecodeSettings, seconds: Counter | None = None
) -> dict[str, np.ndarray] | str:
    """Decode one sample's arrays {'point_cloud', 'img', 'depth'} (those configured).

    Or return the reason (e.g. 'point_cloud: empty cloud') it cannot be used. `seconds`
    (optional) accumulates the time per stage: cloud_decode, cloud_fps, img, depth.
    """
    cloud_raw, transform, image_raw, depth_raw = job
    out: dict[str, np.ndarray] = {}
    for key, raw, cfg in (
        (ARRAY_POINT_CLOUD, cloud_raw, settings.cloud),
        (ARRAY_IMAGE, image_raw, settings.image),
        (ARRAY_DEPTH, depth_raw, settings.depth),
    ):
        if cfg is None:
            continue
        started = time.perf_counter()
        try:
            if key == ARRAY_POINT_CLOUD:
                out[key] = decode_cloud(raw, transform, cfg, seconds)
            else:
                out[key] = decode_image(raw, cfg)
        except ConversionError as err:
            return f"{key}: {str(err)[:160]}"
        finally:
            if seconds is not None and key != ARRAY_POINT_CLOUD:
                seconds[key] += time.perf_counter() - started
    return out


def decode_batch(
    jobs: list[Job], settings: DecodeSettings
) -> tuple[list[dict[str, np.ndarray] | str], dict[str, float]]:
    """Run `decode_job` for every job (the unit of work sent to a pool process).

    Returns the results and the seconds spent per stage (see decode_job).
    """
    seconds: Counter = Counter()
    return [decode_job(job, settings, seconds) for job in jobs], dict(seconds)
