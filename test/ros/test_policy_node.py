"""The policy node with a real checkpoint, real DDS and a fake robot in other processes:
commands at the configured rate only while enabled and fed fresh data, limits respected,
malformed messages survived and counted, checkpoints hot-swapped or refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from sdm_policy_core.bench.latency import make_checkpoints
from test.conftest import PYTHON, REPO, wait_for

PEERS = str(REPO / "test" / "ros" / "peers.py")
ROBOT = str(REPO / "test" / "ros" / "robot_peer.py")
NODE_EXE = REPO / "install" / "sdm_policy_ros" / "lib" / "sdm_policy_ros" / "policy_node"
PARAMS_FILE = str(REPO / "config" / "policy.yaml")
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
            }
        )
    )
    return path


def _node(processes, robot_yaml, checkpoint, *params: str, name="policy_node"):
    cmd = [
        str(NODE_EXE),
        "--ros-args",
        "--params-file",
        PARAMS_FILE,
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
        lambda: "started disabled" in processes.log(node) or node.poll() is not None,
        60,
        what="policy_node start",
    )
    assert node.poll() is None, processes.log(node)
    return node


def _call(processes, srv_type, service, request, name):
    proc = processes.start(
        [PYTHON, PEERS, "call", srv_type, json.dumps(request), "--service", service], name
    )
    proc.wait(30)
    lines = [ln for ln in processes.log(proc).splitlines() if ln.startswith("RESULT ")]
    assert lines, processes.log(proc)
    return json.loads(lines[-1][len("RESULT ") :])


def _records(processes, recorder, kind: str) -> list[dict]:
    prefix = kind + " "
    return [
        json.loads(ln[len(prefix) :])
        for ln in processes.log(recorder).splitlines()
        if ln.startswith(prefix)
    ]


def test_commands_only_while_enabled_and_fresh(processes, robot_yaml, sdm_ckpt):
    node = _node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0", "stale_age_s:=0.3")
    recorder = processes.start([PYTHON, ROBOT, "record"], "record")
    wait_for(lambda: "READY" in processes.log(recorder), 30, what="recorder")
    stream = processes.start([PYTHON, ROBOT, "stream", "--rate", "30"], "stream")
    time.sleep(2.0)
    assert _records(processes, recorder, "CMD") == []  # fed, but not enabled: nothing
    assert _call(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": True}, "enable"
    )["success"]
    t_enabled = time.time()
    time.sleep(3.0)
    t_stop = time.time()
    processes.stop(stream)
    time.sleep(2.0)
    t_restart = time.time()
    stream2 = processes.start([PYTHON, ROBOT, "stream", "--rate", "30"], "stream2")
    wait_for(
        lambda: any(c["t"] > t_restart for c in _records(processes, recorder, "CMD")),
        20,
        what="commands after the sensor came back",
    )
    time.sleep(1.0)
    processes.stop(stream2)
    time.sleep(0.5)
    commands = _records(processes, recorder, "CMD")
    assert processes.stop(node) == 0, processes.log(node)

    first = [c for c in commands if c["t"] < t_stop]
    rate = len(first) / (t_stop - t_enabled)
    assert 12.0 <= rate <= 22.0, f"{rate:.1f} Hz at 20 Hz configured"
    for c in commands:
        assert c["names"] == JOINTS and len(c["points"]) == 1
        assert np.all(np.abs(c["points"][0]) <= LIMIT + 1e-9)
    targets = np.array([c["points"][0] for c in first])
    assert np.all(np.abs(np.diff(targets, axis=0)) <= MAX_STEP + 1e-6)
    # Sensor silent: nothing after stale_age (0.3 s) plus one tick and delivery margin.
    silent = [c for c in commands if t_stop + 0.6 < c["t"] < t_restart]
    assert silent == [], f"{len(silent)} commands from stale data"
    assert [c for c in commands if c["t"] > t_restart]
    statuses = _records(processes, recorder, "STATUS")
    assert any(s["state"] == 4 and s["skipped_ticks"] > 0 for s in statuses)  # HOLDING
    assert any(s["state"] == 3 and s["control_rate"] > 10 for s in statuses)  # RUNNING


def test_malformed_messages_are_survived_counted_and_never_acted_on(
    processes, robot_yaml, sdm_ckpt
):
    node = _node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0")
    recorder = processes.start([PYTHON, ROBOT, "record"], "record")
    wait_for(lambda: "READY" in processes.log(recorder), 30, what="recorder")
    assert _call(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": True}, "enable"
    )["success"]
    fuzz = processes.start([PYTHON, ROBOT, "fuzz", "--count", "1050", "--rate", "100"], "fuzz")
    fuzz.wait(120)
    report = [ln for ln in processes.log(fuzz).splitlines() if ln.startswith("FUZZ ")]
    assert report, processes.log(fuzz)
    sent = json.loads(report[0][5:])
    assert sum(sent.values()) == 1050 and len(sent) == 14
    time.sleep(1.0)
    assert node.poll() is None, processes.log(node)  # alive
    assert _records(processes, recorder, "CMD") == []  # nothing derived from them
    status = _records(processes, recorder, "STATUS")[-1]
    rejected = status["rejected_point_clouds"] + status["rejected_states"]
    # Every malformed message that DDS delivered is counted (each kind is rejected: see
    # test_each_malformed_kind_is_rejected). The node's sensor subscriptions are best-effort
    # with a short queue (sensor QoS: keep the newest), so a loaded 2-core machine drops some.
    assert 0.5 * 1050 <= rejected <= 1050, status
    assert status["state"] == 2  # still waiting for valid data
    assert processes.stop(node) == 0, processes.log(node)


def test_checkpoint_hot_swap_and_refusal(processes, robot_yaml, sdm_ckpt, teacher_ckpt, tmp_path):
    node = _node(processes, robot_yaml, sdm_ckpt)
    recorder = processes.start([PYTHON, ROBOT, "record"], "record")
    wait_for(lambda: "READY" in processes.log(recorder), 30, what="recorder")
    first = wait_for(lambda: _records(processes, recorder, "STATUS"), 20, what="status")
    old_id = first[-1]["policy_id"]
    assert old_id.endswith("latest@20")
    swapped = _call(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(teacher_ckpt), "sampler": "ddim", "steps": 4},
        "swap",
    )
    assert swapped["success"], swapped
    assert swapped["policy_id"].endswith("latest@40") and "disabled" in swapped["message"]
    # A checkpoint whose state/action sizes do not fit the robot is refused; the old one stays.
    _, wrong_sdm, _ = make_checkpoints(
        "cpu_small", tmp_path, num_points=32, state_dim=9, action_dim=4
    )
    refused = _call(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(wrong_sdm)},
        "refuse",
    )
    assert not refused["success"]
    assert "state_dim 9 != 4" in refused["message"]
    assert refused["policy_id"] == swapped["policy_id"]
    missing = _call(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(tmp_path / "nope")},
        "miss",
    )
    assert not missing["success"] and "does not exist" in missing["message"]
    time.sleep(0.5)
    assert _records(processes, recorder, "STATUS")[-1]["policy_id"] == swapped["policy_id"]
    # The swapped-in teacher drives the robot once enabled.
    stream = processes.start([PYTHON, ROBOT, "stream", "--rate", "30"], "stream")
    assert _call(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": True}, "enable"
    )["success"]
    wait_for(lambda: _records(processes, recorder, "CMD"), 20, what="teacher commands")
    processes.stop(stream)
    assert processes.stop(node) == 0, processes.log(node)


def test_image_policy_drives_the_robot_from_camera_frames(processes, robot_yaml, image_ckpt):
    node = _node(
        processes,
        robot_yaml,
        image_ckpt,
        "control_rate_hz:=10.0",
        "sampler:=ddim",
        "ddim_steps:=2",
        name="image_node",
    )
    recorder = processes.start([PYTHON, ROBOT, "record"], "record")
    wait_for(lambda: "READY" in processes.log(recorder), 30, what="recorder")
    stream = processes.start(
        [PYTHON, ROBOT, "stream", "--rate", "15", "--image", "64x48"], "stream"
    )
    assert _call(
        processes, "std_srvs/srv/SetBool", "/sdm_policy_node/enable", {"data": True}, "enable"
    )["success"]
    commands = wait_for(
        lambda: _records(processes, recorder, "CMD")[3:], 30, what="commands from camera frames"
    )
    assert all(np.all(np.abs(c["points"][0]) <= LIMIT + 1e-9) for c in commands)
    processes.stop(stream)
    assert processes.stop(node) == 0, processes.log(node)


def test_bench_node_measures_both_policies(tmp_path):
    from sdm_policy_core.cli import main as sdm

    out = tmp_path / "node.json"
    assert sdm(["bench", "node", "--points", "256", "--duration", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key in ("one_step", "teacher"):
        r = result[key]
        assert r["latency_ms"]["p50"] > 0 and r["latency_ms"]["p99"] >= r["latency_ms"]["p50"]
        assert r["rate_hz"] > 5 and r["chunks"] > 0
    assert result["points"] == 256 and result["teacher"]["sampler"] == "ddim10"


def test_each_malformed_kind_is_rejected_by_the_node_decoders():
    import sys

    import rclpy
    from rclpy.node import Node

    from sdm_policy_core.conversions import (
        ConversionError,
        joint_state_to_array,
        pointcloud2_to_array,
        stamp_to_seconds,
    )

    sys.path.insert(0, str(REPO / "test" / "ros"))
    import robot_peer

    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node("decoder_check", context=context)
    rng = np.random.default_rng(0)
    try:
        for k in range(14):
            kind, topic, msg = robot_peer.malformed(node, k, JOINTS, rng)
            with pytest.raises((ConversionError, ValueError)):
                if stamp_to_seconds(msg.header.stamp) <= 0:
                    raise ConversionError("zero stamp")  # the node's own stamp check
                if topic == "points":
                    points = pointcloud2_to_array(msg, 3)
                    if not np.isfinite(points).all(axis=1).any():
                        raise ConversionError("no finite points")
                else:
                    joint_state_to_array(msg, JOINTS)
                pytest.fail(f"malformed message {kind!r} was accepted")
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
