# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A ROS 2 client of the sim bridge for the tests (a real rclpy process).

    python test/ros/sim_peer.py episode --seed 3 [--task T] [--enable-policy] [--first-only]
    python test/ros/sim_peer.py watch --duration 3

`episode` waits until its subscriptions are matched (and `--commanders` publishers of
joint_commands), resets the bridge (optionally re-enabling the policy node first), prints
`STATUS <step> <done>` for every episode_status of that episode, and at the end prints
`RESULT <json>`: the reset response, the bridge's report, the first cloud and state after the
reset, every joint state and command seen during the episode. `--first-only` ends the episode
(~/end_episode) as soon as the first cloud arrived. `watch` waits for the policy node's status
publisher and first status (and `--commanders` joint_commands publishers), records both for
`--duration` s more and prints `RESULT {"states": [...], "messages": [...], "commands": n, ...}`.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np
import rclpy
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, ReliabilityPolicy
from sdm_msgs.msg import EpisodeStatus, PolicyStatus
from sdm_msgs.srv import ResetEpisode
from sensor_msgs.msg import JointState, PointCloud2
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import SetBool, Trigger

from sdm_policy_core.conversions import pointcloud2_to_array, stamp_to_nanoseconds

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=QoSDurabilityPolicy.TRANSIENT_LOCAL,
)


def call(node: Node, cls, name: str, request, timeout: float = 30.0):
    client = node.create_client(cls, name)
    if not client.wait_for_service(timeout_sec=timeout):
        raise RuntimeError(f"{name} not available")
    future = client.call_async(request)
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout):
        raise RuntimeError(f"{name} did not answer")
    return future.result()


def episode(node: Node, args: argparse.Namespace) -> dict:
    lock = threading.Lock()
    statuses: dict[int, list[EpisodeStatus]] = {}
    clouds: dict[int, np.ndarray] = {}
    states: list[tuple[int, list[float]]] = []
    commands: list[list[float]] = []

    def on_status(msg: EpisodeStatus) -> None:
        with lock:
            statuses.setdefault(msg.episode_id, []).append(msg)

    def on_cloud(msg: PointCloud2) -> None:
        with lock:
            clouds[stamp_to_nanoseconds(msg.header.stamp)] = pointcloud2_to_array(msg)

    def on_state(msg: JointState) -> None:
        with lock:
            states.append((stamp_to_nanoseconds(msg.header.stamp), list(msg.position)))

    def on_command(msg: Float64MultiArray) -> None:
        with lock:
            commands.append(list(msg.data))

    subs = [
        node.create_subscription(EpisodeStatus, "episode_status", on_status, LATCHED),
        node.create_subscription(PointCloud2, "points", on_cloud, RELIABLE),
        node.create_subscription(JointState, "joint_states", on_state, RELIABLE),
    ]
    commands_sub = node.create_subscription(
        Float64MultiArray, "joint_commands", on_command, RELIABLE
    )
    # Matched publishers, not just discovered ones: nothing of the episode may be missed.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        all(sub.get_publisher_count() >= 1 for sub in subs)
        and commands_sub.get_publisher_count() >= args.commanders
    ):
        time.sleep(0.05)
    time.sleep(0.2)
    if args.enable_policy:  # off and on: a fresh history and plan
        call(node, SetBool, "sdm_policy_node/enable", SetBool.Request(data=False), 60.0)
        call(node, SetBool, "sdm_policy_node/enable", SetBool.Request(data=True), 60.0)
    reset = call(
        node,
        ResetEpisode,
        "sim_bridge/reset_episode",
        ResetEpisode.Request(task=args.task, seed=args.seed),
    )
    result = {"reset": {"success": reset.success, "message": reset.message}}
    if not reset.success:
        return result
    eid = reset.episode_id
    result["reset"]["episode_id"] = eid
    printed = 0
    deadline = time.monotonic() + args.timeout
    first_stamp = None
    while time.monotonic() < deadline:
        with lock:
            mine = list(statuses.get(eid, []))
        for msg in mine[printed:]:
            print(f"STATUS {msg.step} {int(msg.done)}", flush=True)
        printed = len(mine)
        if mine and first_stamp is None:
            first_stamp = stamp_to_nanoseconds(mine[0].header.stamp)
        with lock:
            have_cloud = first_stamp is not None and first_stamp in clouds
        if args.first_only and have_cloud:
            call(node, Trigger, "sim_bridge/end_episode", Trigger.Request())
            break
        if mine and mine[-1].done:
            break
        time.sleep(0.01)
    report = call(node, Trigger, "sim_bridge/report_success", Trigger.Request())
    time.sleep(0.2)
    with lock:
        result["report"] = json.loads(report.message)
        result["first_cloud"] = clouds[first_stamp].tolist() if first_stamp in clouds else None
        result["states"] = [s for t, s in sorted(states) if first_stamp and t >= first_stamp]
        result["commands"] = commands
    return result


def watch(node: Node, args: argparse.Namespace) -> dict:
    states: list[int] = []
    messages: list[str] = []
    count = [0]
    status_sub = node.create_subscription(
        PolicyStatus, "status", lambda m: (states.append(m.state), messages.append(m.message)), 10
    )
    commands_sub = node.create_subscription(
        Float64MultiArray, "joint_commands", lambda _m: count.__setitem__(0, count[0] + 1), 10
    )
    start = time.monotonic()
    while time.monotonic() < start + 30 and not (
        status_sub.get_publisher_count() >= 1
        and commands_sub.get_publisher_count() >= args.commanders
        and states
    ):
        time.sleep(0.05)
    waited = time.monotonic() - start
    time.sleep(args.duration)
    return {
        "states": states,
        "messages": messages,
        "commands": count[0],
        "waited_s": waited,
        "matched": [status_sub.get_publisher_count(), commands_sub.get_publisher_count()],
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["episode", "watch"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", default="")
    p.add_argument("--enable-policy", action="store_true")
    p.add_argument("--first-only", action="store_true")
    p.add_argument("--commanders", type=int, default=0, help="joint_commands publishers to await")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--duration", type=float, default=3.0)
    a = p.parse_args()
    rclpy.init()
    node = Node(f"sim_peer_{a.mode}")
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        result = episode(node, a) if a.mode == "episode" else watch(node, a)
        print("RESULT " + json.dumps(result), flush=True)
    finally:
        executor.shutdown()
        spinner.join(5)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
