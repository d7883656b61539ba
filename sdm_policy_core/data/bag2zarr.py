"""rosbag2 bags -> a DP3 / Diffusion Policy zarr dataset, streaming, with no ROS installed.

    cfg = load_bag2zarr_config("config/bag2zarr/real_arm.yaml", ["point_cloud.num_points=512"])
    summary = convert_bags(["demo_000", "demo_001"], "demos.zarr", cfg)
    print(format_summary(summary))

Reading: `bag_reading.BagReader` (rosbags underneath) over sqlite3 and mcap bags (zstd
file/message compressed too), bare .mcap / .db3 files, split bags and directories without
metadata.yaml. Message definitions come from the bag; bags without them use the typestore of the
bag's ROS distro (Humble, Jazzy, Kilted; `typestore` in the config) plus `custom_types` (.msg
text). A topic that yields none of the messages the bag declares for it fails the bag (a dataset
never silently lacks a stream); topics that cannot be decoded but are not used are named in the
summary's warnings. ROS 1 and empty bags are refused with what to do.

Alignment: one sample per reference tick (the messages of `clock.topic`, or a fixed
`clock.rate_hz`). Every stream (point cloud, image, depth, state, action) is matched to the tick
by its rule (`bag_alignment`: nearest / previous / next within a tolerance); a tick without a
match is dropped (`missing: drop`) or reuses the stream's last value (`missing: hold`), and the
summary counts why. Actions come from a command topic or are the next sample's state
(`action.source: next_state`, position-controlled arms).

Episodes: one bag = one episode by default; or split by a marker topic (every message, or every
change of one of its fields, starts an episode) or by gaps in time; shorter than
`episodes.min_length` samples are skipped (counted). With markers, `episodes.success_field`
keeps only episodes whose last marker message says success (e.g. sdm_msgs/EpisodeStatus
`success`: failed teleoperation attempts stay out of the dataset; counted).

Transforms: a fixed `point_cloud.transform`, or with `point_cloud.target_frame` the bag's
/tf_static and /tf (read up front into `transforms.TransformBuffer`), looked up at each cloud's
header stamp (interpolated; a chain missing or a moving link with no sample within
`tf_tolerance_s` of the stamp stops the conversion with the gap). Images and depth may be
sensor_msgs/CompressedImage (decoded with OpenCV in the pool).

Memory: messages stream through per-stream buffers that are pruned behind the ticks; samples
are decoded (deserialise + conversions + transform + crop + FPS) in chunks of `chunk_size` by a
process pool and appended to zarr chunk by chunk. Nothing scales with the bag's length except
the summary's counters and the /tf samples (64 bytes each). The dataset is written into a temp
directory and swapped in at the end (`--append` copies the existing dataset there first), so a
failure never leaves a partial or damaged dataset.
"""

from __future__ import annotations

import bisect
import contextlib
import multiprocessing
import shutil
import sys
import time
import types
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.atomic import atomic_directory
from sdm_policy_core.config import ConfigError, load_dataclass, to_dict
from sdm_policy_core.conversions import (
    ConversionError,
    joint_state_to_array,
    joint_trajectory_to_array,
    matrix_from_translation_quaternion,
    pose_to_vector,
)
from sdm_policy_core.data.bag_alignment import (
    ACCEPTED,
    DUPLICATE,
    LATE,
    REORDERED,
    AlignRule,
    StreamBuffer,
)
from sdm_policy_core.data.bag_reading import (
    TYPESTORES,
    BagError,
    BagReader,
    read_metadata,
    type_closure,
)
from sdm_policy_core.data.replay_buffer import DatasetError
from sdm_policy_core.data.transforms import TransformBuffer, TransformError
from sdm_policy_core.data.zarr_writer import StreamingDatasetWriter
from sdm_policy_core.message_decoding import (
    CloudSettings,
    DecodeSettings,
    ImageSettings,
    Job,
    decode_batch,
    init_worker,
    peek_header,
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

# ------------------------------------------------------------------------------------------------
# Configuration (strict: unknown keys are errors)


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
    """A fixed transform from the cloud's frame to the dataset's frame (as tf2 would give it:
    the pose of the cloud's frame in the target frame). rotation_xyzw is a quaternion in ROS
    message order."""

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

    topic: str = "points"
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
    """sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8/mono8) or CompressedImage (jpeg, png, as
    image_transport's `compressed` writes them) -> data/img (T, H, W, 3) uint8 RGB, resized to
    width x height (area interpolation) when both are set."""

    topic: str = "image"
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
    """sensor_msgs/Image (16UC1 mm or 32FC1 m) or CompressedImage (image_transport's
    `compressedDepth` png of 16UC1 / 32FC1, or a 16-bit png of mm) -> data/depth (T, H, W)
    float32 metres, resized with nearest-neighbour interpolation when width and height are
    set."""

    topic: str = "depth"


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

    topic: str = "joint_states"
    joint_names: tuple[str, ...] | None = None
    field: str | None = None


@dataclass
class ActionConfig(StateConfig):
    """-> data/action (T, Da) float32: a command topic (`source: topic`, read like the state),
    or the state of the next sample (`source: next_state`; the last sample of every episode,
    which has none, is dropped). Commands are matched with `align: next` by default: the
    command sent in response to the observation at the tick."""

    source: str = "topic"
    topic: str = "joint_commands"
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
    """The reference ticks: one per message of `topic`, or every 1/rate_hz seconds. Neither:
    the point cloud topic (else the image, else the state topic)."""

    topic: str | None = None
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        _check(self.topic is None or self.rate_hz is None, "clock: set topic or rate_hz, not both")
        _check(
            self.rate_hz is None or self.rate_hz > 0, f"clock.rate_hz must be > 0: {self.rate_hz}"
        )


@dataclass
class EpisodeConfig:
    """split: bag (one bag = one episode) | marker (a message on marker_topic, or a change of
    its `marker_field` e.g. episode_id, starts an episode) | gap (a pause longer than gap_s
    between samples starts one). Episodes with fewer than min_length samples are skipped.
    success_field (split marker only): a boolean field of the marker messages; an episode is
    kept only when the last of its marker messages has it true (failed demos are skipped)."""

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
    """Bag2ZarrConfig from an optional YAML file and `key.sub=value` overrides, through the
    loader of `sdm train` (`config.load_dataclass`). custom_types given as paths to .msg files
    are read (relative to the file)."""
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


# ------------------------------------------------------------------------------------------------
# Reading bags


def _open_bag(path: Path, cfg: Bag2ZarrConfig) -> BagReader:
    """The bag at `path` opened for conversion; BagError for ROS 1 and empty bags."""
    bag = BagReader(path, cfg.typestore, cfg.custom_types)
    try:
        bag.require_convertible()
    except BagError:
        bag.close()
        raise
    return bag


def _dotted(msg: Any, path: str) -> Any:
    for part in path.split("."):
        try:
            msg = getattr(msg, part)
        except AttributeError:
            raise ConversionError(f"message has no field {path!r}") from None
    return msg


def message_to_vector(
    msg: Any, msgtype: str, joint_names: Sequence[str] | None, field_name: str | None
) -> np.ndarray:
    """A state / action message -> (D,) float64 (see StateConfig for the types read)."""
    if msgtype == "sensor_msgs/msg/JointState":
        return joint_state_to_array(msg, joint_names, field_name or "position")
    if field_name:
        try:
            vector = np.array(_dotted(msg, field_name), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ConversionError(f"field {field_name!r} is not numeric: {err}") from None
    elif msgtype in ("std_msgs/msg/Float64MultiArray", "std_msgs/msg/Float32MultiArray"):
        vector = np.array(msg.data, dtype=np.float64).reshape(-1)
    elif msgtype == "trajectory_msgs/msg/JointTrajectory":
        return joint_trajectory_to_array(msg, joint_names)
    elif msgtype in (
        "geometry_msgs/msg/PoseStamped",
        "geometry_msgs/msg/Pose",
        "geometry_msgs/msg/TransformStamped",
    ):
        return pose_to_vector(msg)
    elif msgtype == "sdm_msgs/msg/ActionChunk":
        dim = int(msg.action_dim)
        vector = np.array(msg.actions, dtype=np.float64).reshape(-1)[:dim]
        if dim <= 0 or len(vector) < dim:
            raise ConversionError(f"ActionChunk has {len(vector)} values, action_dim {dim}")
    else:
        raise ConversionError(f"cannot read a vector from {msgtype}; set `field`")
    if len(vector) == 0:
        raise ConversionError("empty vector")
    if not np.isfinite(vector).all():
        raise ConversionError("vector has NaN/Inf")
    return vector


# ------------------------------------------------------------------------------------------------
# Decoding pool


class _Done:
    """A finished 'future' for decoding in this process (workers=0)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Hide the __main__ module while starting worker processes: spawned children re-import
    __main__ (a user's script may import torch), but decoding needs only
    `sdm_policy_core.message_decoding`."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class _DecodePool:
    """Decodes batches of samples in `workers` spawned processes (small: no torch, no zarr);
    workers=0 decodes in this process."""

    BATCH = 16

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: ProcessPoolExecutor | None = None
        self._typedefs: dict | None = None

    def configure(self, typedefs: dict) -> None:
        """(Re)start the workers with these message definitions (when they changed)."""
        if typedefs == self._typedefs:
            return
        self._typedefs = typedefs
        if self.workers <= 0:
            init_worker(typedefs)
            return
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(typedefs,),
        )
        with _bare_main():  # each submit starts one more worker while none is idle
            warm_up = [
                self._executor.submit(decode_batch, [], DecodeSettings())
                for _ in range(self.workers)
            ]
            for future in warm_up:
                self._result(future)

    @staticmethod
    def _result(future: Future | _Done) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as err:
            raise BagError(
                f"a decoding worker process died ({err}); run with --workers 0 to see the "
                f"error in this process"
            ) from None

    def submit(self, jobs: list[Job], settings: DecodeSettings) -> list[Future | _Done]:
        batches = [jobs[i : i + self.BATCH] for i in range(0, len(jobs), self.BATCH)]
        if self._executor is None:
            return [_Done(decode_batch(b, settings)) for b in batches]
        return [self._executor.submit(decode_batch, b, settings) for b in batches]

    def results(self, futures: list[Future | _Done]) -> list:
        return [r for future in futures for r in self._result(future)]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


# ------------------------------------------------------------------------------------------------
# Statistics


@dataclass
class _Stats:
    messages: Counter = field(default_factory=Counter)
    issues: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    held: Counter = field(default_factory=Counter)
    first_stamp: dict[str, int] = field(default_factory=dict)  # of the current bag
    last_stamp: dict[str, int] = field(default_factory=dict)
    ticks: int = 0
    samples: int = 0
    clouds: int = 0
    episodes: int = 0
    episodes_skipped: int = 0
    episodes_failed: int = 0
    episode_lengths: list[int] = field(default_factory=list)
    kept_intervals: int = 0  # between consecutive kept ticks of an episode
    kept_span_ns: int = 0

    intervals: Counter = field(default_factory=Counter)
    span_ns: Counter = field(default_factory=Counter)
    bag_counts: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def seen(self, topic: str, stamp: int) -> None:
        self.messages[topic] += 1
        self.bag_counts[topic] += 1
        first = self.first_stamp.get(topic)
        self.first_stamp[topic] = stamp if first is None else min(first, stamp)
        self.last_stamp[topic] = max(self.last_stamp.get(topic, stamp), stamp)

    def end_bag(self) -> None:
        """Fold this bag's per-topic spans into the rates (gaps between bags do not count)."""
        for topic, count in self.bag_counts.items():
            self.intervals[topic] += count - 1
            self.span_ns[topic] += self.last_stamp[topic] - self.first_stamp[topic]
        self.bag_counts.clear()
        self.first_stamp.clear()
        self.last_stamp.clear()

    def rates(self) -> dict[str, float]:
        """Messages per second of every topic, over the time each bag spans."""
        return {
            topic: round(self.intervals[topic] / (self.span_ns[topic] / NS), 3)
            if self.span_ns[topic] > 0
            else 0.0
            for topic in sorted(self.messages)
        }


# ------------------------------------------------------------------------------------------------
# One bag


@dataclass
class _Stream:
    name: str  # point_cloud | img | depth | state | action | clock
    topic: str
    buffer: StreamBuffer
    kind: str  # heavy | vector | clock
    stamp: str
    hold: bool = False
    primary: bool = True  # counts the topic's message issues (a topic may feed two streams)
    joint_names: list[str] | None = None
    field: str | None = None
    dim: int | None = None
    last: Any = None


@dataclass
class _Sample:
    stamp: int
    values: dict[str, Any]


class _BagConversion:
    """Streams one bag through alignment into episodes of the writer."""

    def __init__(
        self,
        bag: BagReader,
        cfg: Bag2ZarrConfig,
        writer: StreamingDatasetWriter,
        pool: _DecodePool,
        stats: _Stats,
        progress: Callable[[int], None],
    ) -> None:
        self.bag, self.cfg, self.writer, self.pool, self.stats = bag, cfg, writer, pool, stats
        self.progress = progress
        self.reorder_ns = round(cfg.reorder_window_s * NS)
        self.max_buffer_bytes = int(cfg.max_buffer_mb * 2**20)
        self.max_pending_ticks = max(4 * cfg.chunk_size, 256)
        self.streams: list[_Stream] = []
        self.by_topic: dict[str, list[_Stream]] = {}
        self._setup_streams()
        self.clock: _Stream | None = None
        self.period_ns: int | None = None
        self._setup_clock()
        if cfg.episodes.split == "marker":
            bag.resolve(cfg.episodes.marker_topic, "episodes.marker_topic")
        self.tf_topics: list[tuple[str, bool]] = []  # (bag topic, static)
        if cfg.point_cloud is not None and cfg.point_cloud.target_frame:
            self.tf_topics = self._resolve_tf_topics()
        self.boundaries: list[int] = []
        self.succeeded: set[int] = set()  # segments whose last marker says success
        self.tf: TransformBuffer | None = None
        self.settings = self._decode_settings()
        # episode state
        self.last_tick: int | None = None
        self.next_rate_tick: int | None = None
        self.segment: int | None = None
        self.last_kept: int | None = None
        self.pending: list[_Sample] = []
        self.inflight: deque[tuple[list[tuple[np.ndarray, np.ndarray]], list]] = deque()
        self.image_shapes: dict[str, tuple[int, ...]] = {}

    # -- set-up ----------------------------------------------------------------------------------

    def _add_stream(self, stream: _Stream) -> None:
        siblings = self.by_topic.setdefault(stream.topic, [])
        stream.primary = not siblings
        siblings.append(stream)
        self.streams.append(stream)

    def _stamp_source(self, scfg: StreamConfig) -> str:
        return scfg.stamp or self.cfg.stamp

    def _setup_streams(self) -> None:
        cfg, bag = self.cfg, self.bag
        heavy = (
            ("point_cloud", cfg.point_cloud, [POINT_CLOUD_TYPE]),
            ("img", cfg.image, IMAGE_TYPES),
            ("depth", cfg.depth, IMAGE_TYPES),
        )
        for name, scfg, msgtypes in heavy:
            if scfg is None:
                continue
            topic = bag.resolve(scfg.topic, f"{name} topic", msgtypes)
            stream = _Stream(
                name,
                topic,
                StreamBuffer(scfg.rule(), self.reorder_ns),
                "heavy",
                self._stamp_source(scfg),
                hold=scfg.missing == "hold",
            )
            self._add_stream(stream)
        vectors: list[tuple[str, StateConfig]] = [("state", cfg.state)]
        if cfg.action.source == "topic":
            vectors.append(("action", cfg.action))
        for name, scfg in vectors:
            topic = bag.resolve(scfg.topic, f"{name} topic")
            msgtype = bag.topics[topic].msgtype
            if msgtype not in VECTOR_TYPES and not scfg.field:
                raise BagError(
                    f"bag {bag.path}: {name} topic {topic} has type {msgtype}; {name} reads "
                    f"{', '.join(VECTOR_TYPES)}, or set {name}.field to a numeric field"
                )
            stream = _Stream(
                name,
                topic,
                StreamBuffer(scfg.rule(), self.reorder_ns),
                "vector",
                self._stamp_source(scfg),
                hold=scfg.missing == "hold",
                joint_names=list(scfg.joint_names) if scfg.joint_names else None,
                field=scfg.field,
            )
            self._add_stream(stream)
        self.bag.ensure_types({self.bag.topics[s.topic].msgtype for s in self.streams})

    def _resolve_tf_topics(self) -> list[tuple[str, bool]]:
        """The configured tf topics the bag has; BagError when it has none of them."""
        pc = self.cfg.point_cloud
        found = []
        for topic, static in pc.tf_topics():
            name = self.bag.find(topic)
            if name is not None:
                role = "point_cloud.tf_static_topic" if static else "point_cloud.tf_topic"
                found.append((self.bag.resolve(name, role, [TF_TYPE]), static))
        if not found:
            wanted = " or ".join(topic for topic, _ in pc.tf_topics())
            raise BagError(
                f"bag {self.bag.path} has no {wanted} topic for point_cloud.target_frame "
                f"{pc.target_frame!r}; its topics are: {self.bag.listing() or 'none'} (set "
                f"point_cloud.tf_topic / tf_static_topic, or a fixed point_cloud.transform)"
            )
        return found

    def _setup_clock(self) -> None:
        cfg = self.cfg
        if cfg.clock.rate_hz is not None:
            self.period_ns = round(NS / cfg.clock.rate_hz)
            return
        if cfg.clock.topic is not None:
            topic = self.bag.resolve(cfg.clock.topic, "clock topic")
            stamp = self.cfg.stamp
        else:
            first = self.streams[0]  # point cloud, else image (setup order)
            topic, stamp = first.topic, first.stamp
        self.bag.ensure_types([self.bag.topics[topic].msgtype])
        self.clock = _Stream(
            "clock",
            topic,
            StreamBuffer(AlignRule("previous", None), self.reorder_ns),
            "clock",
            stamp,
        )
        siblings = self.by_topic.setdefault(topic, [])
        self.clock.primary = not siblings
        siblings.append(self.clock)

    def _decode_settings(self) -> DecodeSettings:
        cfg = self.cfg
        cloud = image = depth = None
        if cfg.point_cloud is not None:
            pc = cfg.point_cloud
            cloud = CloudSettings(
                POINT_CLOUD_TYPE, pc.num_points, pc.channels, pc.crop_low, pc.crop_high, pc.seed
            )
        types = {s.name: self.bag.topics[s.topic].msgtype for s in self.streams}
        if cfg.image is not None:
            image = ImageSettings(types["img"], "rgb", cfg.image.size())
        if cfg.depth is not None:
            depth = ImageSettings(types["depth"], "depth", cfg.depth.size())
        return DecodeSettings(cloud, image, depth)

    def _stamp(self, stream: _Stream, msgtype: str, receive_ns: int, raw: bytes) -> int:
        if stream.stamp == "header" and self.bag.has_header(msgtype):
            stamp, _ = peek_header(raw)
            if stamp > 0:
                return stamp
            self.stats.issues[f"{stream.topic}: zero header stamp (receive time used)"] += 1
        return receive_ns

    def _prepass(self) -> None:
        """Read the small topics needed up front: episode markers and /tf_static + /tf."""
        cfg = self.cfg
        if cfg.episodes.split == "marker":
            topic = self.bag.resolve(cfg.episodes.marker_topic, "episodes.marker_topic")
            msgtype = self.bag.topics[topic].msgtype
            self.bag.ensure_types([msgtype])
            previous: Any = object()
            stamps = []
            outcomes: list[tuple[int, bool]] = []  # (stamp, success) of every marker message
            has_header = cfg.stamp == "header" and self.bag.has_header(msgtype)
            fields = {
                key: name
                for key, name in (
                    ("marker_field", cfg.episodes.marker_field),
                    ("success_field", cfg.episodes.success_field),
                )
                if name
            }
            for _, _, receive_ns, raw in self.bag.messages([topic]):
                values = {}
                if fields:
                    try:
                        msg = self.bag.deserialize(raw, msgtype)
                    except ConversionError as err:
                        raise BagError(f"bag {self.bag.path}: marker {topic}: {err}") from None
                for key, name in fields.items():
                    try:
                        values[key] = _dotted(msg, name)
                    except ConversionError as err:
                        raise BagError(
                            f"bag {self.bag.path}: marker {topic}: {err}; set "
                            f"episodes.{key} to a field of {msgtype}"
                        ) from None
                try:
                    stamp = peek_header(raw)[0] if has_header else receive_ns
                except ConversionError as err:
                    self.stats.issues[f"{topic}: {err}, dropped"] += 1
                    continue
                stamp = stamp or receive_ns
                if cfg.episodes.success_field:
                    outcomes.append((stamp, bool(values["success_field"])))
                if cfg.episodes.marker_field:
                    if values["marker_field"] == previous:
                        continue
                    previous = values["marker_field"]
                stamps.append(stamp)
            self.boundaries = sorted(set(stamps))
            last: dict[int, bool] = {}
            for stamp, success in sorted(outcomes, key=lambda o: o[0]):
                last[self._segment_of(stamp)[0]] = success
            self.succeeded = {segment for segment, success in last.items() if success}
        if self.tf_topics:
            self.bag.ensure_types([TF_TYPE])
            self.tf = TransformBuffer()
            static = dict(self.tf_topics)
            for topic, msgtype, _, raw in self.bag.messages(list(static)):
                try:
                    self.tf.add_message(self.bag.deserialize(raw, msgtype), static[topic], topic)
                except ConversionError as err:
                    self.stats.issues[f"{topic}: {str(err)[:120]}"] += 1

    def _cloud_transforms(self, clouds: list[tuple[bytes, str, int]]) -> list[np.ndarray | None]:
        """The 4x4 transform of every cloud (raw, frame, stamp) into the dataset's frame: the
        fixed one, or the bag's at each cloud's stamp; None without either."""
        pc = self.cfg.point_cloud
        if pc.transform is not None:
            return [pc.transform.matrix()] * len(clouds)
        if self.tf is None:
            return [None] * len(clouds)
        out: list[np.ndarray | None] = [None] * len(clouds)
        by_frame: dict[str, list[int]] = {}
        for i, (_, frame, _) in enumerate(clouds):
            by_frame.setdefault(frame, []).append(i)
        tolerance = round(pc.tf_tolerance_s * NS)
        for frame, indices in by_frame.items():
            stamps = [clouds[i][2] for i in indices]
            try:
                matrices = self.tf.lookup_many(pc.target_frame, frame, stamps, tolerance)
            except TransformError as err:
                raise BagError(
                    f"bag {self.bag.path}: no transform from the cloud's frame {frame!r} to "
                    f"{pc.target_frame!r} in {', '.join(t for t, _ in self.tf_topics)}: {err} "
                    f"(point_cloud.tf_tolerance_s is {pc.tf_tolerance_s:g})"
                ) from None
            for i, matrix in zip(indices, matrices, strict=True):
                out[i] = matrix
        return out

    # -- streaming -------------------------------------------------------------------------------

    def _check_read(self, topics: Sequence[str]) -> None:
        """A topic that yielded none of the messages the bag declares for it fails the bag (a
        dataset never silently lacks a stream); fewer than declared is a warning."""
        path = self.bag.path
        for topic, (read, declared) in self.bag.shortfalls(topics).items():
            if read == 0:
                raise BagError(
                    f"bag {path}: topic {topic} yielded none of its {declared} messages (the "
                    f"bag's index and its data disagree; see `sdm bag info {path}`)"
                )
            self.stats.warnings.append(f"bag {path}: {topic}: {read} of {declared} messages read")
        self.bag.read_counts.clear()

    def run(self) -> None:
        left_out = self.bag.undecodable()  # topics used were checked when resolved
        if left_out:
            self.stats.warnings.append(
                f"bag {self.bag.path}: left out {len(left_out)} topic"
                f"{'s' if len(left_out) > 1 else ''} whose messages cannot be decoded: "
                + "; ".join(f"{topic} ({problem})" for topic, problem in left_out.items())
            )
        self.bag.read_counts.clear()
        self._prepass()
        self._check_read(list(self.bag.read_counts))
        topics = list(self.by_topic)
        for topic, msgtype, receive_ns, raw in self.bag.messages(topics):
            self.progress(1)
            first_stamp = None
            for stream in self.by_topic[topic]:
                try:
                    stamp = self._stamp(stream, msgtype, receive_ns, raw)
                except ConversionError as err:
                    self._issue(stream, f"{err}, dropped")
                    continue
                first_stamp = stamp if first_stamp is None else first_stamp
                self._add(stream, msgtype, stamp, raw)
            self.stats.seen(topic, receive_ns if first_stamp is None else first_stamp)
            self._pump(final=False)
        for stream in self._all_streams():
            stream.buffer.finished = True
        self._pump(final=True)
        self._end_episode()
        self.stats.end_bag()
        self._check_read(topics)

    def _all_streams(self) -> list[_Stream]:
        return self.streams + ([self.clock] if self.clock is not None else [])

    def _issue(self, stream: _Stream, what: str) -> None:
        if stream.primary:
            self.stats.issues[f"{stream.topic}: {what}"] += 1

    def _add(self, stream: _Stream, msgtype: str, stamp: int, raw: bytes) -> None:
        size = 0
        if stream.kind == "clock":
            if self.last_tick is not None and stamp <= self.last_tick:
                self._issue(stream, "late (stamp behind the converted ticks), dropped")
                return
            value: Any = None
        elif stream.kind == "heavy":
            frame, tf_stamp = "", stamp
            if stream.name == "point_cloud":  # transformed at its header stamp, as tf2 does
                try:
                    header_stamp, frame = peek_header(raw)
                except ConversionError as err:
                    self._issue(stream, f"{err}, dropped")
                    return
                tf_stamp = header_stamp or stamp
            value, size = (bytes(raw), frame, tf_stamp), len(raw)
        else:
            try:
                msg = self.bag.deserialize(raw, msgtype)
                if stream.joint_names is None and msgtype == "sensor_msgs/msg/JointState":
                    stream.joint_names = [str(n) for n in msg.name]  # the first message's order
                vector = message_to_vector(msg, msgtype, stream.joint_names, stream.field)
            except ConversionError as err:
                self._issue(stream, f"{str(err)[:120]}, dropped")
                return
            if stream.dim is None:
                stream.dim = len(vector)
            elif len(vector) != stream.dim:
                self._issue(stream, f"vector of length {len(vector)} != {stream.dim}, dropped")
                return
            value = vector
        status = stream.buffer.add(stamp, value, size)
        if status == DUPLICATE:
            self._issue(stream, "duplicate stamp, dropped")
        elif status == LATE:
            self._issue(stream, "stamp older than the reorder window, dropped")
        elif status == REORDERED:
            self._issue(stream, "non-monotonic stamp, reordered")
        else:
            assert status == ACCEPTED

    def _buffered_bytes(self) -> int:
        return sum(s.buffer.nbytes for s in self.streams)

    def _next_tick(self, final: bool) -> int | None:
        if self.clock is not None:
            stamps = self.clock.buffer.stamps
            return stamps[0] if stamps else None
        # fixed rate: from the first time every stream has data to the last
        if self.next_rate_tick is None:
            firsts = [s.buffer.first_seen for s in self.streams]
            if any(f is None for f in firsts):
                return None
            self.next_rate_tick = max(firsts)
        if final:
            ends = [s.buffer.max_seen for s in self.streams]
            if any(e is None for e in ends) or self.next_rate_tick > min(ends):
                return None
        return self.next_rate_tick

    def _pump(self, final: bool) -> None:
        while True:
            t = self._next_tick(final)
            if t is None:
                if self._buffered_bytes() > self.max_buffer_bytes:
                    largest = max(self.streams, key=lambda s: s.buffer.nbytes)
                    largest.buffer.evict_oldest()
                    self._issue(largest, "evicted unaligned (max_buffer_mb reached)")
                    continue
                return
            ready = final or (
                all(s.buffer.ready(t) for s in self.streams)
                and (self.clock is None or self.clock.buffer.ready(t))
            )
            if not ready:
                over = self._buffered_bytes() > self.max_buffer_bytes or (
                    self.clock is not None and len(self.clock.buffer) > self.max_pending_ticks
                )
                if not over:
                    return
                self.stats.issues["alignment forced early (max_buffer_mb reached)"] += 1
            self._emit(t)
            if self.clock is not None:
                self.clock.buffer.drop_through(t)
            else:
                self.next_rate_tick = t + self.period_ns

    def _segment_of(self, t: int) -> tuple[int, float, float]:
        i = bisect.bisect_right(self.boundaries, t)
        low = self.boundaries[i - 1] if i > 0 else float("-inf")
        high = self.boundaries[i] if i < len(self.boundaries) else float("inf")
        return i, low, high

    def _emit(self, t: int) -> None:
        """Align every stream to tick t and queue the sample (or count why it is dropped)."""
        if self.last_tick is not None and t <= self.last_tick:
            return
        self.last_tick = t
        self.stats.ticks += 1
        segment, low, high = self._segment_of(t)
        if self.segment is not None and segment != self.segment:
            self._end_episode()
        self.segment = segment
        values: dict[str, Any] = {}
        dropped = None
        for stream in self.streams:
            index = stream.buffer.select(t, low, high)
            if index is not None:
                values[stream.name] = stream.buffer.values[index]
            elif stream.hold and stream.last is not None:
                values[stream.name] = stream.last
                self.stats.held[stream.name] += 1
            else:
                dropped = dropped or (
                    f"no {stream.name} message ({stream.topic}) within tolerance "
                    f"({stream.buffer.rule.rule})"
                )
        for stream in self.streams:
            stream.buffer.prune(t)
        if dropped is not None:
            self.stats.dropped[dropped] += 1
            return
        for stream in self.streams:
            stream.last = values[stream.name]
        gap = round(self.cfg.episodes.gap_s * NS)
        if (
            self.cfg.episodes.split == "gap"
            and self.last_kept is not None
            and (t - self.last_kept > gap)
        ):
            self._end_episode()
        if self.last_kept is not None:
            self.stats.kept_intervals += 1
            self.stats.kept_span_ns += t - self.last_kept
        self.last_kept = t
        self.pending.append(_Sample(t, values))
        if len(self.pending) > self.cfg.chunk_size:
            self._submit(final=False)

    # -- decoding and writing --------------------------------------------------------------------

    def _submit(self, final: bool) -> None:
        """Send the first chunk of pending samples (all when `final`) to the decoding pool."""
        count = len(self.pending) if final else self.cfg.chunk_size
        samples, self.pending = self.pending[:count], self.pending[count:]
        next_state = self.cfg.action.source == "next_state"
        small: list[tuple[np.ndarray, np.ndarray]] = []
        kept: list[_Sample] = []
        for i, sample in enumerate(samples):
            values = sample.values
            if next_state:
                following = samples[i + 1] if i + 1 < len(samples) else None
                if following is None and self.pending:
                    following = self.pending[0]
                if following is None:
                    self.stats.dropped["last sample of an episode (no next state for action)"] += 1
                    continue
                action = following.values["state"]
            else:
                action = values["action"]
            kept.append(sample)
            small.append((values["state"], action))
        if not kept:
            return
        transforms: list[np.ndarray | None] = [None] * len(kept)
        if self.cfg.point_cloud is not None:
            transforms = self._cloud_transforms([s.values["point_cloud"] for s in kept])
        jobs: list[Job] = []
        for sample, transform in zip(kept, transforms, strict=True):
            values = sample.values
            jobs.append(
                (
                    values["point_cloud"][0] if "point_cloud" in values else None,
                    transform,
                    values["img"][0] if "img" in values else None,
                    values["depth"][0] if "depth" in values else None,
                )
            )
        self.inflight.append((small, self.pool.submit(jobs, self.settings)))
        while len(self.inflight) > 3:
            self._complete_oldest()

    def _complete_oldest(self) -> None:
        small, futures = self.inflight.popleft()
        results = self.pool.results(futures)
        block: dict[str, list[np.ndarray]] = {}
        for (state, action), result in zip(small, results, strict=True):
            if isinstance(result, str):
                self.stats.dropped[result] += 1
                continue
            reason = None
            for key in ("img", "depth"):
                if key in result:
                    shape = self.image_shapes.setdefault(key, result[key].shape)
                    if result[key].shape != shape:
                        reason = (
                            f"{key}: size {result[key].shape[1]}x{result[key].shape[0]} differs "
                            f"from the first ({shape[1]}x{shape[0]}); set width/height to resize"
                        )
            if reason:
                self.stats.dropped[reason] += 1
                continue
            for key, value in result.items():
                block.setdefault(key, []).append(value)
            block.setdefault("state", []).append(state)
            block.setdefault("action", []).append(action)
        if not block:
            return
        arrays = {k: np.stack(v) for k, v in block.items()}
        arrays["state"] = arrays["state"].astype(np.float32)
        arrays["action"] = arrays["action"].astype(np.float32)
        try:
            self.writer.append(arrays)
        except DatasetError as err:
            raise DatasetError(f"bag {self.bag.path}: {err}") from None
        self.stats.samples += len(arrays["state"])
        if self.settings.cloud is not None:
            self.stats.clouds += len(results)

    def _end_episode(self) -> None:
        """Flush the open episode; keep it if long enough."""
        if self.pending:
            self._submit(final=True)
        while self.inflight:
            self._complete_oldest()
        length = self.writer.episode_length
        failed = bool(self.cfg.episodes.success_field) and self.segment not in self.succeeded
        if length > 0:
            if failed:
                self.writer.discard_episode()
                self.stats.samples -= length
                self.stats.episodes_failed += 1
                reason = f"episode failed ({self.cfg.episodes.success_field} not true at its end)"
                self.stats.dropped[reason] += length
            elif length < self.cfg.episodes.min_length:
                self.writer.discard_episode()
                self.stats.samples -= length
                self.stats.episodes_skipped += 1
                self.stats.dropped[
                    f"episode shorter than episodes.min_length={self.cfg.episodes.min_length}"
                ] += length
            else:
                self.writer.end_episode()
                self.stats.episodes += 1
                self.stats.episode_lengths.append(length)
        for stream in self.streams:
            stream.last = None
        self.last_kept = None


# ------------------------------------------------------------------------------------------------
# Top level


def _typedefs_for_workers(bag: BagReader, cfg: Bag2ZarrConfig) -> dict:
    needed = []
    if cfg.point_cloud is not None:
        needed.append(POINT_CLOUD_TYPE)
    for scfg in (cfg.image, cfg.depth):
        if scfg is not None:
            needed.append(bag.topics[bag.resolve(scfg.topic, "image topic", IMAGE_TYPES)].msgtype)
    needed = sorted(set(needed))
    bag.ensure_types(needed)
    return type_closure(bag.typestore.fielddefs, needed)


def _check_output(out: Path, append: bool, overwrite: bool) -> None:
    is_zarr = out.is_dir() and ((out / ".zgroup").exists() or (out / "zarr.json").exists())
    if append:
        if not out.exists():
            raise DatasetError(f"--append: {out} does not exist (omit --append to create it)")
        if not is_zarr:
            raise DatasetError(f"--append: {out} is not a zarr dataset directory")
    elif out.exists():
        if not overwrite:
            raise DatasetError(
                f"{out} exists; pass --append to add episodes or --overwrite to replace it"
            )
        if not is_zarr:
            raise DatasetError(f"{out} exists and is not a zarr dataset; refusing to replace it")


def convert_bags(
    bags: Sequence[str | Path],
    out: str | Path,
    cfg: Bag2ZarrConfig | None = None,
    append: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Convert rosbag2 bags into the zarr dataset `out`; returns the summary (see
    `format_summary`). Raises BagError (bad bag, missing topic, no samples), DatasetError
    (output problems) or ConfigError; on any error nothing is written and an existing dataset
    is untouched."""
    cfg = cfg or Bag2ZarrConfig()
    paths = [Path(b) for b in bags]
    if not paths:
        raise BagError("no bag given")
    out = Path(out)
    _check_output(out, append, overwrite)
    started = time.perf_counter()
    # Fail fast: every bag opens and has the configured topics before anything is converted
    # (except file-compressed bags, which rosbags decompresses on open: checked when converted).
    total = 0
    for path in paths:
        if str(read_metadata(path).get("compression_mode", "")).lower() == "file":
            info = read_metadata(path)
            total += int(info.get("message_count") or 0)
            continue
        with _open_bag(path, cfg) as bag:
            topics = _BagConversion(
                bag, cfg, None, _DecodePool(0), _Stats(), lambda n: None
            ).by_topic
            total += sum(bag.topics[t].declared or 0 for t in topics)
    stats = _Stats()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="msg", desc="bag2zarr", file=sys.stderr, smoothing=0.1)
    pool = _DecodePool(cfg.workers)
    try:
        with atomic_directory(out) as tmp:
            if append:
                shutil.copytree(out, tmp, dirs_exist_ok=True)
            writer = StreamingDatasetWriter(tmp)
            for path in paths:
                with _open_bag(path, cfg) as bag:
                    pool.configure(_typedefs_for_workers(bag, cfg))
                    bar_update = bar.update if bar is not None else (lambda n: None)
                    _BagConversion(bag, cfg, writer, pool, stats, bar_update).run()
            if stats.samples == 0:
                reasons = dict(stats.dropped.most_common(5))
                raise BagError(
                    f"no sample could be converted from {[str(p) for p in paths]}; dropped: "
                    f"{reasons or 'none (no reference ticks)'}; message issues: "
                    f"{dict(stats.issues.most_common(5))}"
                )
            writer.close()
            dataset = {
                "episodes": len(writer.episode_ends),
                "steps": writer.n_steps,
                "keys": {k: list(shape) for k, (shape, _) in writer.shapes().items()},
            }
    finally:
        pool.close()
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - started
    sample_rate = 0.0
    if stats.kept_span_ns > 0:  # kept samples per second within episodes
        sample_rate = round(stats.kept_intervals / (stats.kept_span_ns / NS), 3)
    return {
        "bags": [str(p) for p in paths],
        "out": str(out),
        "append": append,
        "episodes_written": stats.episodes,
        "episodes_skipped_short": stats.episodes_skipped,
        "episodes_skipped_failed": stats.episodes_failed,
        "episode_lengths": stats.episode_lengths,
        "samples_written": stats.samples,
        "samples_dropped": dict(stats.dropped.most_common()),
        "samples_held": dict(stats.held),
        "ticks": stats.ticks,
        "messages": dict(sorted(stats.messages.items())),
        "messages_total": sum(stats.messages.values()),
        "message_issues": dict(stats.issues.most_common()),
        "warnings": stats.warnings,
        "rates_hz": stats.rates(),
        "sample_rate_hz": sample_rate,
        "dataset": dataset,
        "wall_s": round(wall, 3),
        "clouds_decoded": stats.clouds,
        "clouds_per_s": round(stats.clouds / wall, 2) if wall > 0 else 0.0,
        "config": cfg.to_dict(),
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A human-readable account of a `convert_bags` summary."""
    lines = [
        f"wrote {summary['samples_written']} samples in {summary['episodes_written']} "
        f"episode{'' if summary['episodes_written'] == 1 else 's'} "
        f"to {summary['out']} ({summary['wall_s']:.1f} s, {summary['clouds_per_s']:.0f} "
        f"clouds/s); dataset now {summary['dataset']['episodes']} episodes, "
        f"{summary['dataset']['steps']} steps, keys {summary['dataset']['keys']}",
        "messages per topic (effective rate):",
    ]
    for topic, count in summary["messages"].items():
        lines.append(f"  {topic:<32} {count:>8}  {summary['rates_hz'].get(topic, 0):8.2f} Hz")
    lines.append(f"samples: {summary['ticks']} ticks, {summary['sample_rate_hz']:.2f} Hz kept")
    if summary["episodes_skipped_short"]:
        lines.append(f"episodes skipped (too short): {summary['episodes_skipped_short']}")
    if summary["episodes_skipped_failed"]:
        lines.append(f"episodes skipped (failed): {summary['episodes_skipped_failed']}")
    lines += [f"warning: {warning}" for warning in summary.get("warnings", [])]
    for title, key in (
        ("samples dropped", "samples_dropped"),
        ("samples held (missing: hold)", "samples_held"),
        ("message issues", "message_issues"),
    ):
        if summary[key]:
            lines.append(f"{title}:")
            lines += [f"  {count:>8}  {reason}" for reason, count in summary[key].items()]
    return "\n".join(lines)


__all__ = [
    "ActionConfig",
    "Bag2ZarrConfig",
    "BagError",
    "ClockConfig",
    "DepthConfig",
    "EpisodeConfig",
    "ImageConfig",
    "PointCloudConfig",
    "StateConfig",
    "StreamConfig",
    "TransformConfig",
    "convert_bags",
    "format_summary",
    "load_bag2zarr_config",
    "message_to_vector",
]
