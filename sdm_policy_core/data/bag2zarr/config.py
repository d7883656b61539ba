# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""What `sdm bag2zarr` converts and how: one strict dataclass per stream and part.

Loaded from YAML with `a.b=value` overrides by the config loader of `sdm train`
(`config.load_dataclass`).

    cfg = load_bag2zarr_config("config/bag2zarr/real_arm.yaml", ["point_cloud.num_points=512"])

Unknown keys and bad values are `ConfigError`s that name the key and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.config import ConfigError, load_dataclass, to_dict
from sdm_policy_core.conversions import ConversionError, matrix_from_translation_quaternion
from sdm_policy_core.data.bag_alignment import AlignRule
from sdm_policy_core.data.bag_reading import TYPESTORES
from sdm_policy_core.keys import (
    TOPIC_DEPTH,
    TOPIC_IMAGE,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)

POINT_CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
TF_TYPE = "tf2_msgs/msg/TFMessage"
# Message types that state / action streams read without a `field` setting.
VECTOR_TYPES = (
    "sensor_msgs/msg/JointState",
    "std_msgs/msg/Float64MultiArray",
    "std_msgs/msg/Float32MultiArray",
    "trajectory_msgs/msg/JointTrajectory",
    "geometry_msgs/msg/PoseStamped",
    "geometry_msgs/msg/Pose",
    "geometry_msgs/msg/TransformStamped",
    "sdm_msgs/msg/ActionChunk",
)
STAMP_SOURCES = ("header", "receive")
NS = 1_000_000_000


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass
class StreamConfig:
    """How one topic is matched to the reference ticks.

    align: nearest | previous | next (see `bag_alignment`).
    tolerance_s: max |stamp - tick| (nearest), age (previous; null = any age) or delay (next).
    missing: drop (the sample is dropped when nothing matches) | hold (reuse the last value).
    stamp: header (header.stamp; receive time for messages without a header or a zero stamp)
        | receive (the time the recorder logged it); null = the top-level `stamp`.
    """

    topic: str = ""
    align: str = "nearest"
    tolerance_s: float | None = 0.05
    missing: str = "drop"
    stamp: str | None = None

    def __post_init__(self) -> None:
        section = type(self).__name__
        _check(bool(self.topic), f"{section}.topic must name a topic")
        _check(
            self.align in ("nearest", "previous", "next"),
            f"{section}.align must be nearest, previous or next, got {self.align!r}",
        )
        _check(
            self.tolerance_s is not None or self.align == "previous",
            f"{section}.tolerance_s is required for align={self.align} (null only for previous)",
        )
        _check(
            self.tolerance_s is None or self.tolerance_s >= 0,
            f"{section}.tolerance_s must be >= 0, got {self.tolerance_s}",
        )
        _check(
            self.missing in ("drop", "hold"),
            f"{section}.missing must be drop or hold, got {self.missing!r}",
        )
        _check(
            self.stamp is None or self.stamp in STAMP_SOURCES,
            f"{section}.stamp must be header or receive, got {self.stamp!r}",
        )

    def rule(self) -> AlignRule:
        tol = None if self.tolerance_s is None else round(self.tolerance_s * NS)
        return AlignRule(self.align, tol)


@dataclass
class TransformConfig:
    """A fixed transform from the cloud's frame to the dataset's frame.

    As tf2 would give it: the pose of the cloud's frame in the target frame. rotation_xyzw is
    a quaternion in ROS message order.
    """

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def __post_init__(self) -> None:
        _check(len(self.translation) == 3, "transform.translation must be [x, y, z] (m)")
        _check(len(self.rotation_xyzw) == 4, "transform.rotation_xyzw must be [x, y, z, w]")
        try:
            self.matrix()
        except ConversionError as err:
            raise ConfigError(f"transform: {err}") from None

    def matrix(self) -> np.ndarray:
        x, y, z, w = self.rotation_xyzw
        return matrix_from_translation_quaternion(self.translation, (w, x, y, z))


@dataclass
class PointCloudConfig(StreamConfig):
    """sensor_msgs/PointCloud2 -> data/point_cloud (T, num_points, channels) float32.

    Per cloud: NaN/Inf removed -> transform (fixed `transform`, or the bag's transform from
    header.frame_id to `target_frame` at the cloud's header stamp) -> crop box [crop_low,
    crop_high] (m, in the target frame) -> farthest point sampling to num_points (seeded).

    With target_frame, both tf2 topics are read as tf2 reads them (either may be absent, not
    both): tf_static_topic holds at every time; tf_topic (dynamic, e.g. a wrist camera's chain)
    is interpolated at each cloud's own stamp (linear translation, slerp rotation), and the
    nearest sample of every moving link must lie within tf_tolerance_s of the stamp, else the
    conversion stops with the gap (`data.transforms.TransformBuffer`). null: not read. A
    tf_topic equal to tf_static_topic (configs from before /tf was read) reads it as static.
    """

    topic: str = TOPIC_POINTS
    num_points: int = 1024
    channels: int = 3
    crop_low: tuple[float, float, float] | None = None
    crop_high: tuple[float, float, float] | None = None
    transform: TransformConfig | None = None
    target_frame: str | None = None
    tf_topic: str | None = "/tf"
    tf_static_topic: str | None = "/tf_static"
    tf_tolerance_s: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.num_points > 0, f"point_cloud.num_points must be > 0, got {self.num_points}")
        _check(self.channels in (3, 6), f"point_cloud.channels must be 3 or 6: {self.channels}")
        for name in ("crop_low", "crop_high"):
            value = getattr(self, name)
            _check(value is None or len(value) == 3, f"point_cloud.{name} must be [x, y, z]")
        _check(
            self.transform is None or self.target_frame is None,
            "point_cloud: set either transform (fixed) or target_frame (from /tf, /tf_static)",
        )
        _check(
            self.tf_tolerance_s >= 0,
            f"point_cloud.tf_tolerance_s must be >= 0 (s), got {self.tf_tolerance_s}",
        )
        _check(
            self.target_frame is None or bool(self.tf_topic or self.tf_static_topic),
            "point_cloud.target_frame needs tf_topic or tf_static_topic (both are null)",
        )

    def tf_topics(self) -> list[tuple[str, bool]]:
        """[(topic, static)] read for target_frame, static first."""
        topics = [(self.tf_static_topic, True)] if self.tf_static_topic else []
        if self.tf_topic and self.tf_topic != self.tf_static_topic:
            topics.append((self.tf_topic, False))
        return topics


@dataclass
class ImageConfig(StreamConfig):
    """sensor_msgs/Image or CompressedImage -> data/img (T, H, W, 3) uint8 RGB.

    sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8/mono8) or CompressedImage (jpeg, png, as
    image_transport's `compressed` writes them) -> data/img (T, H, W, 3) uint8 RGB, resized to
    width x height (area interpolation) when both are set.
    """

    topic: str = TOPIC_IMAGE
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            (self.width is None) == (self.height is None),
            f"{type(self).__name__}: set both width and height, or neither",
        )
        _check(
            self.width is None or (self.width > 0 and self.height > 0),
            f"{type(self).__name__}: width and height must be > 0",
        )

    def size(self) -> tuple[int, int] | None:
        return None if self.width is None else (int(self.width), int(self.height))


@dataclass
class DepthConfig(ImageConfig):
    """sensor_msgs/Image or CompressedImage -> data/depth (T, H, W) float32 metres.

    sensor_msgs/Image (16UC1 mm or 32FC1 m) or CompressedImage (image_transport's
    `compressedDepth` png of 16UC1 / 32FC1, or a 16-bit png of mm) -> data/depth (T, H, W)
    float32 metres, resized with nearest-neighbour interpolation when width and height are
    set.
    """

    topic: str = TOPIC_DEPTH


@dataclass
class StateConfig(StreamConfig):
    """-> data/state (T, Ds) float32 (`agent_pos` of the policy).

    Reads sensor_msgs/JointState (`joint_names` order; null: the first message's order),
    std_msgs/Float64MultiArray / Float32MultiArray (data), trajectory_msgs/JointTrajectory
    (first point), geometry_msgs/PoseStamped / Pose / TransformStamped ([x, y, z, qw, qx, qy,
    qz]), sdm_msgs/ActionChunk (first action), or any message with `field` naming a numeric
    sequence (dotted path, e.g. 'data' or 'command.positions').
    field for JointState: position (default), velocity or effort.
    """

    topic: str = TOPIC_JOINT_STATES
    joint_names: tuple[str, ...] | None = None
    field: str | None = None


@dataclass
class ActionConfig(StateConfig):
    """-> data/action (T, Da) float32: a command topic, or the state of the next sample.

    A command topic (`source: topic`, read like the state), or the state of the next sample
    (`source: next_state`; the last sample of every episode, which has none, is dropped).
    Commands are matched with `align: next` by default: the command sent in response to the
    observation at the tick.
    """

    source: str = "topic"
    topic: str = TOPIC_JOINT_COMMANDS
    align: str = "next"
    tolerance_s: float | None = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(
            self.source in ("topic", "next_state"),
            f"action.source must be topic or next_state, got {self.source!r}",
        )


@dataclass
class ClockConfig:
    """The reference ticks: one per message of `topic`, or every 1/rate_hz seconds.

    Neither: the point cloud topic (else the image, else the state topic).
    """

    topic: str | None = None
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        _check(self.topic is None or self.rate_hz is None, "clock: set topic or rate_hz, not both")
        _check(
            self.rate_hz is None or self.rate_hz > 0, f"clock.rate_hz must be > 0: {self.rate_hz}"
        )


@dataclass
class EpisodeConfig:
    """How a bag splits into episodes (bag, marker or gap) and which episodes are kept.

    split: bag (one bag = one episode) | marker (a message on marker_topic, or a change of
    its `marker_field` e.g. episode_id, starts an episode) | gap (a pause longer than gap_s
    between samples starts one). Episodes with fewer than min_length samples are skipped.
    success_field (split marker only): a boolean field of the marker messages; an episode is
    kept only when the last of its marker messages has it true (failed demos are skipped).
    """

    split: str = "bag"
    marker_topic: str | None = None
    marker_field: str | None = None
    success_field: str | None = None
    gap_s: float = 1.0
    min_length: int = 1

    def __post_init__(self) -> None:
        _check(
            self.split in ("bag", "marker", "gap"),
            f"episodes.split must be bag, marker or gap, got {self.split!r}",
        )
        _check(
            self.split != "marker" or bool(self.marker_topic),
            "episodes.split=marker needs episodes.marker_topic",
        )
        _check(
            self.success_field is None or self.split == "marker",
            "episodes.success_field needs episodes.split=marker (it is read from the markers)",
        )
        _check(self.gap_s > 0, f"episodes.gap_s must be > 0, got {self.gap_s}")
        _check(self.min_length >= 1, f"episodes.min_length must be >= 1: {self.min_length}")


@dataclass
class Bag2ZarrConfig:
    """Everything `sdm bag2zarr` needs besides the bag and output paths (YAML, strict).

    typestore: message definitions for bags that carry none: auto (the bag's ros_distro,
        else kilted) | humble | jazzy | kilted.
    custom_types: {'pkg/msg/Name': .msg text or the path of a .msg file}.
    stamp: header | receive, the default of every stream's `stamp`.
    image, depth: null (default) to leave them out; point_cloud: null for image-only data.
    chunk_size: samples decoded per batch of work (memory ~ a few chunks of raw messages).
    workers: decoding processes (0: decode in this process).
    reorder_window_s: how far a message's stamp may go back in time on its topic and still
        be used (later: dropped as late). Also the latency of alignment decisions.
    max_buffer_mb: raw messages held for alignment at most; beyond it alignment is forced.
    """

    typestore: str = "auto"
    custom_types: dict[str, str] = field(default_factory=dict)
    stamp: str = "header"
    clock: ClockConfig = field(default_factory=ClockConfig)
    episodes: EpisodeConfig = field(default_factory=EpisodeConfig)
    point_cloud: PointCloudConfig | None = field(default_factory=PointCloudConfig)
    image: ImageConfig | None = None
    depth: DepthConfig | None = None
    state: StateConfig = field(default_factory=StateConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    chunk_size: int = 64
    workers: int = 2
    reorder_window_s: float = 0.1
    max_buffer_mb: float = 256.0

    def __post_init__(self) -> None:
        store = self.typestore.lower().removeprefix("ros2_")
        _check(
            store == "auto" or store in TYPESTORES,
            f"typestore must be auto, humble, jazzy or kilted, got {self.typestore!r}",
        )
        self.typestore = store
        types = self.custom_types
        _check(
            isinstance(types, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in types.items()),
            "custom_types must map type names ('pkg/msg/Name') to .msg text or file paths",
        )
        _check(self.stamp in STAMP_SOURCES, f"stamp must be header or receive: {self.stamp!r}")
        _check(
            self.point_cloud is not None or self.image is not None,
            "the dataset needs point_cloud or image (both are null)",
        )
        _check(self.chunk_size >= 1, f"chunk_size must be >= 1, got {self.chunk_size}")
        _check(self.workers >= 0, f"workers must be >= 0, got {self.workers}")
        _check(self.reorder_window_s >= 0, "reorder_window_s must be >= 0")
        _check(self.max_buffer_mb > 0, "max_buffer_mb must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_bag2zarr_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> Bag2ZarrConfig:
    """Load a Bag2ZarrConfig from an optional YAML file and `key.sub=value` overrides.

    Through the loader of `sdm train` (`config.load_dataclass`). custom_types given as paths
    to .msg files are read (relative to the file).
    """
    cfg = load_dataclass(Bag2ZarrConfig, path, overrides)
    base = Path.cwd() if path is None else Path(path).parent
    for name, text in list(cfg.custom_types.items()):
        if "\n" not in text and text.strip().endswith(".msg"):
            file = Path(text).expanduser()
            file = file if file.is_absolute() else base / file
            if not file.is_file():
                raise ConfigError(f"custom_types[{name!r}]: file {file} does not exist")
            cfg.custom_types[name] = file.read_text()
    return cfg
