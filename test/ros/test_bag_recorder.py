# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Expert demonstrations recorded through ROS 2 equal `sdm demos`' in-process dataset.

Expert demonstrations recorded through ROS 2 — sim_record (sim bridge + expert teleop +
bag_recorder + driver in demos mode, real processes) -> rosbag2 bag (mcap) -> `sdm bag2zarr` —
give exactly the dataset `sdm demos --stop-on-success` records in-process for the same
placements: clouds, states and actions equal bit for bit.
"""

from __future__ import annotations

import json

import numpy as np
from rosbags.highlevel import AnyReader

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.sim import MetaWorldEnv, ScriptedExpert, episode_seed
from sdm_policy_core.sim.demos import record_episode
from test.conftest import PYTHON, REPO

TOPICS = {"/points", "/joint_states", "/joint_commands", "/episode_status"}


def test_recorded_bag_converts_to_the_in_process_demonstrations(processes, tmp_path):
    bag, summary = tmp_path / "demos_bag", tmp_path / "demos.json"
    launch = processes.start(
        [
            PYTHON,
            "-m",
            "sdm_policy_ros.launch_runner",
            "sim_record",
            f"bag:={bag}",
            "episodes:=2",
            "seed:=0",
            "stop_on_success:=5",
            f"result:={summary}",
        ],
        "sim_record",
    )
    assert launch.wait(120) == 0, processes.log(launch)[-3000:]
    log = processes.log(launch)
    assert "[sim-eval] recorded 2/2 demos" in log
    demos = json.loads(summary.read_text())
    assert demos["attempts"] == 2 and not demos["discarded"]
    seeds = [k["reset_seed"] for k in demos["kept"]]
    assert seeds == [episode_seed(0, i) for i in range(2)]  # sdm demos' first placements
    lengths = [k["length"] for k in demos["kept"]]
    assert f"RECORDED /points sensor_msgs/msg/PointCloud2 {sum(lengths)}" in log
    assert f"RECORDED /joint_commands std_msgs/msg/Float64MultiArray {sum(lengths)}" in log
    with AnyReader([bag]) as reader:  # a rosbag2 bag any reader decodes, definitions inside
        assert {c.topic for c in reader.connections} == TOPICS
    assert list(bag.glob("*.mcap")) and (bag / "metadata.yaml").is_file()

    out = tmp_path / "demos.zarr"
    config = REPO / "config" / "bag2zarr" / "metaworld_sim.yaml"
    args = ["bag2zarr", str(bag), "--out", str(out), "--config", str(config), "--no-progress"]
    assert sdm_main([*args, "--workers", "0"]) == 0
    data = ReplayBuffer.load(out)
    np.testing.assert_array_equal(data.episode_ends, np.cumsum(lengths))

    with MetaWorldEnv("button-press-v3", num_points=512) as env:
        expert = ScriptedExpert("button-press-v3")
        start = 0
        for seed, length in zip(seeds, lengths, strict=True):
            arrays, success_steps, _ = record_episode(env, expert, seed, stop_on_success=True)
            assert success_steps == 5 and len(arrays["action"]) == length
            for key in ("point_cloud", "state", "action"):
                np.testing.assert_array_equal(data[key][start : start + length], arrays[key])
            start += length
