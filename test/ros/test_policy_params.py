# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The installed `policy_node` console script's parameters.

The installed `policy_node` console script takes `--ros-args --params-file ... -p ...` with
ROS 2's documented precedence, validates its parameters, starts disabled and says why.
"""

from __future__ import annotations

import json

from test.conftest import PYTHON, REPO, wait_for

PEERS = str(REPO / "test" / "ros" / "peers.py")
NODE_EXE = REPO / "install" / "sdm_policy_ros" / "lib" / "sdm_policy_ros" / "policy_node"
PARAMS_FILE = str(REPO / "config" / "policy.yaml")


def _peer(processes, *args, name="peer", timeout=30.0):
    proc = processes.start([PYTHON, PEERS, *args], name)
    proc.wait(timeout)
    lines = [ln for ln in processes.log(proc).splitlines() if ln.startswith("RESULT ")]
    assert lines, processes.log(proc)
    return json.loads(lines[-1][len("RESULT ") :])


def test_installed_executable_exists():
    # `ros2 run sdm_policy_ros policy_node` looks exactly here.
    assert NODE_EXE.is_file(), "run scripts/setup.sh (colcon build) first"


def test_params_file_and_overrides_precedence(processes):
    # Kilted: overrides after --params-file win, node-qualified or not (README).
    node = processes.start(
        [
            str(NODE_EXE),
            "--ros-args",
            "-p",
            "ddim_steps:=4",  # loses: the params file comes later
            "--params-file",
            PARAMS_FILE,
            "-p",
            "control_rate_hz:=25.0",  # wins over the file's /** section
            "-p",
            "sdm_policy_node:sampler:=ddim",  # wins, node-qualified
            "-p",
            "sdm_policy_node:stale_age_s:=1",  # an integer for a float field is fine
        ],
        "policy_node",
    )
    wait_for(lambda: "started disabled" in processes.log(node), 30, what="policy_node start")
    values = _peer(
        processes,
        "params",
        "sdm_policy_node",
        "sampler",
        "ddim_steps",
        "control_rate_hz",
        "stale_age_s",
        "on_fault",
    )
    assert values == {
        "sampler": "ddim",
        "ddim_steps": 10,
        "control_rate_hz": 25.0,
        "stale_age_s": 1,
        "on_fault": "hold",
    }
    # The node's own view (logged at start) is the validated dataclass: 1 became 1.0 s.
    started = next(ln for ln in processes.log(node).splitlines() if "started disabled" in ln)
    effective = json.loads(started.split("parameters ", 1)[1])
    assert effective["stale_age_s"] == 1.0 and effective["sampler"] == "ddim"

    # At run time, invalid values are rejected with the reason; valid ones are taken.
    rejected = _peer(
        processes, "set-param", "sdm_policy_node", "control_rate_hz", "-1.0", name="set_bad"
    )
    assert rejected[0]["successful"] is False
    assert "control_rate_hz" in rejected[0]["reason"]
    accepted = _peer(
        processes, "set-param", "sdm_policy_node", "sampler", '"ddpm"', name="set_good"
    )
    assert accepted == [{"successful": True, "reason": ""}]
    assert _peer(processes, "params", "sdm_policy_node", "sampler", name="params2") == {
        "sampler": "ddpm"
    }
    assert processes.stop(node) == 0, processes.log(node)


def test_invalid_parameter_stops_startup_with_a_clear_message(processes):
    node = processes.start(
        [
            str(NODE_EXE),
            "--ros-args",
            "--params-file",
            PARAMS_FILE,
            "-p",
            "sdm_policy_node:sampler:=two-step",
        ],
        "bad_node",
    )
    assert node.wait(30) == 2
    log = processes.log(node)
    assert "sampler must be one of ['one-step', 'ddim', 'ddpm']" in log
    assert "'two-step'" in log


def test_starts_disabled_and_refuses_to_enable_without_a_model(processes):
    node = processes.start(
        [
            str(NODE_EXE),
            "--ros-args",
            "--params-file",
            PARAMS_FILE,
            "-p",
            "sdm_policy_node:status_rate_hz:=10.0",
        ],
        "policy_node",
    )
    status = _peer(
        processes,
        "sub",
        "sdm_msgs/msg/PolicyStatus",
        "--topic",
        "status",
        "--volatile",
        name="status",
    )
    assert status["state"] == 0  # STATE_NO_CHECKPOINT
    assert status["enabled"] is False
    assert "no checkpoint" in status["message"]
    reply = _peer(
        processes,
        "call",
        "std_srvs/srv/SetBool",
        '{"data": true}',
        "--service",
        "/sdm_policy_node/enable",
        name="enable",
    )
    assert reply["success"] is False
    assert "no checkpoint loaded" in reply["message"]
    assert processes.stop(node) == 0, processes.log(node)
