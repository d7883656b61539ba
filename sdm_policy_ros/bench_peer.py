# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Robot side of `sdm bench node`: observation-to-command latency and command rate.

The robot side of `sdm bench node`: streams clouds + joint states, enables the policy node,
and measures observation-to-command latency and the achieved command rate.

    python -m sdm_policy_ros.bench_peer --points 1024 --rate 30 --duration 10 --joints j1,...

Latency of a planned chunk = time the node's ActionChunk arrives here minus its header stamp,
which is the stamp of the cloud the plan was computed from (one clock: the same machine).
Prints one JSON line `RESULT {...}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sdm_msgs.msg import ActionChunk
from sensor_msgs.msg import JointState, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool

from sdm_policy_core.conversions import fill_pointcloud2, stamp_to_seconds
from sdm_policy_core.keys import TOPIC_JOINT_COMMANDS, TOPIC_JOINT_STATES, TOPIC_POINTS


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=1024)
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--joints", default="j1,j2,j3,j4")
    p.add_argument("--node", default="/sdm_policy_node")
    a = p.parse_args()
    names = a.joints.split(",")
    rclpy.init()
    node = Node("sdm_bench_peer")
    latencies: list[float] = []
    command_times: list[float] = []
    first_command: list[float] = []  # wall time of the first command, warm-up or not
    inference: list[float] = []
    measuring = {"on": False}

    def on_chunk(msg: ActionChunk) -> None:
        if measuring["on"]:
            latencies.append(time.time() - stamp_to_seconds(msg.header.stamp))
            inference.append(msg.inference_time)

    def on_command(_msg) -> None:
        if not first_command:
            first_command.append(time.time())
        if measuring["on"]:
            command_times.append(time.monotonic())

    node.create_subscription(ActionChunk, "action_chunk", on_chunk, QoSProfile(depth=100))
    node.create_subscription(
        Float64MultiArray, TOPIC_JOINT_COMMANDS, on_command, QoSProfile(depth=100)
    )
    pub_c = node.create_publisher(PointCloud2, TOPIC_POINTS, qos_profile_sensor_data)
    pub_s = node.create_publisher(JointState, TOPIC_JOINT_STATES, qos_profile_sensor_data)
    enable = node.create_client(SetBool, f"{a.node}/enable")
    if not enable.wait_for_service(timeout_sec=60):
        print("RESULT " + json.dumps({"error": "policy node did not come up"}), flush=True)
        return 1
    future = enable.call_async(SetBool.Request(data=True))
    rclpy.spin_until_future_complete(node, future, timeout_sec=30)
    rng = np.random.default_rng(0)
    clouds = [rng.uniform(-0.5, 0.5, (a.points, 3)).astype(np.float32) for _ in range(8)]
    period = 1.0 / a.rate
    start = time.monotonic()
    next_t = start
    k = 0
    while time.monotonic() - start < a.warmup + a.duration:
        measuring["on"] = time.monotonic() - start >= a.warmup
        now = node.get_clock().now().to_msg()
        state = JointState(name=names, position=[0.0] * len(names))
        state.header.stamp = now
        cloud = PointCloud2()
        fill_pointcloud2(cloud, clouds[k % len(clouds)], PointField, frame_id="camera")
        cloud.header.stamp = now
        pub_s.publish(state)
        pub_c.publish(cloud)
        k += 1
        next_t += period
        while True:
            remaining = next_t - time.monotonic()
            if remaining <= 0:
                break
            rclpy.spin_once(node, timeout_sec=min(remaining, 0.005))
    measuring["on"] = False
    ms = np.asarray(latencies) * 1e3
    rate = (
        (len(command_times) - 1) / (command_times[-1] - command_times[0])
        if len(command_times) > 1
        else 0.0
    )
    result = {
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)) if len(ms) else None,
            "p99": float(np.percentile(ms, 99)) if len(ms) else None,
            "max": float(ms.max()) if len(ms) else None,
        },
        "inference_ms_p50": float(np.median(inference) * 1e3) if inference else None,
        "rate_hz": rate,
        "chunks": len(latencies),
        "commands": len(command_times),
        "clouds_sent": k,
        "cloud_rate_hz": a.rate,
        "points": a.points,
        "first_command_wall": first_command[0] if first_command else None,
    }
    print("RESULT " + json.dumps(result), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
