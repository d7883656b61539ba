# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""EpisodeRunner (what sim_bridge_node runs, without ROS) and the sim-eval result builder."""

from __future__ import annotations

import numpy as np
import pytest

from sdm_policy_core.eval.sim_in_loop import sim_eval_command, sim_eval_result
from sdm_policy_core.sim import ScriptedExpert, UnknownTaskError
from sdm_policy_core.sim.episode import EpisodeRunner


@pytest.fixture(scope="module")
def runner():
    r = EpisodeRunner(
        "button-press", control_period_s=0.05, max_episode_steps=100, env_kwargs={"num_points": 64}
    )
    yield r
    r.close()


def test_episode_bookkeeping_hold_end_and_sim_time(runner):
    assert not runner.active and runner.status.episode_id == 0
    obs = runner.reset(seed=4)
    first = obs["point_cloud"].copy()
    st = runner.status
    assert runner.active and st.episode_id == 1 and st.sim_time_ns == 50_000_000
    runner.step(np.array([0.0, 0.0, 0.0, 1.0]))  # close the gripper
    hand = runner.env.agent_pos()[:3]
    for _ in range(3):
        obs = runner.step(None)  # hold: zero displacement, the last gripper effort
    np.testing.assert_allclose(runner.hold_action, [0, 0, 0, 1.0])
    assert np.abs(obs["agent_pos"][:3] - hand).max() < 5e-3
    assert (st.step, st.held_steps, st.commanded_steps) == (4, 3, 1)
    assert st.sim_time_ns == 5 * 50_000_000
    with pytest.raises(ValueError, match="4 finite values"):
        runner.step(np.array([0.0, np.nan, 0.0, 0.0]))
    runner.end()
    assert runner.status.done and runner.status.end_reason == "ended"
    with pytest.raises(RuntimeError, match="reset first"):
        runner.step(None)
    summary = runner.summary()
    assert summary["step"] == 4 and summary["wall_s"] > 0 and "start_wall" not in summary
    # The same seed gives the same scene; time keeps going forward across episodes.
    np.testing.assert_array_equal(runner.reset(seed=4)["point_cloud"], first)
    assert runner.status.episode_id == 2 and runner.status.sim_time_ns == 6 * 50_000_000
    with pytest.raises(UnknownTaskError, match="Did you mean"):
        runner.reset(seed=1, task="button-pres")
    assert runner.active and runner.task == "button-press-v3"  # a refused reset changes nothing


def test_episode_ends_at_success_or_the_step_limit(runner):
    expert = ScriptedExpert("button-press-v3")
    runner.reset(seed=0)
    obs = {}
    while obs is not None:
        obs = runner.step(expert.act_on_state(runner.full_state()))
    st = runner.status
    assert st.success and st.end_reason == "success" and st.step == st.first_success_step < 100
    runner.reset(seed=0)
    obs = runner.reset(seed=0)  # a reset ends the running episode ('reset') and starts anew
    while obs is not None:
        obs = runner.step(None)
    assert runner.status.end_reason == "max_steps" and runner.status.step == 100
    assert not runner.status.success and runner.status.held_steps == 100


def test_sim_eval_result_has_the_sdm_eval_keys_and_the_ros_loop_measurements():
    records = [
        {
            "seed": 0,
            "index": i,
            "reset_seed": 10 + i,
            "success": i == 0,
            "length": 20 + i,
            "reward": 1.0,
            "latencies_s": [0.01, 0.02],
            "chunk_delays_s": [0.015],
            "command_latencies_ms": [1.0, 3.0],
            "held_steps": i,
            "wall_s": 2.0,
        }
        for i in range(2)
    ]
    meta = {
        "task": "button-press-v3",
        "seeds": [0],
        "episodes": 2,
        "sampler": "ddim",
        "steps": 10,
        "kind": "teacher",
        "step_mode": "lockstep",
        "backend": "onnxruntime",
        "noise": "numpy",
    }
    r = sim_eval_result(meta, records)
    assert (r["backend"], r["noise"]) == ("onnxruntime", "numpy")  # what the node ran
    for key in (
        "success_rate",
        "episodes",
        "seeds",
        "sampler",
        "steps",
        "latency_ms",
        "control_hz",
        "per_seed",
        "episode_results",
        "kind",
    ):
        assert key in r, key
    assert r["success_rate"] == 0.5 and r["held_steps"] == 1
    assert r["achieved_control_hz"] == pytest.approx(41 / 4.0)
    assert r["latency_ms"]["p50"] == pytest.approx(15.0)
    assert r["command_latency_ms"]["n"] == 4 and r["chunk_latency_ms"]["p50"] == pytest.approx(15)
    assert r["control_hz"] == pytest.approx(1000 / (1000 * 0.06 / 41))
    assert "latencies_s" not in r["episode_results"][0]
    cmd = sim_eval_command("ck", "button-press-v3", 3, [0, 1], "r.json", sampler="ddim")
    assert cmd[1:4] == ["-m", "sdm_policy_ros.launch_runner", "sim_eval"]
    assert "seeds:=0,1" in cmd and "sampler:=ddim" in cmd and "sim:=mujoco" in cmd
    assert "backend:=torch" in cmd and "noise:=torch" in cmd  # today's node, by default
    cmd = sim_eval_command("ck", "obstacle-2d", 1, [0], "r.json", backend="onnxruntime")
    assert "backend:=onnxruntime" in cmd


def test_the_runner_serves_obstacle_2d_state_only_with_its_own_ends_and_names():
    """The runner serves obstacle-2d (state only) with its own ends and names.

    The bridge's runner on a registry task: agent_pos under the robot profile's names, a
    zero command holds still, a collision ends the episode as `failed`, the expert's episode
    as `success`; tasks it cannot serve are refused naming the ones it can.
    """
    from sdm_policy_core.robot import load_robot_profile
    from sdm_policy_core.sim.episode import served_task
    from sdm_policy_core.sim.obstacle import ObstacleExpert

    runner = EpisodeRunner("obstacle-2d", control_period_s=0.1)
    assert (runner.family, runner.max_episode_steps, runner.action_dim) == ("obstacle-2d", 60, 2)
    assert runner.state_names == load_robot_profile("obstacle_2d").state_names == ("x", "y")
    assert runner.observation_keys == ("agent_pos",) and runner.full_state() is None
    start = runner.reset(seed=3)["agent_pos"].copy()
    obs = runner.step(None)
    np.testing.assert_array_equal(obs["agent_pos"], start)  # hold: stand still
    while obs is not None:
        obs = runner.step(np.array([0.0, 1.0]))  # straight ahead: into the disc
    st = runner.status
    assert (st.end_reason, st.success, st.held_steps) == ("failed", False, 1) and st.step < 10
    expert = ObstacleExpert()
    obs = runner.reset(seed=3)
    while obs is not None:
        obs = runner.step(expert.act(runner.env))
    assert runner.status.end_reason == "success" and runner.status.success
    with pytest.raises(ValueError, match="2 finite values"):
        runner.reset(seed=1)
        runner.step(np.zeros(4))
    with pytest.raises(ValueError, match="needs a bridge of its own"):
        runner.reset(seed=1, task="button-press")
    assert runner.task == "obstacle-2d"
    assert EpisodeRunner("obstacle-2d-cue").state_names == ("x", "y", "side")
    with pytest.raises(ValueError, match=r"not served by the sim bridge.*obstacle-2d"):
        served_task("pusht")
    with pytest.raises(UnknownTaskError, match="obstacle-2d, obstacle-2d-cue"):
        served_task("obstacle-3d")
