# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Faults with the simulator in the loop, as real processes.

1. The bridge is killed mid-episode: the policy node goes stale (status HOLDING, says why) and
   sends no command any more.
2. A new bridge comes up; the policy node (same process) drives it; then the policy node is
   killed mid-episode: the bridge holds the robot (zero displacement), ends the episode as failed
   at its step limit, and the next episode runs (driven by the expert teleoperator).
"""

from __future__ import annotations

import os
import signal

import numpy as np

from test.conftest import wait_for
from test.ros.conftest import BIN, peer_result, start_bridge, start_peer, start_policy

HOLDING = 4  # sdm_msgs/PolicyStatus.STATE_HOLDING


def _steps_seen(processes, peer) -> int:
    steps = [
        int(ln.split()[1]) for ln in processes.log(peer).splitlines() if ln.startswith("STATUS")
    ]
    return max(steps, default=-1)


def _kill(proc) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_bridge_or_policy_killed_mid_episode(processes, mw_checkpoint):
    bridge = start_bridge(processes, "bridge_a", max_episode_steps=400, command_timeout_s=5.0)
    policy = start_policy(processes, mw_checkpoint, stale_age_s=0.5)

    # 1. The bridge dies while the policy drives it.
    run = start_peer(
        processes,
        "episode",
        "--seed",
        "1",
        "--enable-policy",
        "--commanders",
        "1",
        "--timeout",
        "30",
        name="episode_a",
    )
    wait_for(lambda: _steps_seen(processes, run) >= 10, 60, what="the policy to drive 10 steps")
    _kill(bridge)
    processes.stop(run, timeout=2)
    watch = peer_result(
        processes, start_peer(processes, "watch", "--duration", "3", "--commanders", "1", name="w")
    )
    assert watch["commands"] == 0, "the policy kept commanding a dead simulator"
    assert watch["states"] and set(watch["states"]) == {HOLDING}, watch
    assert "no observation for" in watch["messages"][-1]

    # 2. A fresh bridge; the policy node drives it until it is killed mid-episode.
    start_bridge(processes, "bridge_b", max_episode_steps=80, command_timeout_s=1.5)
    run = start_peer(
        processes,
        "episode",
        "--seed",
        "2",
        "--enable-policy",
        "--commanders",
        "1",
        name="episode_b",
    )
    wait_for(lambda: _steps_seen(processes, run) >= 8, 60, what="the policy to drive 8 steps")
    _kill(policy)
    result = peer_result(processes, run)
    report = result["report"]
    assert report["done"] and not report["success"] and report["end_reason"] == "max_steps"
    assert report["step"] == 80 and report["commanded_steps"] >= 8
    assert report["held_steps"] >= 80 - 30  # the policy's in-flight commands, then holds
    # Holding: zero displacement keeps the hand's target where the last command put it; the
    # hand settles there (a policy's 1 cm/step commands would move it by centimetres).
    hands = np.asarray(result["states"])[-15:, :3]
    assert np.ptp(hands, axis=0).max() < 1e-3, np.ptp(hands, axis=0)

    # The next episode runs: a teleoperator takes over the same bridge and succeeds.
    teleop = processes.start([str(BIN / "expert_teleop_node")], "teleop")
    # matched both ways: a command lost to discovery would count as a held step
    wait_for(lambda: "connected:" in processes.log(teleop), 60, what="the teleoperator")
    nxt = peer_result(
        processes, start_peer(processes, "episode", "--seed", "3", "--commanders", "1", name="c")
    )
    assert nxt["reset"]["episode_id"] == report["episode_id"] + 1
    assert nxt["report"]["success"] and nxt["report"]["held_steps"] == 0, nxt["report"]
