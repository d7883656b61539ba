# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Write rosbag2 bags (sqlite3 or mcap) without ROS, through `rosbags`.

Used by the bag2zarr benchmark and tests to make bags of known content, and usable by a
recorder that holds serialised messages (e.g. `rclpy.serialization.serialize_message` output):

    with BagWriter("demo_000", storage="mcap") as bag:
        bag.write_cloud("/points", t_ns, points)            # (N, 3|6) float32
        bag.write_joint_state("/joint_states", t_ns, ["j1", "j2"], [0.1, 0.2])
        bag.write_float64_array("/joint_commands", t_ns, [0.0, 1.0])
        bag.write_raw("/custom", "pkg/msg/Type", t_ns, cdr_bytes)

Times are integer nanoseconds; `t_ns` is both the log (receive) time and the header stamp
unless `stamp_ns` is given. Message definitions are embedded in the bag.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sdm_policy_core.conversions import fill_image, fill_pointcloud2

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
COMPRESSION = {"none": None, "file": CompressionMode.FILE, "message": CompressionMode.MESSAGE}


class BagWriter:
    """A rosbag2 bag being written; connections are added on a topic's first message."""

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        distro: str = "kilted",
        compression: str = "none",
        custom_types: dict[str, str] | None = None,
    ) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if compression not in COMPRESSION:
            raise ValueError(f"compression must be one of {sorted(COMPRESSION)}")
        self.typestore = get_typestore(getattr(Stores, f"ROS2_{distro.upper()}"))
        for name, text in (custom_types or {}).items():
            self.typestore.register(get_types_from_msg(text, name))
        self.types = self.typestore.types
        self.path = Path(path)
        self._writer = Writer(self.path, version=9, storage_plugin=STORAGES[storage])
        if COMPRESSION[compression] is not None:
            self._writer.set_compression(COMPRESSION[compression], CompressionFormat.ZSTD)
        self._connections: dict[tuple[str, str], Any] = {}
        self._writer.open()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._writer.close()

    # -- raw and typed messages ------------------------------------------------------------------

    def write_raw(self, topic: str, msgtype: str, t_ns: int, data: bytes | memoryview) -> None:
        """Write serialised CDR bytes of `msgtype` logged at t_ns."""
        key = (topic, msgtype)
        if key not in self._connections:
            self._connections[key] = self._writer.add_connection(
                topic, msgtype, typestore=self.typestore
            )
        self._writer.write(self._connections[key], int(t_ns), data)

    def write(self, topic: str, msg: Any, t_ns: int) -> None:
        """Serialise a rosbags message object and write it."""
        data = self.typestore.serialize_cdr(msg, msg.__msgtype__)
        self.write_raw(topic, msg.__msgtype__, t_ns, data)

    def header(self, stamp_ns: int, frame_id: str = "") -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.types["std_msgs/msg/Header"](
            stamp=self.types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
            frame_id=frame_id,
        )

    def cloud_message(self, points: np.ndarray, stamp_ns: int, frame_id: str = "") -> Any:
        """Build a rosbags PointCloud2 of (N, 3|6) points (xyz float32, rgb packed)."""
        msg = self.types["sensor_msgs/msg/PointCloud2"](
            header=self.header(stamp_ns, frame_id),
            height=1,
            width=0,
            fields=[],
            is_bigendian=False,
            point_step=12,
            row_step=0,
            data=np.zeros(0, np.uint8),
            is_dense=True,
        )
        return fill_pointcloud2(msg, points, self.types["sensor_msgs/msg/PointField"])

    def write_cloud(
        self,
        topic: str,
        t_ns: int,
        points: np.ndarray,
        frame_id: str = "",
        stamp_ns: int | None = None,
    ) -> None:
        stamp = t_ns if stamp_ns is None else stamp_ns
        self.write(topic, self.cloud_message(points, stamp, frame_id), t_ns)

    def write_image(
        self,
        topic: str,
        t_ns: int,
        array: np.ndarray,
        encoding: str,
        frame_id: str = "",
        stamp_ns: int | None = None,
    ) -> None:
        stamp = t_ns if stamp_ns is None else stamp_ns
        msg = self.types["sensor_msgs/msg/Image"](
            header=self.header(stamp, frame_id),
            height=0,
            width=0,
            encoding="",
            is_bigendian=0,
            step=0,
            data=np.zeros(0, np.uint8),
        )
        self.write(topic, fill_image(msg, array, encoding), t_ns)

    def write_joint_state(
        self,
        topic: str,
        t_ns: int,
        names: Sequence[str],
        positions: Sequence[float],
        stamp_ns: int | None = None,
    ) -> None:
        stamp = t_ns if stamp_ns is None else stamp_ns
        msg = self.types["sensor_msgs/msg/JointState"](
            header=self.header(stamp),
            name=list(names),
            position=np.asarray(positions, dtype=np.float64),
            velocity=np.zeros(0),
            effort=np.zeros(0),
        )
        self.write(topic, msg, t_ns)

    def write_float64_array(self, topic: str, t_ns: int, values: Sequence[float]) -> None:
        types = self.types
        layout = types["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        msg = types["std_msgs/msg/Float64MultiArray"](
            layout=layout, data=np.asarray(values, dtype=np.float64)
        )
        self.write(topic, msg, t_ns)

    def write_compressed_image(
        self,
        topic: str,
        t_ns: int,
        data: bytes,
        fmt: str,
        frame_id: str = "",
        stamp_ns: int | None = None,
    ) -> None:
        """Write a sensor_msgs/CompressedImage of coded bytes (jpeg, png, compressedDepth).

        Its `format` is fmt (e.g. 'rgb8; jpeg compressed bgr8', '32FC1; compressedDepth png').
        """
        stamp = t_ns if stamp_ns is None else stamp_ns
        msg = self.types["sensor_msgs/msg/CompressedImage"](
            header=self.header(stamp, frame_id),
            format=fmt,
            data=np.frombuffer(bytes(data), np.uint8),
        )
        self.write(topic, msg, t_ns)

    def write_transform(
        self,
        topic: str,
        t_ns: int,
        parent: str,
        child: str,
        translation: Sequence[float],
        rotation_xyzw: Sequence[float],
        stamp_ns: int | None = None,
    ) -> None:
        """Write one parent <- child transform on a tf2_msgs/TFMessage topic.

        The pose of child in parent (quaternion x, y, z, w), on /tf_static, or /tf for a moving
        frame (stamp = t_ns unless stamp_ns is given).
        """
        types = self.types
        tf = types["geometry_msgs/msg/TransformStamped"](
            header=self.header(t_ns if stamp_ns is None else stamp_ns, parent),
            child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](*map(float, translation)),
                rotation=types["geometry_msgs/msg/Quaternion"](*map(float, rotation_xyzw)),
            ),
        )
        self.write(topic, types["tf2_msgs/msg/TFMessage"](transforms=[tf]), t_ns)
