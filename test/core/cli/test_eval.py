# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm eval`: receding-horizon rollouts and the JSON result contract."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from sdm_policy_core.cli import main as sdm
from sdm_policy_core.eval import run_episode
from sdm_policy_core.runtime import ActionChunk
from sdm_policy_core.sim import MetaWorldEnv

CONTRACT = {"success_rate", "episodes", "seeds", "sampler", "steps", "latency_ms", "control_hz"}


def test_eval_of_a_tiny_checkpoint_writes_the_contract(tiny_checkpoint, tmp_path):
    out = tmp_path / "result.json"
    code = sdm(
        [
            "eval",
            "--checkpoint",
            str(tiny_checkpoint),
            "--task",
            "button-press-v3",
            "--episodes",
            "1",
            "--seeds",
            "0",
            "1",
            "--steps",
            "2",
            "--max-episode-steps",
            "12",
            "--threads",
            "1",
            "--video",
            str(tmp_path / "episode.gif"),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) >= CONTRACT
    assert 0.0 <= result["success_rate"] <= 1.0
    assert result["episodes"] == 1 and result["seeds"] == [0, 1]
    assert (result["sampler"], result["steps"]) == ("ddim", 2)
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    assert result["control_hz"] > 0
    assert [p["seed"] for p in result["per_seed"]] == [0, 1]
    assert all(p["mean_episode_length"] == 12 for p in result["per_seed"])  # no success: limit
    # Receding horizon: 12 steps with n_action_steps 4 is 3 policy calls per episode.
    assert [e["policy_calls"] for e in result["episode_results"]] == [3, 3]
    assert result["latency_ms"]["n"] == 6
    assert (tmp_path / "result.png").stat().st_size > 0
    assert (tmp_path / "episode.gif").stat().st_size > 0


def test_eval_records_the_sampler_options(tiny_checkpoint, tmp_path, capsys):
    """`sdm eval` records the sampler options.

    --spacing trailing (DDIM-2 at [99, 49]) and --naive-timestep reach the runtime and the
    JSON; an option that does not fit the sampler is refused.
    """
    base = ["eval", "--checkpoint", str(tiny_checkpoint), "--task", "button-press-v3"]
    base += ["--episodes", "1", "--seed", "0", "--max-episode-steps", "4", "--threads", "1"]
    base += ["--no-progress", "--no-plot"]
    runs = {
        "trailing": ["--steps", "2", "--spacing", "trailing"],
        "leading": ["--steps", "2"],
        "naive": ["--sampler", "one-step", "--naive-timestep", "85"],
    }
    results = {}
    for name, extra in runs.items():
        assert sdm([*base, *extra, "--out", str(tmp_path / f"{name}.json")]) == 0
        results[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["trailing"]["timestep_spacing"] == "trailing"
    assert results["trailing"]["timesteps"] == [99, 49]
    assert results["leading"]["timestep_spacing"] == "leading"
    assert results["leading"]["timesteps"] == [50, 0]
    naive = results["naive"]
    assert (naive["sampler"], naive["naive_timestep"], naive["timesteps"]) == (
        "one-step",
        85,
        [85],
    )
    bad = [*base, "--steps", "2", "--naive-timestep", "85", "--out", str(tmp_path / "bad.json")]
    assert sdm(bad) == 2
    assert "naive_timestep applies to a teacher's 'one-step' sampler" in capsys.readouterr().err


def test_eval_refuses_bad_input(tiny_checkpoint, tmp_path, capsys):
    base = ["eval", "--checkpoint", str(tiny_checkpoint), "--episodes", "1"]
    out = ["--out", str(tmp_path / "r.json"), "--no-progress"]
    assert sdm([*base, "--task", "button-smash-v3", *out]) == 2
    assert "button-press-v3" in capsys.readouterr().err
    assert sdm([*base, "--task", "reach-v3", "--steps", "1000", *out]) == 2
    assert "steps must be in" in capsys.readouterr().err
    missing = ["eval", "--checkpoint", str(tmp_path / "nothing"), "--episodes", "1"]
    assert sdm([*missing, "--task", "reach-v3", *out]) == 2
    assert not (tmp_path / "r.json").exists()


class _CountingRuntime:
    """A stand-in policy: records what it is given, returns chunks of 3 zero actions."""

    n_obs_steps, n_action_steps = 2, 3

    def __init__(self) -> None:
        self.pushed: list[np.ndarray] = []
        self.calls = 0

    def reset(self) -> None:
        self.pushed.clear()

    def push(self, obs: dict[str, np.ndarray]) -> None:
        self.pushed.append(obs["agent_pos"].copy())

    def infer(self) -> ActionChunk:
        self.calls += 1
        actions = np.zeros((3, 4), dtype=np.float32)
        actions[:, 1] = 1.0  # move +y: every observation differs from the last
        return ActionChunk(actions, actions, 1e-3, "one-step", 1, "stub")


@pytest.mark.parametrize("limit, calls", [(9, 3), (10, 4)])
def test_every_action_of_a_chunk_is_executed(limit, calls):
    runtime = _CountingRuntime()
    with MetaWorldEnv("reach-v3", num_points=32, max_episode_steps=limit) as env:
        ep = run_episode(env, runtime, reset_seed=0)
    assert ep.length == limit and ep.policy_calls == runtime.calls == calls
    # History: the reset observation, then the observations after the last 2 actions of each
    # chunk (steps 2, 3, 5, 6, 8, ...), except the final one that ends the episode.
    assert len(runtime.pushed) == 1 + sum((t - 1) % 3 >= 1 for t in range(1, limit))
    y = [p[1] for p in runtime.pushed]
    assert all(b > a for a, b in itertools.pairwise(y))


class _SteppingRuntime(_CountingRuntime):
    """Chunk k (from 1) holds the same action k/10 in x on every step: seams jump by 0.1."""

    def infer(self) -> ActionChunk:
        self.calls += 1
        actions = np.zeros((3, 4), dtype=np.float32)
        actions[:, 0] = self.calls / 10
        return ActionChunk(actions, actions, 1e-3, "one-step", 1, "stub")


def test_seams_are_measured_and_temporal_ensembling_plans_every_step():
    with MetaWorldEnv("reach-v3", num_points=32, max_episode_steps=9) as env:
        receding = run_episode(env, _SteppingRuntime(), reset_seed=0)
        runtime = _SteppingRuntime()
        ensembled = run_episode(env, runtime, reset_seed=0, ensembling_decay=0.0)
    assert receding.policy_calls == 3
    assert receding.seam_jumps == pytest.approx([0.1, 0.1])  # chunk 1 -> 2 -> 3
    assert receding.in_chunk_steps == pytest.approx([0.0] * 6)
    # A plan and an observation every step; with decay 0 the plain mean of the live chunks
    # (chunk k covers steps k-1..k+1): 0.1, 0.15, 0.2, 0.3, 0.4, ...
    assert ensembled.policy_calls == runtime.calls == 9 and len(runtime.pushed) == 9
    assert ensembled.in_chunk_steps == []
    assert ensembled.seam_jumps == pytest.approx([0.05, 0.05, *[0.1] * 6], abs=1e-6)


def test_eval_temporal_ensembling_is_recorded(tiny_checkpoint, tmp_path):
    out = tmp_path / "ens.json"
    args = ["eval", "--checkpoint", str(tiny_checkpoint), "--task", "button-press-v3"]
    args += ["--episodes", "1", "--seed", "0", "--max-episode-steps", "6", "--threads", "1"]
    args += ["--steps", "2", "--no-progress", "--no-plot", "--temporal-ensembling"]
    assert sdm([*args, "--ensembling-decay", "0.2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["execution"], result["ensembling_decay"]) == ("temporal_ensembling", 0.2)
    assert result["episode_results"][0]["policy_calls"] == 6
    assert result["seam_jump"]["n"] == 5 and result["in_chunk_step"]["n"] == 0
    assert sdm([*args, "--ensembling-decay", "-1", "--out", str(out)]) == 2


def test_eval_with_either_backend_runs_the_same_episodes(tiny_checkpoint, tmp_path, capsys):
    """`sdm eval` with either backend runs the same episodes.

    The exported teacher (DDIM-2) on onnxruntime (at the default and the lowest graph
    optimisation level) and the checkpoint on torch with numpy noise: the same seeds give the
    same episodes (success, length, calls); the options are recorded.
    """
    import shutil

    from sdm_policy_core.export import export_policy

    ckpt = tmp_path / "teacher" / "checkpoints" / "latest"
    shutil.copytree(tiny_checkpoint, ckpt)
    export_policy(ckpt, ckpt / "policy.onnx", "onnx", steps=2)
    results = {}
    args = ["eval", "--checkpoint", str(ckpt), "--task", "button-press-v3"]
    args += ["--episodes", "1", "--seeds", "0", "1", "--sampler", "ddim", "--steps", "2"]
    args += ["--max-episode-steps", "12", "--threads", "1", "--no-progress", "--no-plot"]
    runs = {
        "torch": ["--backend", "torch", "--noise", "numpy"],
        "onnxruntime": ["--backend", "onnxruntime"],
        "disable": ["--backend", "onnxruntime", "--ort-optimization", "disable"],
    }
    for name, extra in runs.items():
        out = tmp_path / f"{name}.json"
        assert sdm([*args, *extra, "--out", str(out)]) == 0
        results[name] = json.loads(out.read_text())
    torch_run, onnx_run = results["torch"], results["onnxruntime"]
    assert (torch_run["backend"], torch_run["noise"]) == ("torch", "numpy")
    assert (onnx_run["backend"], onnx_run["noise"]) == ("onnxruntime", "numpy")
    assert (torch_run["ort_optimization"], onnx_run["ort_optimization"]) == (None, "all")
    assert results["disable"]["ort_optimization"] == "disable"
    assert onnx_run["quantization"] is None and onnx_run["threads"] == 1
    # onnxruntime's options are refused on the torch backend, with what to change
    out = str(tmp_path / "refused.json")
    assert sdm([*args, "--ort-optimization", "basic", "--out", out]) == 2
    assert "ort_optimization applies to the onnxruntime backend" in capsys.readouterr().err
    assert onnx_run["policy_id"] == torch_run["policy_id"] and onnx_run["steps"] == 2
    keys = ("seed", "success", "length", "policy_calls")
    episodes = {
        b: [{k: e.get(k) for k in keys} for e in r["episode_results"]] for b, r in results.items()
    }
    assert episodes["onnxruntime"] == episodes["torch"] == episodes["disable"]
    assert onnx_run["success_rate"] == torch_run["success_rate"]
    rewards = [[e["reward"] for e in r["episode_results"]] for r in (torch_run, onnx_run)]
    np.testing.assert_allclose(rewards[1], rewards[0], rtol=1e-3)  # the same trajectories
