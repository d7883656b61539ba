# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""sim_bridge_node as a real process: validation, determinism, a teleoperated episode.

sim_bridge_node as a real process: start-up validation, reset/seed determinism (the same
cloud as the in-process simulator), and a scripted-expert teleoperated episode that succeeds.
"""

from __future__ import annotations

import json
import time

import numpy as np

from sdm_policy_core.sim import MetaWorldEnv, ScriptedExpert, episode_seed
from test.conftest import PYTHON, REPO, wait_for
from test.ros.conftest import (
    BIN,
    peer_result,
    start_bridge,
    start_peer,
    start_policy,
)

PEERS = str(REPO / "test" / "ros" / "peers.py")


def test_bridge_refuses_bad_parameters_naming_what_is_valid(processes):
    bad_task = processes.start(
        [str(BIN / "sim_bridge_node"), "--ros-args", "-p", "task:=button-pres"], "bad_task"
    )
    assert bad_task.wait(60) == 2
    log = processes.log(bad_task)
    assert "cannot start" in log and "Did you mean button-press-v3" in log
    assert "door-open-v3" in log  # the list of valid tasks
    bad_mode = processes.start(
        [str(BIN / "sim_bridge_node"), "--ros-args", "-p", "step_mode:=fast"], "bad_mode"
    )
    assert bad_mode.wait(60) == 2
    assert "step_mode must be one of ['lockstep', 'realtime'], got 'fast'" in processes.log(
        bad_mode
    )


def test_same_seed_gives_the_same_first_cloud_as_the_in_process_simulator(processes):
    # No command comes in these episodes: a long timeout keeps the bridge from holding (and
    # stepping) while the peer's end_episode call is still being discovered on a busy machine.
    start_bridge(processes, num_points=256, command_timeout_s=10.0)
    clouds = {}
    for run, seed in enumerate((11, 11, 12)):
        peer = start_peer(
            processes, "episode", "--seed", str(seed), "--first-only", name=f"p{run}"
        )
        result = peer_result(processes, peer)
        assert result["reset"]["success"] and result["report"]["seed"] == seed
        assert result["report"]["end_reason"] == "ended" and result["report"]["step"] == 0
        clouds[run] = np.asarray(result["first_cloud"], dtype=np.float32)
        assert clouds[run].shape == (256, 3)
    np.testing.assert_array_equal(clouds[0], clouds[1])  # same seed: the same scene, bitwise
    assert not np.array_equal(clouds[0], clouds[2])  # another seed: another placement
    with MetaWorldEnv("button-press-v3", num_points=256) as env:
        np.testing.assert_array_equal(env.reset(seed=11)["point_cloud"], clouds[0])


def test_expert_teleop_drives_the_bridge_to_success(processes):
    # No resends: the expert answers every observation it gets, so a resend on a loaded machine
    # (the expert slower than observation_resend_s) would add a command for that step (a CI
    # failure, 58 commands for 49 steps); resends are the next test's subject.
    start_bridge(processes, command_timeout_s=5.0, observation_resend_s=0.0)
    teleop = processes.start([str(BIN / "expert_teleop_node")], "teleop")
    # matched both ways: a command lost to discovery would count as a held step
    wait_for(lambda: "connected:" in processes.log(teleop), 60, what="the teleoperator")
    seed = episode_seed(0, 0, stream=1)
    peer = start_peer(processes, "episode", "--seed", str(seed), "--commanders", "1")
    result = peer_result(processes, peer)
    report = result["report"]
    assert report["success"] and report["done"] and report["end_reason"] == "success"
    assert report["held_steps"] == 0 and report["commanded_steps"] == report["step"] < 200
    assert report["achieved_hz"] > 5  # lockstep: as fast as the expert answers
    # The same scripted expert in-process takes the same steps and earns the same reward.
    with MetaWorldEnv("button-press-v3", num_points=512) as env:
        expert, steps, reward = ScriptedExpert("button-press-v3"), 0, 0.0
        env.reset(seed=seed)
        while True:
            _, r, success, done, _ = env.step(expert.act(env), observe=False)
            steps, reward = steps + 1, reward + r
            if success or done:
                break
    assert report["step"] == steps == report["first_success_step"]
    assert abs(report["reward"] - reward) < 1e-9
    assert len(result["commands"]) == len(result["states"]) == steps


def test_lockstep_resends_an_unanswered_observation_and_the_policy_acts_once(
    processes, mw_checkpoint
):
    """Lockstep resends an unanswered observation and the policy acts once.

    A policy that missed a step's observation (enabled late here; a late DDS match or a
    best-effort drop look the same to the bridge) gets it again, so the lockstep loop neither
    stalls nor holds (test_policy_node checks that copies are not acted on twice).
    """
    start_bridge(processes, max_episode_steps=12, command_timeout_s=60.0, observation_resend_s=0.1)
    start_policy(processes, mw_checkpoint, sensor_qos="reliable")
    run = start_peer(processes, "episode", "--seed", "4", "--timeout", "90", name="episode")
    wait_for(lambda: "STATUS 0 0" in processes.log(run), 60, what="the episode to start")
    time.sleep(1.5)  # the observation goes unanswered: the policy is still disabled
    request = json.dumps({"data": True})
    call = [PYTHON, PEERS, "call", "std_srvs/srv/SetBool", request]
    enable = processes.start([*call, "--service", "/sdm_policy_node/enable"], "enable")
    assert enable.wait(60) == 0, processes.log(enable)
    result = peer_result(processes, run, timeout=120)
    report = result["report"]
    assert report["done"] and report["held_steps"] == 0, report
    assert report["resent_observations"] >= 3, report
    assert len(result["commands"]) == report["commanded_steps"] == report["step"], report
