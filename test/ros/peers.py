# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A second real ROS 2 process for the tests, driven by JSON on the command line.

A second real ROS 2 process for the tests: publishes, subscribes, serves, calls, reads
parameters. Field values travel as JSON on the command line and come back as JSON on stdout.

    python test/ros/peers.py pub  sdm_msgs/msg/ActionChunk '{"horizon": 2, ...}'
    python test/ros/peers.py sub  sdm_msgs/msg/ActionChunk --timeout 20
    python test/ros/peers.py serve sdm_msgs/srv/ResetEpisode '{"success": true, ...}'
    python test/ros/peers.py call  sdm_msgs/srv/ResetEpisode '{"task": "x", "seed": 3}'
    python test/ros/peers.py params sdm_policy_node sampler ddim_steps
    python test/ros/peers.py set-param sdm_policy_node control_rate_hz -1.0
"""

from __future__ import annotations

import argparse
import array
import importlib
import json
import sys
import threading
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import QoSDurabilityPolicy, QoSProfile

TOPIC = "peer_topic"
SERVICE = "peer_service"
# Late joiners still get the last message: the publisher may start before the subscriber.
LATCHED = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)


def interface(name: str):
    pkg, kind, cls = name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), cls)


def fill(msg, values: dict):
    """Set fields of a ROS message from a JSON dict (nested messages as dicts)."""
    types = msg.get_fields_and_field_types()
    for key, value in values.items():
        if key not in types:
            raise KeyError(f"{type(msg).__name__} has no field {key!r}")
        current = getattr(msg, key)
        if isinstance(value, dict):
            fill(current, value)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            # A sequence of messages: types[key] is "sequence<pkg/Type>" (maybe bounded).
            inner = types[key][types[key].index("<") + 1 :].split(",")[0].rstrip(">")
            pkg, name = inner.split("/")
            element = getattr(importlib.import_module(f"{pkg}.msg"), name)
            setattr(msg, key, [fill(element(), v) for v in value])
        elif isinstance(current, array.array):
            setattr(msg, key, array.array(current.typecode, value))
        else:
            setattr(msg, key, value)
    return msg


def to_json(msg):
    if hasattr(msg, "get_fields_and_field_types"):
        return {k: to_json(getattr(msg, k)) for k in msg.get_fields_and_field_types()}
    if isinstance(msg, (list, tuple, array.array)):
        return [to_json(v) for v in msg]
    if hasattr(msg, "tolist"):
        return msg.tolist()
    return msg


def emit(obj) -> None:
    print("RESULT " + json.dumps(obj), flush=True)


def spin_until(node: Node, done: threading.Event, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    try:
        while not done.is_set() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # stopped by the test: a normal end
    except RuntimeError:  # rclpy's RCLError
        # rclpy's own SIGINT handler shuts the context down while spin_once builds its wait set
        # ("the given context is not valid"): the test's stop, in a race (seen in a loaded CI)
        if rclpy.ok():
            raise
    return done.is_set()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["pub", "sub", "serve", "call", "params", "set-param"])
    p.add_argument("args", nargs="*")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--topic", default=TOPIC)
    p.add_argument("--service", default=SERVICE)
    p.add_argument("--volatile", action="store_true", help="default QoS instead of latched")
    a = p.parse_args()
    qos = QoSProfile(depth=10) if a.volatile else LATCHED
    rclpy.init()
    node = Node(f"peer_{a.mode.replace('-', '_')}")
    done = threading.Event()
    result: dict = {}
    try:
        if a.mode == "pub":
            cls = interface(a.args[0])
            pub = node.create_publisher(cls, a.topic, qos)
            msg = fill(cls(), json.loads(a.args[1]))
            pub.publish(msg)
            emit({"published": True})
            spin_until(node, done, a.timeout)  # keep the latched message available
            return 0
        if a.mode == "sub":
            cls = interface(a.args[0])

            def on_msg(msg):
                result["msg"] = to_json(msg)
                done.set()

            node.create_subscription(cls, a.topic, on_msg, qos)
            ok = spin_until(node, done, a.timeout)
            emit(result.get("msg"))
            return 0 if ok else 1
        if a.mode == "serve":
            cls = interface(a.args[0])

            def on_request(request, response):
                result["request"] = to_json(request)
                fill(response, json.loads(a.args[1]))
                done.set()
                return response

            node.create_service(cls, a.service, on_request)
            emit({"serving": True})
            ok = spin_until(node, done, a.timeout)
            # Let the response leave before the process exits.
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                rclpy.spin_once(node, timeout_sec=0.05)
            emit(result.get("request"))
            return 0 if ok else 1
        if a.mode == "call":
            cls = interface(a.args[0])
            client = node.create_client(cls, a.service)
            if not client.wait_for_service(timeout_sec=a.timeout):
                emit(None)
                return 1
            future = client.call_async(fill(cls.Request(), json.loads(a.args[1])))
            rclpy.spin_until_future_complete(node, future, timeout_sec=a.timeout)
            emit(to_json(future.result()) if future.done() else None)
            return 0 if future.done() else 1
        if a.mode == "params":
            target, names = a.args[0], a.args[1:]
            client = AsyncParameterClient(node, target)
            if not client.wait_for_services(timeout_sec=a.timeout):
                emit(None)
                return 1
            future = client.get_parameters(names)
            rclpy.spin_until_future_complete(node, future, timeout_sec=a.timeout)
            values = [parameter_value_to_python(v) for v in future.result().values]
            emit(dict(zip(names, values, strict=True)))
            return 0
        if a.mode == "set-param":
            target, name, value = a.args
            client = AsyncParameterClient(node, target)
            if not client.wait_for_services(timeout_sec=a.timeout):
                emit(None)
                return 1
            future = client.set_parameters([Parameter(name, value=json.loads(value))])
            rclpy.spin_until_future_complete(node, future, timeout_sec=a.timeout)
            emit(
                [{"successful": r.successful, "reason": r.reason} for r in future.result().results]
            )
            return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 2


if __name__ == "__main__":
    sys.exit(main())
