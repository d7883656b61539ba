# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A peer for comparing policy nodes: same observations to each, their chunks printed.

A peer for comparing policy nodes: sends the same observations (joint state + cloud, one
stamp each, reliable QoS, one at a time) to every node subscribed to /points and
/joint_states, and prints the action chunks the nodes in the given namespaces publish.

    python test/ros/chunk_peer.py --namespaces a,b --count 12 --points 200

Prints `CHUNK {"ns": ..., "stamp": ..., "actions": [...]}` per chunk, then `DONE`.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from robot_peer import good_cloud, joint_state
from sdm_msgs.msg import ActionChunk
from sensor_msgs.msg import JointState, PointCloud2


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--namespaces", default="a,b")
    p.add_argument("--count", type=int, default=12)
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--joints", default="j1,j2,j3,j4")
    p.add_argument("--period", type=float, default=0.3, help="[s] between observations")
    a = p.parse_args()
    spaces, names = a.namespaces.split(","), a.joints.split(",")
    rclpy.init()
    node = Node("chunk_peer")
    pub_c = node.create_publisher(PointCloud2, "/points", 10)
    pub_s = node.create_publisher(JointState, "/joint_states", 10)

    def on_chunk(ns: str):
        def callback(msg: ActionChunk) -> None:
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            line = {"ns": ns, "stamp": stamp, "actions": list(msg.actions)}
            print("CHUNK " + json.dumps(line), flush=True)

        return callback

    for ns in spaces:
        node.create_subscription(
            ActionChunk, f"/{ns}/action_chunk", on_chunk(ns), QoSProfile(depth=100)
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        pub_c.get_subscription_count() >= len(spaces)
        and pub_s.get_subscription_count() >= len(spaces)
        and all(node.count_publishers(f"/{ns}/action_chunk") for ns in spaces)
    ):
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)
    rng = np.random.default_rng(0)
    for k in range(a.count):
        state = joint_state(node, names, [0.05 * k] * len(names))
        cloud = good_cloud(node, rng, a.points)
        cloud.header.stamp = state.header.stamp
        pub_s.publish(state)
        pub_c.publish(cloud)
        end = time.monotonic() + a.period
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print("DONE", flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
