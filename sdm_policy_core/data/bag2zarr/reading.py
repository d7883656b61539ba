# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Reading one bag into streams: which topic feeds which stream, and what each message becomes.

Streams: point cloud, img, depth, state, action, and the reference clock; what each message
becomes in its stream's buffer.

    bag = open_bag(path, cfg)                   # BagError for ROS 1 and empty bags
    streams = BagStreams(bag, cfg, issues)      # BagError for a missing topic or a wrong type
    for topic, msgtype, receive_ns, raw in bag.messages(streams.topics()):
        streams.add(topic, msgtype, receive_ns, raw, last_tick)

Heavy streams (clouds, images) keep the raw bytes (decoded later in the pool), clouds with
their frame and header stamp for the transform; state and action become float vectors here
(`message_to_vector`). Messages that cannot be used are counted in `issues` with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.conversions import (
    ConversionError,
    joint_state_to_array,
    joint_trajectory_to_array,
    pose_to_vector,
)
from sdm_policy_core.data.bag2zarr.config import (
    IMAGE_TYPES,
    NS,
    POINT_CLOUD_TYPE,
    VECTOR_TYPES,
    Bag2ZarrConfig,
    StateConfig,
    StreamConfig,
)
from sdm_policy_core.data.bag_alignment import (
    ACCEPTED,
    DUPLICATE,
    LATE,
    REORDERED,
    AlignRule,
    StreamBuffer,
)
from sdm_policy_core.data.bag_reading import BagError, BagReader
from sdm_policy_core.keys import (
    ARRAY_ACTION,
    ARRAY_DEPTH,
    ARRAY_IMAGE,
    ARRAY_POINT_CLOUD,
    ARRAY_STATE,
)
from sdm_policy_core.message_decoding import peek_header


def open_bag(path: Path, cfg: Bag2ZarrConfig) -> BagReader:
    """Open the bag at `path` for conversion; BagError for ROS 1 and empty bags."""
    bag = BagReader(path, cfg.typestore, cfg.custom_types)
    try:
        bag.require_convertible()
    except BagError:
        bag.close()
        raise
    return bag


def field_value(msg: Any, path: str) -> Any:
    """Get the field at dotted `path` (e.g. 'command.positions') of a deserialised message."""
    for part in path.split("."):
        try:
            msg = getattr(msg, part)
        except AttributeError:
            raise ConversionError(f"message has no field {path!r}") from None
    return msg


def message_to_vector(
    msg: Any, msgtype: str, joint_names: Sequence[str] | None, field_name: str | None
) -> np.ndarray:
    """Convert a state / action message -> (D,) float64 (see StateConfig for the types read)."""
    if msgtype == "sensor_msgs/msg/JointState":
        return joint_state_to_array(msg, joint_names, field_name or "position")
    if field_name:
        try:
            vector = np.array(field_value(msg, field_name), dtype=np.float64).reshape(-1)
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


@dataclass
class Stream:
    """One configured stream: its topic, its alignment buffer and how its messages are read.

    Buffered values: heavy (cloud, image) -> (raw bytes, frame_id, header stamp ns); vector
    (state, action) -> (D,) float64; clock -> None (only the stamps are ticks).
    """

    name: str  # point_cloud | img | depth | state | action | clock
    topic: str
    buffer: StreamBuffer
    kind: str  # heavy | vector | clock
    stamp: str  # header | receive
    hold: bool = False
    primary: bool = True  # counts the topic's message issues (a topic may feed two streams)
    joint_names: list[str] | None = None
    field: str | None = None
    dim: int | None = None
    last: Any = None  # the last aligned value (missing: hold)


class BagStreams:
    """The streams of one bag and the reference clock.

    `streams`: data streams in set-up order (point cloud, img, depth, state, action);
    `clock`: a stream of ticks, or `period_ns` for a fixed rate.
    """

    def __init__(self, bag: BagReader, cfg: Bag2ZarrConfig, issues: Counter) -> None:
        self.bag, self.cfg, self.issues = bag, cfg, issues
        self.reorder_ns = round(cfg.reorder_window_s * NS)
        self.streams: list[Stream] = []
        self.by_topic: dict[str, list[Stream]] = {}
        self._setup_streams()
        self.clock: Stream | None = None
        self.period_ns: int | None = None
        self._setup_clock()

    # -- set-up ----------------------------------------------------------------------------------

    def _add_stream(self, stream: Stream) -> None:
        siblings = self.by_topic.setdefault(stream.topic, [])
        stream.primary = not siblings
        siblings.append(stream)
        self.streams.append(stream)

    def _stamp_source(self, scfg: StreamConfig) -> str:
        return scfg.stamp or self.cfg.stamp

    def _setup_streams(self) -> None:
        cfg, bag = self.cfg, self.bag
        heavy = (
            (ARRAY_POINT_CLOUD, cfg.point_cloud, [POINT_CLOUD_TYPE]),
            (ARRAY_IMAGE, cfg.image, IMAGE_TYPES),
            (ARRAY_DEPTH, cfg.depth, IMAGE_TYPES),
        )
        for name, scfg, msgtypes in heavy:
            if scfg is None:
                continue
            topic = bag.resolve(scfg.topic, f"{name} topic", msgtypes)
            stream = Stream(
                name,
                topic,
                StreamBuffer(scfg.rule(), self.reorder_ns),
                "heavy",
                self._stamp_source(scfg),
                hold=scfg.missing == "hold",
            )
            self._add_stream(stream)
        vectors: list[tuple[str, StateConfig]] = [(ARRAY_STATE, cfg.state)]
        if cfg.action.source == "topic":
            vectors.append((ARRAY_ACTION, cfg.action))
        for name, scfg in vectors:
            topic = bag.resolve(scfg.topic, f"{name} topic")
            msgtype = bag.topics[topic].msgtype
            if msgtype not in VECTOR_TYPES and not scfg.field:
                raise BagError(
                    f"bag {bag.path}: {name} topic {topic} has type {msgtype}; {name} reads "
                    f"{', '.join(VECTOR_TYPES)}, or set {name}.field to a numeric field"
                )
            stream = Stream(
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
        bag.ensure_types({bag.topics[s.topic].msgtype for s in self.streams})

    def _setup_clock(self) -> None:
        cfg = self.cfg
        if cfg.clock.rate_hz is not None:
            self.period_ns = round(NS / cfg.clock.rate_hz)
            return
        if cfg.clock.topic is not None:
            topic = self.bag.resolve(cfg.clock.topic, "clock topic")
            stamp = cfg.stamp
        else:
            first = self.streams[0]  # point cloud, else image (setup order)
            topic, stamp = first.topic, first.stamp
        self.bag.ensure_types([self.bag.topics[topic].msgtype])
        self.clock = Stream(
            "clock",
            topic,
            StreamBuffer(AlignRule("previous", None), self.reorder_ns),
            "clock",
            stamp,
        )
        siblings = self.by_topic.setdefault(topic, [])
        self.clock.primary = not siblings
        siblings.append(self.clock)

    # -- reading ---------------------------------------------------------------------------------

    def topics(self) -> list[str]:
        """Return the bag topics read into streams."""
        return list(self.by_topic)

    def all(self) -> list[Stream]:
        """Return the data streams and the clock stream (if any)."""
        return self.streams + ([self.clock] if self.clock is not None else [])

    def message_types(self) -> dict[str, str]:
        """{stream name: message type} of the data streams."""
        return {s.name: self.bag.topics[s.topic].msgtype for s in self.streams}

    def buffered_bytes(self) -> int:
        """Raw message bytes held in the data streams' buffers."""
        return sum(s.buffer.nbytes for s in self.streams)

    def issue(self, stream: Stream, what: str) -> None:
        if stream.primary:
            self.issues[f"{stream.topic}: {what}"] += 1

    def add(
        self, topic: str, msgtype: str, receive_ns: int, raw: bytes, last_tick: int | None
    ) -> int | None:
        """Put one message into the buffers of every stream its topic feeds; return its stamp.

        The stamp is None when no stream could read one. `last_tick`: the newest converted tick
        (a clock message at or behind it comes too late).
        """
        first_stamp = None
        for stream in self.by_topic[topic]:
            try:
                stamp = self._stamp(stream, msgtype, receive_ns, raw)
            except ConversionError as err:
                self.issue(stream, f"{err}, dropped")
                continue
            first_stamp = stamp if first_stamp is None else first_stamp
            self._add(stream, msgtype, stamp, raw, last_tick)
        return first_stamp

    def _stamp(self, stream: Stream, msgtype: str, receive_ns: int, raw: bytes) -> int:
        if stream.stamp == "header" and self.bag.has_header(msgtype):
            stamp, _ = peek_header(raw)
            if stamp > 0:
                return stamp
            self.issues[f"{stream.topic}: zero header stamp (receive time used)"] += 1
        return receive_ns

    def _add(
        self, stream: Stream, msgtype: str, stamp: int, raw: bytes, last_tick: int | None
    ) -> None:
        size = 0
        if stream.kind == "clock":
            if last_tick is not None and stamp <= last_tick:
                self.issue(stream, "late (stamp behind the converted ticks), dropped")
                return
            value: Any = None
        elif stream.kind == "heavy":
            frame, tf_stamp = "", stamp
            if stream.name == ARRAY_POINT_CLOUD:  # transformed at its header stamp, as tf2 does
                try:
                    header_stamp, frame = peek_header(raw)
                except ConversionError as err:
                    self.issue(stream, f"{err}, dropped")
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
                self.issue(stream, f"{str(err)[:120]}, dropped")
                return
            if stream.dim is None:
                stream.dim = len(vector)
            elif len(vector) != stream.dim:
                self.issue(stream, f"vector of length {len(vector)} != {stream.dim}, dropped")
                return
            value = vector
        status = stream.buffer.add(stamp, value, size)
        if status == DUPLICATE:
            self.issue(stream, "duplicate stamp, dropped")
        elif status == LATE:
            self.issue(stream, "stamp older than the reorder window, dropped")
        elif status == REORDERED:
            self.issue(stream, "non-monotonic stamp, reordered")
        else:
            assert status == ACCEPTED

    def check_read(self, topics: Sequence[str], warnings: list[str]) -> None:
        """Fail the bag for a topic that yielded none of the messages the bag declares for it.

        A dataset never silently lacks a stream; fewer than declared is a warning.
        """
        path = self.bag.path
        for topic, (read, declared) in self.bag.shortfalls(topics).items():
            if read == 0:
                raise BagError(
                    f"bag {path}: topic {topic} yielded none of its {declared} messages (the "
                    f"bag's index and its data disagree; see `sdm bag info {path}`)"
                )
            warnings.append(f"bag {path}: {topic}: {read} of {declared} messages read")
        self.bag.read_counts.clear()
