# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ROS tests (test/ros/...): they need rclpy and the built sdm_msgs; the sim-in-the-loop helpers.

ROS tests need rclpy and the built sdm_msgs. The README's test command always provides them
(SDM_REQUIRE_ROS=1 turns their absence into a failure); a pip-only checkout skips them.
The simulator-in-the-loop tests (sim bridge, expert teleoperator, recorder, `sdm sim-eval`) run
as real processes on real DDS (confined to this machine, the run's own ROS_DOMAIN_ID; see
test/conftest.py) and start them through the helpers below; so do the policy node tests
(test_policy_node*.py, test_process.py), with the fake robot of robot_peer.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from test.conftest import (
    PYTHON,
    REPO,
    ROS_MISSING,
    TINY,
    ProcessGroup,
    ros_collect_ignore,
    wait_for,
)

collect_ignore_glob = ros_collect_ignore()


def pytest_report_header(config) -> str:
    if ROS_MISSING:
        return f"ROS tests skipped: {', '.join(ROS_MISSING)} not importable"
    return f"ROS tests: ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')}, discovery LOCALHOST"


BIN = REPO / "install" / "sdm_policy_ros" / "lib" / "sdm_policy_ros"
PEER = str(REPO / "test" / "ros" / "sim_peer.py")
POLICY_YAML = str(REPO / "config" / "policy.yaml")


def ros_args(params: dict[str, object]) -> list[str]:
    args = ["--ros-args"]
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        args += ["-p", f"{key}:={text}"]
    return args


def start_bridge(processes: ProcessGroup, name: str = "bridge", **params) -> subprocess.Popen:
    """sim_bridge_node (default: no episode at start, 20 Hz, lockstep); waits until it runs."""
    values = {"start_episode": False, "control_rate_hz": 20.0, **params}
    proc = processes.start([str(BIN / "sim_bridge_node"), *ros_args(values)], name)
    wait_for(
        lambda: "started:" in processes.log(proc) or proc.poll() is not None,
        60,
        what=f"{name} to start",
    )
    assert proc.poll() is None, processes.log(proc)
    return proc


def start_policy(processes: ProcessGroup, checkpoint: Path, **params) -> subprocess.Popen:
    """policy_node as sim_eval.launch.py sim:=mujoco starts it; waits until it runs."""
    values = {
        "use_sim_time": True,
        "checkpoint": checkpoint,
        "robot": "metaworld_sim",
        "trigger": "observation",
        "observation_sync_s": 1.0,
        "sampler": "ddim",
        "ddim_steps": 2,
        "torch_threads": 1,
        "status_rate_hz": 10.0,
        **params,
    }
    cmd = [str(BIN / "policy_node"), "--ros-args", "--params-file", POLICY_YAML]
    proc = processes.start(cmd + ros_args(values)[1:], "policy")
    wait_for(
        lambda: "started disabled" in processes.log(proc) or proc.poll() is not None,
        90,
        what="the policy node to start",
    )
    assert proc.poll() is None, processes.log(proc)
    return proc


def start_peer(processes: ProcessGroup, *args: str, name: str = "peer") -> subprocess.Popen:
    return processes.start([PYTHON, PEER, *args], name)


def peer_result(processes: ProcessGroup, proc: subprocess.Popen, timeout: float = 90) -> dict:
    """Wait for a sim_peer.py process and return its RESULT json."""
    proc.wait(timeout)
    lines = [ln for ln in processes.log(proc).splitlines() if ln.startswith("RESULT ")]
    assert lines, processes.log(proc)
    return json.loads(lines[-1][len("RESULT ") :])


# policy_node driven by robot_peer.py (test_policy_node*.py, test_process.py): the 4-joint test
# arm it commands (`robot_yaml`), starting it, calling its services, reading what it sent.
PEERS = str(REPO / "test" / "ros" / "peers.py")
ROBOT_PEER = str(REPO / "test" / "ros" / "robot_peer.py")
NODE_EXE = BIN / "policy_node"
JOINTS = ["j1", "j2", "j3", "j4"]
LIMIT, MAX_STEP = 0.3, 0.02


@pytest.fixture(scope="module")
def robot_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("robot") / "test_arm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "description": "4-joint test arm",
                "base_frame": "base_link",
                "state_names": JOINTS,
                "action_names": JOINTS,
                "action_kind": "joint_position",
                "output": "joint_trajectory",
                "lower": [-LIMIT] * 4,
                "upper": [LIMIT] * 4,
                "max_step": MAX_STEP,
                "camera": {"frame_id": "camera"},  # the frame robot_peer stamps clouds with
            }
        )
    )
    return path


def start_node(processes, robot_yaml, checkpoint, *params: str, name="policy_node"):
    cmd = [
        str(NODE_EXE),
        "--ros-args",
        "--params-file",
        POLICY_YAML,
        "-p",
        f"robot:={robot_yaml}",
        "-p",
        "status_rate_hz:=10.0",
    ]
    if checkpoint:
        cmd += ["-p", f"checkpoint:={checkpoint}"]
    for p in params:
        cmd += ["-p", p]
    node = processes.start(cmd, name)
    wait_for(
        lambda: (
            any(f"started {s} (" in processes.log(node) for s in ("disabled", "enabled"))
            or node.poll() is not None
        ),
        60,
        what="policy_node start",
    )
    assert node.poll() is None, processes.log(node)
    return node


def call_service(processes, srv_type, service, request, name):
    proc = processes.start(
        [PYTHON, PEERS, "call", srv_type, json.dumps(request), "--service", service], name
    )
    proc.wait(30)
    lines = [ln for ln in processes.log(proc).splitlines() if ln.startswith("RESULT ")]
    assert lines, processes.log(proc)
    return json.loads(lines[-1][len("RESULT ") :])


def start_recorder(processes):
    """robot_peer in record mode: prints every command and status it receives."""
    recorder = processes.start([PYTHON, ROBOT_PEER, "record"], "record")
    wait_for(lambda: "READY" in processes.log(recorder), 30, what="recorder")
    return recorder


def enable_node(processes) -> None:
    request = {"data": True}
    assert call_service(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", request, "enable"
    )["success"]


def recorded(processes, recorder, kind: str) -> list[dict]:
    prefix = kind + " "
    return [
        json.loads(ln[len(prefix) :])
        for ln in processes.log(recorder).splitlines()
        if ln.startswith(prefix)
    ]


@pytest.fixture(scope="session")
def mw_checkpoint(tmp_path_factory) -> Path:
    """Train a MetaWorld teacher 5 steps on 2 scripted button-press demos.

    A teacher (128-point clouds, agent_pos 9, action 4) trained 5 steps on 2 scripted
    button-press demos: `sdm demos ... --stop-on-success` then `sdm train`.
    """
    from sdm_policy_core.cli import main as sdm

    root = tmp_path_factory.mktemp("mw")
    demos = [
        "demos",
        "--task",
        "button-press-v3",
        "--episodes",
        "2",
        "--out",
        str(root / "demos.zarr"),
        "--num-points",
        "128",
        "--stop-on-success",
        "--no-progress",
    ]
    assert sdm(demos) == 0
    train = [
        "train",
        "--dataset",
        str(root / "demos.zarr"),
        "--out",
        str(root / "teacher"),
        "--no-progress",
        *TINY,
    ]
    assert sdm(train) == 0
    return root / "teacher" / "checkpoints" / "latest"
