# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`bag_recorder`: record live topics into a rosbag2 bag (mcap or sqlite3) with `rosbags`.

`ros2 bag record` needs rosbag2_py, which is not on PyPI; this records the same bags from
rclpy: every listed topic is subscribed with its publishers' type (found in the ROS graph, so
topics may appear after the recorder started) and `raw=True`, and each message's serialised
CDR bytes (what `rclpy.serialization.serialize_message` gives) are written unchanged. Message
definitions go into the bag (the ROS 2 Kilted typestore of `rosbags`; this workspace's own
interfaces, e.g. sdm_msgs, are registered from their installed .msg files), so `sdm bag2zarr`
and any rosbag2 reader can decode it.

Log time (`log_time`): `source` (default) is the publisher's send time from the DDS sample
info (wall clock, ns). It keeps the causal order of a lockstep loop (observation published ->
command published -> next observation) in the bag even when the recorder falls behind and takes
a burst of queued messages at once, which `sdm bag2zarr` with `stamp: receive` relies on to pair
each observation with the command that answered it. `receive` is the middleware's receive time
(rosbag2's convention), which under CPU load can bunch several steps into microseconds. Both
need the publishers' clocks to agree (one machine, or synchronised clocks).

Parameters:
- `output` (required): the bag directory to create; it must not exist.
- `topics`: names to record, relative ones resolved in the recorder's namespace (default:
  points, image, joint_states, joint_commands, episode_status: what
  config/bag2zarr/metaworld_sim.yaml reads). Topics that never appear are not in the bag.
- `storage`: mcap (default) or sqlite3. `distro`: typestore of the definitions (kilted).
- `max_duration_s`: stop after this long (wall time); 0 = until SIGINT/SIGTERM.
- `log_time`: source (default) or receive, see above.

On exit the bag is closed (metadata.yaml written) and one line per topic
`RECORDED <topic> <type> <count>` is printed.

    bag_recorder --ros-args -p output:=demos_bag -p "topics:=[points, joint_states]"
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from sdm_policy_core.keys import (
    TOPIC_EPISODE_STATUS,
    TOPIC_IMAGE,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)
from sdm_policy_ros.process import SPIN_PERIOD_S, run_node

NODE_NAME = "bag_recorder"
DEFAULT_TOPICS = [
    TOPIC_POINTS,
    TOPIC_IMAGE,
    TOPIC_JOINT_STATES,
    TOPIC_JOINT_COMMANDS,
    TOPIC_EPISODE_STATUS,
]
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
LOG_TIMES = {"source": "source_timestamp", "receive": "received_timestamp"}
DISTROS = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY, "kilted": Stores.ROS2_KILTED}


def register_installed_type(typestore, msgtype: str) -> bool:
    """Register `pkg/msg/Name` from the .msg file its package installed (ament index).

    Returns False when the package or file is not found. Nested types of the same package are
    registered first (recursively).
    """
    try:
        from ament_index_python.packages import get_package_share_directory

        pkg, kind, name = msgtype.split("/")
        path = Path(get_package_share_directory(pkg)) / kind / f"{name}.msg"
        text = path.read_text()
    except Exception:  # not installed, not a msg: the caller skips the topic
        return False
    for line in text.splitlines():
        field_type = line.split("#", 1)[0].strip().split(" ", 1)[0].split("[", 1)[0]
        if "/" not in field_type and field_type[:1].isupper():  # a type of the same package
            nested = f"{pkg}/msg/{field_type}"
            if nested not in typestore.fielddefs:
                register_installed_type(typestore, nested)
    typestore.register(get_types_from_msg(text, msgtype))
    return True


class BagRecorderNode(Node):
    """Subscribes the configured topics as raw CDR and writes them into a rosbag2 bag."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        declare = self.declare_parameter
        declare("output", "", ParameterDescriptor(description="bag directory to create"))
        declare("topics", DEFAULT_TOPICS, ParameterDescriptor(description="topics to record"))
        declare("storage", "mcap", ParameterDescriptor(description="mcap or sqlite3"))
        declare("distro", "kilted", ParameterDescriptor(description="typestore: humble..kilted"))
        declare(
            "max_duration_s",
            0.0,
            ParameterDescriptor(
                description="[s] stop after this long; 0: until stopped", dynamic_typing=True
            ),
        )
        declare(
            "log_time",
            "source",
            ParameterDescriptor(
                description="bag log time of a message: source (the publisher's send time) or "
                "receive (the middleware's receive time)"
            ),
        )
        output = str(self.get_parameter("output").value)
        log_time = str(self.get_parameter("log_time").value)
        if log_time not in LOG_TIMES:
            raise ValueError(f"log_time must be one of {sorted(LOG_TIMES)}, got {log_time!r}")
        self._info_key = LOG_TIMES[log_time]
        storage = str(self.get_parameter("storage").value)
        distro = str(self.get_parameter("distro").value)
        self.max_duration_s = float(self.get_parameter("max_duration_s").value)
        if not output:
            raise ValueError("parameter output (the bag directory to create) is required")
        if Path(output).exists():
            raise ValueError(f"output {output} exists; rosbag2 bags are never overwritten")
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if distro not in DISTROS:
            raise ValueError(f"distro must be one of {sorted(DISTROS)}, got {distro!r}")
        self.topics = [self.resolve_topic_name(t) for t in self.get_parameter("topics").value]
        if not self.topics:
            raise ValueError("topics is empty: nothing to record")
        self.typestore = get_typestore(DISTROS[distro])
        self.output = Path(output)
        self._writer = Writer(self.output, version=9, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self._types: dict[str, str] = {}
        self._skipped: set[str] = set()
        self._start = time.monotonic()
        self._closed = False
        self.finished = False  # max_duration_s reached
        self.create_timer(0.2, self._discover)
        self._discover()
        self.get_logger().info(f"recording {self.topics} into {self.output} ({storage})")

    def _discover(self) -> None:
        """Subscribe listed topics as soon as a publisher appears; stop at max_duration_s."""
        if self.max_duration_s and time.monotonic() - self._start >= self.max_duration_s:
            if not self.finished:
                self.get_logger().info(f"max_duration_s {self.max_duration_s} reached")
            self.finished = True
            return
        graph = dict(self.get_topic_names_and_types())
        for topic in self.topics:
            if topic in self._connections or topic in self._skipped or topic not in graph:
                continue
            ros_type = graph[topic][0]  # e.g. sensor_msgs/msg/PointCloud2
            self._subscribe(topic, ros_type)

    def _subscribe(self, topic: str, ros_type: str) -> None:
        if ros_type not in self.typestore.fielddefs and not register_installed_type(
            self.typestore, ros_type
        ):
            self._skipped.add(topic)
            self.get_logger().error(f"not recording {topic}: no definition of {ros_type}")
            return
        pkg, kind, name = ros_type.split("/")
        cls = getattr(__import__(f"{pkg}.{kind}", fromlist=[name]), name)
        # Best effort when any publisher is (a reliable subscription would get nothing).
        infos = self.get_publishers_info_by_topic(topic)
        best_effort = any(
            i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos
        )
        reliability = ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE
        qos = QoSProfile(depth=100, reliability=reliability)
        self._connections[topic] = self._writer.add_connection(
            topic, ros_type, typestore=self.typestore
        )
        self._types[topic] = ros_type
        self.counts[topic] = 0

        def on_message(data: bytes, info: dict) -> None:  # two arguments: with MessageInfo
            stamp = info.get(self._info_key) or info.get("received_timestamp") or time.time_ns()
            self._write(topic, data, stamp)

        self.create_subscription(cls, topic, on_message, qos, raw=True)
        self.get_logger().info(f"recording {topic} ({ros_type})")

    def _write(self, topic: str, data: bytes, log_time_ns: int) -> None:
        """Write one message with its log time [ns, wall clock] (see `log_time`)."""
        if self._closed:
            return
        self._writer.write(self._connections[topic], int(log_time_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Close the bag (writes metadata.yaml) and print what was recorded."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        for topic in self.topics:
            if topic in self.counts:
                print(f"RECORDED {topic} {self._types[topic]} {self.counts[topic]}", flush=True)


def _record(node: BagRecorderNode, executor, stop) -> int:
    while rclpy.ok() and not stop.is_set() and not node.finished:
        executor.spin_once(timeout_sec=SPIN_PERIOD_S)
    return 0


def main(args: list[str] | None = None) -> int:
    # close() writes the bag's metadata, whatever ended the recording
    return run_node(
        NODE_NAME, BagRecorderNode, args=args, startup_errors=(ValueError, OSError), run=_record
    )


if __name__ == "__main__":
    sys.exit(main())
