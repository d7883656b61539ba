# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Each sdm_msgs message and service works between two real ROS 2 processes."""

from __future__ import annotations

import json

import pytest

from test.conftest import PYTHON, REPO, wait_for

PEERS = str(REPO / "test" / "ros" / "peers.py")

MESSAGES = {
    "sdm_msgs/msg/ActionChunk": {
        "header": {"stamp": {"sec": 12, "nanosec": 500}, "frame_id": "base_link"},
        "names": ["joint1", "joint2", "gripper"],
        "horizon": 2,
        "action_dim": 3,
        "dt": 0.1,
        "actions": [0.5, -1.25, 0.0, 3.0, 2.5, -0.75],
        "policy_id": "sdm-run/step-2000",
        "sampler": "one-step",
        "steps": 1,
        "inference_time": 0.0042,
    },
    "sdm_msgs/msg/PolicyStatus": {
        "header": {"stamp": {"sec": 7, "nanosec": 0}, "frame_id": ""},
        "state": 4,  # STATE_HOLDING
        "enabled": True,
        "policy_id": "teacher/step-3000",
        "last_inference_time": 0.25,
        "control_rate": 9.8,
        "observation_age": 0.75,
        "rejected_point_clouds": 3,
        "rejected_images": 1,
        "rejected_states": 12345678901,
        "skipped_ticks": 5,
        "message": "point cloud stale for 0.75 s > 0.5 s",
    },
    "sdm_msgs/msg/EpisodeStatus": {
        "header": {"stamp": {"sec": 100, "nanosec": 20}, "frame_id": "world"},
        "episode_id": 4,
        "step": 57,
        "max_steps": 200,
        "success": True,
        "done": False,
        "task": "drawer-open-v3",
        "seed": -3,
    },
}

SERVICES = {
    "sdm_msgs/srv/LoadCheckpoint": (
        {"path": "/runs/sdm/checkpoints/best", "sampler": "ddim", "steps": 4},
        {"success": False, "message": "action_dim 7 != robot's 6", "policy_id": "old/step-1"},
    ),
    "sdm_msgs/srv/ResetEpisode": (
        {"task": "button-press-v3", "seed": 1234},
        {"success": True, "message": "episode 3 started", "episode_id": 3},
    ),
}


def _result(group, proc, timeout=30.0):
    """Return the JSON a peer printed after 'RESULT ' (its last one)."""
    proc.wait(timeout)
    lines = [ln for ln in group.log(proc).splitlines() if ln.startswith("RESULT ")]
    assert lines, f"peer printed no result; log:\n{group.log(proc)}"
    return json.loads(lines[-1][len("RESULT ") :])


def _assert_equal(received, expected, where=""):
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_equal(received[key], value, f"{where}{key}.")
        elif isinstance(value, float) or (
            isinstance(value, list) and value and isinstance(value[0], float)
        ):
            assert received[key] == pytest.approx(value, rel=1e-6), f"{where}{key}"
        else:
            assert received[key] == value, f"{where}{key}"


@pytest.mark.parametrize("msg_type", sorted(MESSAGES))
def test_message_crosses_processes(processes, msg_type):
    values = MESSAGES[msg_type]
    pub = processes.start([PYTHON, PEERS, "pub", msg_type, json.dumps(values)], "pub")
    sub = processes.start([PYTHON, PEERS, "sub", msg_type], "sub")
    received = _result(processes, sub)
    assert sub.returncode == 0, processes.log(sub)
    _assert_equal(received, values)
    assert processes.stop(pub) == 0, processes.log(pub)


def test_policy_status_state_constants():
    from sdm_msgs.msg import PolicyStatus

    states = [
        PolicyStatus.STATE_NO_CHECKPOINT,
        PolicyStatus.STATE_DISABLED,
        PolicyStatus.STATE_WAITING_FOR_DATA,
        PolicyStatus.STATE_RUNNING,
        PolicyStatus.STATE_HOLDING,
        PolicyStatus.STATE_FAULT,
    ]
    assert states == list(range(6))


@pytest.mark.parametrize("srv_type", sorted(SERVICES))
def test_service_crosses_processes(processes, srv_type):
    request, response = SERVICES[srv_type]
    server = processes.start([PYTHON, PEERS, "serve", srv_type, json.dumps(response)], "server")
    wait_for(lambda: "serving" in processes.log(server), 20, what="the service server")
    client = processes.start([PYTHON, PEERS, "call", srv_type, json.dumps(request)], "client")
    got_response = _result(processes, client)
    got_request = _result(processes, server)
    assert client.returncode == 0 and server.returncode == 0
    _assert_equal(got_request, request)
    _assert_equal(got_response, response)
