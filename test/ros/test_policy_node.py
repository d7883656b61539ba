# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The policy node with a real checkpoint, real DDS and a fake robot in other processes.

The policy node with a real checkpoint, real DDS and a fake robot in other processes:
commands at the configured rate only while enabled and fed fresh data, limits respected,
malformed messages survived and counted, checkpoints hot-swapped or refused.
"""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest
import yaml

from sdm_policy_core.bench.latency import make_checkpoints
from sdm_policy_core.deploy.timing import STAGES
from test.conftest import PYTHON, REPO, wait_for
from test.ros.conftest import (
    JOINTS,
    LIMIT,
    MAX_STEP,
    PEERS,
    ROBOT_PEER,
    call_service,
    enable_node,
    recorded,
    start_node,
    start_recorder,
)


def test_commands_only_while_enabled_and_fresh(processes, robot_yaml, sdm_ckpt):
    node = start_node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0", "stale_age_s:=0.3")
    recorder = start_recorder(processes)
    stream = processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    time.sleep(2.0)
    assert recorded(processes, recorder, "CMD") == []  # fed, but not enabled: nothing
    enable_node(processes)
    t_enabled = time.time()
    time.sleep(3.0)
    t_stop = time.time()
    processes.stop(stream)
    time.sleep(2.0)
    t_restart = time.time()
    stream2 = processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream2")
    wait_for(
        lambda: any(c["t"] > t_restart for c in recorded(processes, recorder, "CMD")),
        20,
        what="commands after the sensor came back",
    )
    time.sleep(1.0)
    processes.stop(stream2)
    time.sleep(0.5)
    commands = recorded(processes, recorder, "CMD")
    assert processes.stop(node) == 0, processes.log(node)

    first = [c for c in commands if c["t"] < t_stop]
    rate = len(first) / (t_stop - t_enabled)
    assert 12.0 <= rate <= 22.0, f"{rate:.1f} Hz at 20 Hz configured"
    for c in commands:
        assert c["names"] == JOINTS and len(c["points"]) == 1
        assert np.all(np.abs(c["points"][0]) <= LIMIT + 1e-9)
    # Sensor silent: nothing after stale_age (0.3 s) plus one tick and delivery margin.
    silent = [c for c in commands if t_stop + 0.6 < c["t"] < t_restart]
    assert silent == [], f"{len(silent)} commands from stale data"
    assert [c for c in commands if c["t"] > t_restart]
    statuses = recorded(processes, recorder, "STATUS")
    assert any(s["state"] == 4 and s["skipped_ticks"] > 0 for s in statuses)  # HOLDING
    assert any(s["state"] == 3 and s["control_rate"] > 10 for s in statuses)  # RUNNING


def test_clouds_in_an_unknown_frame_are_refused_not_guessed(processes, robot_yaml, sdm_ckpt):
    """Clouds in an unknown frame are refused, not guessed.

    Clouds are placed in the base frame by tf2 where tf2_ros is importable, else by the
    profile's camera mount (frame `camera` here). A cloud in a frame neither knows never
    reaches the policy; one already in base_frame is used as it is.
    """
    node = start_node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0")
    source = "tf" if importlib.util.find_spec("tf2_ros") else "profile"
    assert f"clouds placed by {source}" in processes.log(node)
    recorder = start_recorder(processes)
    enable_node(processes)
    lidar = processes.start([PYTHON, ROBOT_PEER, "stream", "--frame", "lidar_link"], "lidar")
    wait_for(
        lambda: any(
            s["rejected_point_clouds"] >= 20 for s in recorded(processes, recorder, "STATUS")
        ),
        30,
        what="clouds in frame lidar_link rejected",
    )
    assert recorded(processes, recorder, "CMD") == []
    why = "cloud in frame 'lidar_link'" if source == "profile" else "base_link <- lidar_link"
    assert why in processes.log(node), processes.log(node)
    processes.stop(lidar)
    base = processes.start([PYTHON, ROBOT_PEER, "stream", "--frame", "base_link"], "base")
    wait_for(
        lambda: recorded(processes, recorder, "CMD"), 30, what="commands from base_link clouds"
    )
    processes.stop(base)
    assert processes.stop(node) == 0, processes.log(node)


def test_observation_trigger_acts_once_per_observation_not_per_copy(
    processes, robot_yaml, sdm_ckpt
):
    """The observation trigger acts once per observation, not per copy.

    trigger: observation acts on each new cloud; copies of one (same stamp, as a lockstep
    simulator resends an unanswered observation) are not acted on again.
    """
    # observation_sync_s: the joint state of the same step, as lockstep simulators are run (a
    # cloud that overtakes its state would be acted on with the previous step's joints).
    params = ("trigger:=observation", "sensor_qos:=reliable", "stale_age_s:=5.0")
    params += ("observation_sync_s:=1.0",)
    node = start_node(processes, robot_yaml, sdm_ckpt, *params)
    recorder = start_recorder(processes)
    enable_node(processes)
    repeat = processes.start(
        [PYTHON, ROBOT_PEER, "repeat", "--count", "3", "--copies", "4"], "rep"
    )
    assert repeat.wait(60) == 0 and "SENT" in processes.log(repeat), processes.log(repeat)
    time.sleep(1.0)
    assert len(recorded(processes, recorder, "CMD")) == 3, processes.log(node)
    assert processes.stop(node) == 0, processes.log(node)


def test_malformed_messages_are_survived_counted_and_never_acted_on(
    processes, robot_yaml, sdm_ckpt
):
    node = start_node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0")
    recorder = start_recorder(processes)
    enable_node(processes)
    fuzz = processes.start(
        [PYTHON, ROBOT_PEER, "fuzz", "--count", "1050", "--rate", "100"], "fuzz"
    )
    fuzz.wait(120)
    report = [ln for ln in processes.log(fuzz).splitlines() if ln.startswith("FUZZ ")]
    assert report, processes.log(fuzz)
    sent = json.loads(report[0][5:])
    assert sum(sent.values()) == 1050 and len(sent) == 14
    time.sleep(1.0)
    assert node.poll() is None, processes.log(node)  # alive
    assert recorded(processes, recorder, "CMD") == []  # nothing derived from them
    status = recorded(processes, recorder, "STATUS")[-1]
    rejected = status["rejected_point_clouds"] + status["rejected_states"]
    # Every malformed message that DDS delivered is counted (each kind is rejected: see
    # test_each_malformed_kind_is_rejected). The node's sensor subscriptions are best-effort
    # with a short queue (sensor QoS: keep the newest), so a loaded 2-core machine drops some.
    assert 0.5 * 1050 <= rejected <= 1050, status
    assert status["state"] == 2  # still waiting for valid data
    assert processes.stop(node) == 0, processes.log(node)


def test_checkpoint_hot_swap_and_refusal(processes, robot_yaml, sdm_ckpt, teacher_ckpt, tmp_path):
    node = start_node(processes, robot_yaml, sdm_ckpt)
    recorder = start_recorder(processes)
    first = wait_for(lambda: recorded(processes, recorder, "STATUS"), 20, what="status")
    old_id = first[-1]["policy_id"]
    assert old_id.endswith("latest@20")
    swapped = call_service(
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
    refused = call_service(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(wrong_sdm)},
        "refuse",
    )
    assert not refused["success"]
    assert "state_dim 9 != 4" in refused["message"]
    assert refused["policy_id"] == swapped["policy_id"]
    missing = call_service(
        processes,
        "sdm_msgs/srv/LoadCheckpoint",
        "/sdm_policy_node/load_checkpoint",
        {"path": str(tmp_path / "nope")},
        "miss",
    )
    assert not missing["success"] and "does not exist" in missing["message"]
    time.sleep(0.5)
    assert recorded(processes, recorder, "STATUS")[-1]["policy_id"] == swapped["policy_id"]
    # The swapped-in teacher drives the robot once enabled.
    stream = processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    enable_node(processes)
    wait_for(lambda: recorded(processes, recorder, "CMD"), 20, what="teacher commands")
    processes.stop(stream)
    assert processes.stop(node) == 0, processes.log(node)


def test_image_policy_drives_the_robot_from_camera_frames(processes, robot_yaml, image_ckpt):
    node = start_node(
        processes,
        robot_yaml,
        image_ckpt,
        "control_rate_hz:=10.0",
        "sampler:=ddim",
        "ddim_steps:=2",
        name="image_node",
    )
    recorder = start_recorder(processes)
    stream = processes.start(
        [PYTHON, ROBOT_PEER, "stream", "--rate", "15", "--image", "64x48"], "stream"
    )
    enable_node(processes)
    commands = wait_for(
        lambda: recorded(processes, recorder, "CMD")[3:], 30, what="commands from camera frames"
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
        # where the time went: the node's own breakdown of its planned steps, whose stages add
        # up to its stamp -> publish latency, and the same model's call alone
        pipeline, total = r["pipeline"], r["pipeline"]["total_ms"]
        assert pipeline["steps"] > 0 and set(pipeline["stages_ms"]) == set(STAGES)
        means = [pipeline["stages_ms"][name]["mean"] for name in STAGES]
        assert sum(means) == pytest.approx(total["mean"]) and total["p99"] >= total["p50"] > 0
        assert r["isolated_call_ms"]["p50"] > 0
        assert r["over_isolated_p50_ms"] == pytest.approx(
            r["latency_ms"]["p50"] - r["isolated_call_ms"]["p50"]
        )
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


def test_tf_places_each_cloud_where_tf2_ros_is_installed(processes, tmp_path, sdm_ckpt):
    """Each cloud is placed by tf where tf2_ros is installed.

    With tf2_ros (a ROS 2 install; not the PyPI wheels of this machine), clouds are placed
    by tf: here base_link <- camera is (1, 1, 1) m on /tf_static while the profile's mount is
    identity, and only tf's placement puts the points inside the crop box.
    """
    pytest.importorskip("tf2_ros")
    robot = tmp_path / "crop_arm.yaml"
    profile = {
        "description": "4-joint test arm, crop box around (1, 1, 1) m",
        "base_frame": "base_link",
        "state_names": JOINTS,
        "action_names": JOINTS,
        "lower": [-LIMIT] * 4,
        "upper": [LIMIT] * 4,
        "max_step": MAX_STEP,
        "crop_low": [0.4, 0.4, 0.4],
        "crop_high": [1.6, 1.6, 1.6],
        "camera": {"frame_id": "camera"},
    }
    robot.write_text(yaml.safe_dump(profile))
    tf = {
        "header": {"frame_id": "base_link"},
        "child_frame_id": "camera",
        "transform": {"translation": {"x": 1.0, "y": 1.0, "z": 1.0}, "rotation": {"w": 1.0}},
    }
    pub = [PYTHON, PEERS, "pub", "tf2_msgs/msg/TFMessage", json.dumps({"transforms": [tf]})]
    static = processes.start([*pub, "--topic", "/tf_static", "--timeout", "120"], "tf_static")
    wait_for(lambda: "published" in processes.log(static), 30, what="/tf_static")
    node = start_node(processes, robot, sdm_ckpt, "transform_source:=tf", "control_rate_hz:=20.0")
    recorder = start_recorder(processes)
    stream = processes.start([PYTHON, ROBOT_PEER, "stream", "--frame", "camera"], "stream")
    enable_node(processes)
    wait_for(
        lambda: recorded(processes, recorder, "CMD"), 30, what="commands from tf-placed clouds"
    )
    processes.stop(stream)
    assert processes.stop(node) == 0, processes.log(node)


@pytest.mark.parametrize("trigger", ["timer", "observation"])
def test_a_state_only_checkpoint_is_driven_by_joint_states_alone(
    processes, robot_yaml, tmp_path, trigger
):
    """A state-only checkpoint is driven by joint states alone.

    A policy trained on data/state + data/action: the node needs joint states only (the
    clouds robot_peer also streams are not used; with trigger observation each joint state
    is a step) and commands within the profile's limits.
    """
    from sdm_policy_core.cli import main as sdm
    from test.conftest import TINY, write_dataset

    rng = np.random.default_rng(0)
    state = rng.uniform(-0.2, 0.2, (24, 4)).astype(np.float32)
    data = write_dataset(tmp_path / "s.zarr", state=state, action=np.roll(state, -1, axis=0))
    run = tmp_path / "state_only"
    assert sdm(["train", "--dataset", str(data), "--out", str(run), "--no-progress", *TINY]) == 0
    node = start_node(
        processes,
        robot_yaml,
        run / "checkpoints" / "latest",
        "control_rate_hz:=20.0",
        f"trigger:={trigger}",
    )
    recorder = start_recorder(processes)
    processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30"], "stream")
    enable_node(processes)
    wait_for(lambda: len(recorded(processes, recorder, "CMD")) >= 10, 30, what="10 commands")
    commands = recorded(processes, recorder, "CMD")
    assert all(np.all(np.abs(c["points"][0]) <= LIMIT + 1e-9) for c in commands)
    assert processes.stop(node) == 0, processes.log(node)
