# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm sim-eval` against the in-process `sdm eval` of the same checkpoint and seeds.

`sdm sim-eval` (sim bridge + policy node + driver as real ROS 2 processes) against the
in-process `sdm eval` of the same checkpoint and seeds.

Tolerance: none is needed for the outcome. Both runs use the same reset seed per episode
(`episode_seed(s, i, EVAL_STREAM)`), the same sampler noise (generator seeded with the
evaluation seed, consumed by the same sequence of policy calls) and the same observations
(lockstep: one simulation step per command, every action of a chunk executed, the cloud
published at the checkpoint's point count so no second sampling happens, the state of the same
step). So the episodes must be the same trajectories: identical success, length and number of
policy calls, and rewards equal to float rounding (1e-6 relative; torch runs with the same
thread count in both). Sampling noise therefore cannot separate the two success rates; with a
checkpoint that succeeds sometimes, a binomial tolerance (2 sigma of N episodes) would apply
only if the noise streams differed, which this test would then report as a trajectory mismatch.
"""

from __future__ import annotations

import json

import pytest

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.eval import evaluate
from sdm_policy_core.sim import episode_seed

CONTRACT = ("success_rate", "episodes", "seeds", "sampler", "steps", "latency_ms", "control_hz")


def test_sim_eval_over_ros_reproduces_in_process_eval(mw_checkpoint, tmp_path, capsys):
    out = tmp_path / "ros.json"
    args = ["sim-eval", "--checkpoint", str(mw_checkpoint), "--task", "button-press-v3"]
    args += ["--episodes", "2", "--seed", "1", "--max-episode-steps", "30", "--threads", "1"]
    args += ["--out", str(out), "--timeout-s", "150", "--command-timeout-s", "20"]
    assert sdm_main(args) == 0, out.with_suffix(".log").read_text()[-3000:]
    printed = capsys.readouterr().out
    assert "[sim-eval] episode 2/2 seed 1" in printed and "over ROS 2: success" in printed
    ros = json.loads(out.read_text())
    assert out.with_suffix(".png").is_file() and out.with_suffix(".log").is_file()

    local = evaluate(
        mw_checkpoint,
        "button-press-v3",
        2,
        seeds=[1],
        threads=1,
        max_episode_steps=30,
        progress=False,
    ).result
    for key in CONTRACT:
        assert key in ros, key
    assert set(ros["latency_ms"]) >= {"p50", "p99"}
    assert (
        (ros["sampler"], ros["steps"], ros["seeds"], ros["episodes"])
        == (
            local["sampler"],
            local["steps"],
            local["seeds"],
            local["episodes"],
        )
        == ("ddim", 10, [1], 2)
    )
    assert ros["held_steps"] == 0  # lockstep: the robot never waited for a late command
    assert (ros["backend"], ros["noise"]) == ("torch", "torch")  # read from the policy node
    assert ros["achieved_control_hz"] > 1 and ros["chunk_latency_ms"]["n"] > 0
    for r, e in zip(ros["episode_results"], local["episode_results"], strict=True):
        assert r["reset_seed"] == e["reset_seed"] == episode_seed(1, e["index"], stream=1)
        assert (r["success"], r["length"], r["policy_calls"]) == (
            e["success"],
            e["length"],
            e["policy_calls"],
        )
        assert r["reward"] == pytest.approx(e["reward"], rel=1e-6)
    assert ros["success_rate"] == local["success_rate"]
    assert ros["mean_episode_length"] == local["mean_episode_length"]
