# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""State-only policies end to end on obstacle-2d.

State-only policies end to end on obstacle-2d: `sdm demos` -> `sdm train` (MLP denoiser) ->
`sdm distill` -> `sdm eval`, and the student passing where the teacher's naive one-step call
collides; the state-only checkpoint served by PolicyRuntime and exported to ONNX.

The tiny configuration (about 30 s on 2 cores) was checked on training seeds 0-3 (40
episodes each: DDIM-10 1.00 every time, SDM student 0.82-0.93, naive one-step 0.12-0.25);
the test runs seed 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sdm_policy_core.bench.latency import run_latency
from sdm_policy_core.cli import main as sdm
from sdm_policy_core.eval.rollout import evaluate
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.policies.observation import ObservationError
from sdm_policy_core.runtime import PolicyRuntime

COMMON = ["train.threads=1", "train.seed=0", "train.val_every=500", "train.checkpoint_every=500"]
TEACHER = [
    "model.denoiser=mlp",
    "model.state_encoder=identity",
    "model.mlp_hidden_dim=128",
    "model.mlp_blocks=2",
    "model.horizon=24",  # one 16-step chunk carries the point past the obstacle
    "model.n_action_steps=16",
    "train.max_steps=800",
    "train.batch_size=64",
    "train.warmup_steps=50",
    "train.lr=2e-3",
]
DISTILL = [
    "train.max_steps=1500",
    "train.batch_size=64",
    "train.warmup_steps=50",
    "distill.generator_lr=2e-3",
    "distill.corrector_lr=2e-3",
]
EPISODES, SEEDS = 20, (0, 1)  # 40 episodes per row


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("obstacle")
    data = root / "demos.zarr"
    demos = ["demos", "--task", "obstacle-2d", "--episodes", "300", "--out", str(data)]
    assert sdm([*demos, "--no-progress"]) == 0
    train = ["train", "--dataset", str(data), "--out", str(root / "teacher"), "--no-progress"]
    assert sdm([*train, *TEACHER, *COMMON]) == 0
    teacher = root / "teacher" / "checkpoints" / "latest"
    distill = ["distill", "--teacher", str(teacher), "--dataset", str(data), "--no-progress"]
    assert sdm([*distill, "--out", str(root / "sdm"), *DISTILL, *COMMON]) == 0
    return {"data": data, "teacher": teacher, "sdm": root / "sdm" / "checkpoints" / "latest"}


def _evaluate(checkpoint: Path, sampler: str | None = None) -> dict:
    return evaluate(checkpoint, "obstacle-2d", EPISODES, SEEDS, sampler=sampler, progress=False)


def test_the_sdm_student_passes_where_the_teachers_naive_one_step_call_collides(runs):
    ddim = _evaluate(runs["teacher"], "ddim").result
    naive = _evaluate(runs["teacher"], "one-step").result
    student = _evaluate(runs["sdm"]).result
    assert ddim["success_rate"] >= 0.9  # the teacher has learnt both routes
    assert naive["success_rate"] <= 0.3 and naive["metrics"]["collision"] >= 0.7
    assert student["success_rate"] >= 0.7
    assert student["success_rate"] - naive["success_rate"] >= 0.5
    # the student goes both ways round, as the demonstrations do
    assert min(student["metrics"]["passed_left"], student["metrics"]["passed_right"]) >= 0.1
    assert student["sampler"] == "one-step" and student["steps"] == 1
    assert student["episodes_total"] == 40 and len(student["episode_results"]) == 40
    row = student["episode_results"][0]
    assert {"success", "collision", "passed_left", "passed_right"} <= set(row)
    assert student["max_episode_steps"] == 60 and "num_points" not in student


def test_sdm_eval_writes_the_contract_and_refuses_a_task_of_another_state_size(
    runs, tmp_path, capsys
):
    out = tmp_path / "r.json"
    base = ["eval", "--checkpoint", str(runs["sdm"]), "--episodes", "3", "--seed", "5"]
    flags = ["--out", str(out), "--no-progress", "--no-plot", "--threads", "1"]
    assert sdm([*base, "--task", "obstacle-2d", *flags]) == 0
    result = json.loads(out.read_text())
    assert {"success_rate", "episodes", "seeds", "sampler", "steps", "latency_ms"} <= set(result)
    assert result["task"] == "obstacle-2d" and result["seeds"] == [5]
    assert all("collision" in row for row in result["episode_results"])
    assert sdm([*base, "--task", "obstacle-2d-cue", "--out", str(tmp_path / "c.json")]) == 2
    assert "agent_pos of size 2; obstacle-2d-cue gives 3" in capsys.readouterr().err


def test_a_state_only_checkpoint_describes_itself_serves_state_and_exports(runs, tmp_path):
    config = json.loads((runs["sdm"] / "config.json").read_text())
    assert config["obs"]["point_cloud_shape"] is None and config["obs"]["image_shape"] is None
    assert config["model"]["encoder"] == "state" and config["model"]["denoiser"] == "mlp"
    runtime = PolicyRuntime(runs["sdm"], threads=1)
    chunk = runtime.step({"agent_pos": np.array([0.01, -0.02], np.float32)})
    assert chunk.actions.shape == (16, 2) and chunk.action_pred.shape == (24, 2)
    with pytest.raises(ObservationError, match="agent_pos"):
        runtime.step({"agent_pos": np.zeros(3, np.float32)})
    out = tmp_path / "sdm.onnx"
    args = ["export", "--checkpoint", str(runs["sdm"]), "--format", "onnx", "--out", str(out)]
    assert sdm(args) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["agent_pos", "noise"]  # no cloud, image
    state = np.array([[[0.0, 0.0], [0.01, 0.02]]], np.float32)
    noise = torch.randn(1, 24, 2, generator=torch.Generator().manual_seed(0))
    got = session.run(["action_pred"], {"agent_pos": state, "noise": noise.numpy()})[0]
    policy = load_policy(runs["sdm"])
    with torch.no_grad():
        cond = policy.encode({"agent_pos": torch.from_numpy(state)})
        want = policy.normalizer.unnormalize(
            "action", policy.sample_normalized(cond, initial_noise=noise).clamp(-1, 1)
        )
    np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_bench_latency_times_a_state_only_checkpoint(runs):
    result = run_latency(
        preset=None,
        checkpoint=runs["teacher"],
        threads=1,
        budget_s=2.0,
        samplers=("one_step", "ddim10"),
    )
    assert result["obs"] == {"point_cloud_shape": None, "state_dim": 2, "action_dim": 2}
    assert result["one_step"]["p50_ms"] < result["ddim10"]["p50_ms"]
