# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A fake robot for the policy-node tests (a real rclpy process).

    python test/ros/robot_peer.py stream --rate 30 --joints j1,j2,j3,j4 [--duration S]
    python test/ros/robot_peer.py record                 # prints every command it receives
    python test/ros/robot_peer.py fuzz --count 1000 --joints j1,j2,j3,j4

`stream` publishes a PointCloud2 (`points`) and a JointState (`joint_states`) per period,
stamped now. The joint state is an arm (`--arm`): `follow` reports the newest target it received
(joint_trajectory's first point or joint_commands), `lag` the target received `--lag` s ago,
`stuck` always `--start` (it never moves); each starts at `--start` rad. `--joints-for S` stops
the joint states after S s while the clouds go on (printing `JOINTS_STOPPED <time of the last>`).
With `--arm lag|stuck` it prints `STATE <time> <json positions>` for each joint state it sends.
`record` prints `CMD <receive time> <json>` for each joint_trajectory / joint_commands message,
`STATUS <json>` for each status and `DIAG <json>` for each /diagnostics entry.
`fuzz` publishes malformed messages of many kinds (and prints how many of each).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sdm_msgs.msg import PolicyStatus
from sensor_msgs.msg import Image, JointState, PointCloud2, PointField
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from sdm_policy_core.conversions import fill_image, fill_pointcloud2


def good_cloud(
    node: Node, rng: np.random.Generator, points: int = 200, frame_id: str = "camera"
) -> PointCloud2:
    msg = PointCloud2()
    fill_pointcloud2(msg, rng.uniform(-0.5, 0.5, (points, 3)).astype(np.float32), PointField)
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.header.frame_id = frame_id
    return msg


def joint_state(node: Node, names: list[str], values=None) -> JointState:
    msg = JointState()
    msg.header.stamp = node.get_clock().now().to_msg()
    msg.name = list(names)
    msg.position = list(values) if values is not None else [0.0] * len(names)
    return msg


def malformed(node: Node, k: int, names: list[str], rng: np.random.Generator):
    """Build the k-th malformed message: (kind, topic, message)."""
    kinds = (
        "truncated",
        "point_step",
        "zero_points",
        "nan",
        "inf",
        "no_xyz",
        "huge",
        "bad_datatype",
        "zero_stamp",
        "missing_joint",
        "nan_joint",
        "short_positions",
        "organized_mismatch",
        "empty_state",
    )
    kind = kinds[k % len(kinds)]
    cloud = good_cloud(node, rng)
    if kind == "truncated":
        cloud.data = bytes(cloud.data)[: len(cloud.data) // 2]
    elif kind == "point_step":
        cloud.point_step = 4
    elif kind == "zero_points":
        cloud.width, cloud.data, cloud.row_step = 0, b"", 0
    elif kind in ("nan", "inf"):
        bad = np.full((200, 3), np.nan if kind == "nan" else np.inf, np.float32)
        fill_pointcloud2(cloud, bad, PointField)
    elif kind == "no_xyz":
        for f in cloud.fields:
            f.name = "q" + f.name
    elif kind == "huge":
        cloud.width = 2**30
        cloud.row_step = cloud.width * cloud.point_step
    elif kind == "bad_datatype":
        cloud.fields[0].datatype = 99
    elif kind == "zero_stamp":
        cloud.header.stamp.sec, cloud.header.stamp.nanosec = 0, 0
    elif kind == "organized_mismatch":
        cloud.height = 7
    else:
        state = joint_state(node, names)
        if kind == "missing_joint":
            state.name, state.position = names[:-1], [0.0] * (len(names) - 1)
        elif kind == "nan_joint":
            state.position = [float("nan")] * len(names)
        elif kind == "short_positions":
            state.position = [0.0]
        elif kind == "empty_state":
            state.name, state.position = [], []
        return kind, "joint_states", state
    return kind, "points", cloud


def _targets(node: Node, names: list[str], start: float) -> list[tuple[float, list[float]]]:
    """Record the targets the policy sends, while spinning.

    [(receive time, positions)] of the targets the policy sends (joint_trajectory's first
    point or joint_commands), starting with `start` rad for every joint; filled while spinning.
    """
    received: list[tuple[float, list[float]]] = [(0.0, [start] * len(names))]

    def on_target(positions) -> None:
        if len(positions) == len(names):
            received.append((time.monotonic(), [float(v) for v in positions]))

    reliable = QoSProfile(depth=10)
    node.create_subscription(
        JointTrajectory,
        "joint_trajectory",
        lambda m: m.points and on_target(m.points[0].positions),
        reliable,
    )
    node.create_subscription(
        Float64MultiArray, "joint_commands", lambda m: on_target(m.data), reliable
    )
    return received


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["stream", "record", "fuzz", "repeat"])
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=1e9)
    p.add_argument("--joints", default="j1,j2,j3,j4")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--points", type=int, default=200)
    p.add_argument("--image", default="", help="also stream bgr8 frames of this WxH size")
    p.add_argument("--frame", default="camera", help="header.frame_id of the streamed clouds")
    p.add_argument("--copies", type=int, default=3, help="repeat: copies of each observation")
    p.add_argument("--arm", choices=["follow", "lag", "stuck"], default="follow")
    p.add_argument("--lag", type=float, default=0.3, help="[s] --arm lag: report delay")
    p.add_argument("--start", type=float, default=0.0, help="[rad] initial joint positions")
    p.add_argument("--joints-for", type=float, default=1e9, help="[s] then no joint states")
    a = p.parse_args()
    names = a.joints.split(",")
    rclpy.init()
    node = Node(f"robot_peer_{a.mode}")
    rng = np.random.default_rng(0)
    try:
        if a.mode == "stream":
            pub_c = node.create_publisher(PointCloud2, "points", qos_profile_sensor_data)
            pub_s = node.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
            pub_i = node.create_publisher(Image, "image", qos_profile_sensor_data)
            size = [int(v) for v in a.image.split("x")] if a.image else None
            received = _targets(node, names, a.start)
            start = time.monotonic()
            end = start + a.duration
            last_joints = 0.0
            period = 1.0 / a.rate
            next_t = time.monotonic()
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0)
                if a.arm == "follow":
                    position = received[-1][1]
                elif a.arm == "lag":
                    cutoff = time.monotonic() - a.lag
                    position = [p for t, p in received if t <= cutoff][-1]
                else:
                    position = received[0][1]
                if time.monotonic() - start < a.joints_for and last_joints >= 0:
                    pub_s.publish(joint_state(node, names, position))
                    if a.arm != "follow":
                        print(f"STATE {time.time()} {json.dumps(position)}", flush=True)
                    last_joints = time.time()
                elif last_joints > 0:
                    print(f"JOINTS_STOPPED {last_joints}", flush=True)
                    last_joints = -1.0  # said once
                pub_c.publish(good_cloud(node, rng, a.points, a.frame))
                if size:
                    frame = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
                    image = fill_image(Image(), frame, "bgr8", frame_id="camera")
                    image.header.stamp = node.get_clock().now().to_msg()
                    pub_i.publish(image)
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))
        elif a.mode == "record":

            def on_traj(msg):
                values = [list(pt.positions) for pt in msg.points]
                print(
                    "CMD "
                    + json.dumps(
                        {"t": time.time(), "names": list(msg.joint_names), "points": values}
                    ),
                    flush=True,
                )

            def on_cmd(msg):
                print("CMD " + json.dumps({"t": time.time(), "data": list(msg.data)}), flush=True)

            def on_status(msg):
                print(
                    "STATUS "
                    + json.dumps(
                        {
                            "t": time.time(),
                            "state": msg.state,
                            "enabled": msg.enabled,
                            "policy_id": msg.policy_id,
                            "rejected_point_clouds": msg.rejected_point_clouds,
                            "rejected_states": msg.rejected_states,
                            "skipped_ticks": msg.skipped_ticks,
                            "control_rate": msg.control_rate,
                            "message": msg.message,
                            "lifecycle_state": msg.lifecycle_state,
                            "seam_jump": msg.seam_jump,
                            "max_seam_jump": msg.max_seam_jump,
                            "tracking_error": msg.tracking_error,
                        }
                    ),
                    flush=True,
                )

            def on_diagnostics(msg):
                for entry in msg.status:
                    level = entry.level[0] if isinstance(entry.level, bytes) else int(entry.level)
                    report = {"t": time.time(), "level": level, "message": entry.message}
                    print("DIAG " + json.dumps(report), flush=True)

            reliable = QoSProfile(depth=50)
            node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable)
            node.create_subscription(JointTrajectory, "joint_trajectory", on_traj, reliable)
            node.create_subscription(Float64MultiArray, "joint_commands", on_cmd, reliable)
            node.create_subscription(PolicyStatus, "status", on_status, reliable)
            print("READY", flush=True)
            end = time.monotonic() + a.duration
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)
        elif a.mode == "repeat":
            # `count` observations (state + cloud, one stamp each), each sent `copies` times
            # 50 ms apart, on reliable QoS (as a lockstep simulator resends an observation).
            pub_c = node.create_publisher(PointCloud2, "points", 10)
            pub_s = node.create_publisher(JointState, "joint_states", 10)
            received = _targets(node, names, a.start)  # the arm moves to each target
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                pub_c.get_subscription_count()
                and pub_s.get_subscription_count()
                and node.count_publishers("joint_trajectory")
                + node.count_publishers("joint_commands")
            ):
                time.sleep(0.05)
            time.sleep(0.5)
            for _ in range(a.count):
                rclpy.spin_once(node, timeout_sec=0)
                answered = len(received)
                state = joint_state(node, names, received[-1][1])
                cloud = good_cloud(node, rng, a.points)
                cloud.header.stamp = state.header.stamp
                for _ in range(a.copies):
                    pub_s.publish(state)
                    pub_c.publish(cloud)
                    time.sleep(0.05)
                    rclpy.spin_once(node, timeout_sec=0)
                # Lockstep: the next observation comes after this one's command (or 5 s).
                end, wait_end = time.monotonic() + 0.5, time.monotonic() + 5.0
                while time.monotonic() < end or (
                    len(received) == answered and time.monotonic() < wait_end
                ):
                    rclpy.spin_once(node, timeout_sec=0.05)
            print("SENT " + json.dumps({"observations": a.count, "copies": a.copies}), flush=True)
        else:
            pubs = {
                "points": node.create_publisher(PointCloud2, "points", 100),
                "joint_states": node.create_publisher(JointState, "joint_states", 100),
            }
            time.sleep(1.0)  # discovery
            counts: dict[str, int] = {}
            for k in range(a.count):
                kind, topic, msg = malformed(node, k, names, rng)
                pubs[topic].publish(msg)
                counts[kind] = counts.get(kind, 0) + 1
                time.sleep(1.0 / a.rate)
            time.sleep(0.5)
            print("FUZZ " + json.dumps(counts), flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:  # rclpy's RCLError: the context shut down by the test's SIGINT mid-spin
        if rclpy.ok():
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
