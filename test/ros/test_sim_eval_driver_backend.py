# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm sim-eval --backend onnxruntime` against the in-process `sdm eval`.

`sdm sim-eval --backend onnxruntime`: the policy node on the checkpoint's ONNX export, with the
sim bridge serving obstacle-2d and the evaluation driver, as real ROS 2 processes.

The checkpoint directory holds no export at first, so sim-eval makes CKPT/policy.onnx itself
(sdm export's verified exporter) and the node loads it. As in test_sim_eval_driver.py the
lockstep loop must give the in-process `sdm eval --backend onnxruntime` episodes exactly: the
same reset seeds, the same numpy noise stream seeded per evaluation seed, the same
observations. A tiny teacher (5 training steps, DDIM-10 unrolled in the graph) need not
succeed, only act.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.eval import evaluate
from sdm_policy_core.export import export_policy

TINY_OBSTACLE = [
    "model.denoiser=mlp",
    "model.state_encoder=identity",
    "model.mlp_hidden_dim=32",
    "model.mlp_blocks=1",
    "model.horizon=8",
    "model.n_action_steps=4",
    "train.max_steps=5",
    "train.batch_size=16",
    "train.val_fraction=0",
    "train.threads=1",
    "train.seed=0",
]


@pytest.fixture(scope="module")
def obstacle_teacher(tmp_path_factory) -> Path:
    """Train a state-only teacher 5 steps on 10 scripted obstacle-2d demos (no export)."""
    root = tmp_path_factory.mktemp("obstacle")
    demos = ["demos", "--task", "obstacle-2d", "--episodes", "10", "--seed", "0"]
    assert sdm_main([*demos, "--out", str(root / "demos.zarr"), "--no-progress"]) == 0
    train = ["train", "--dataset", str(root / "demos.zarr"), "--out", str(root / "teacher")]
    assert sdm_main([*train, "--no-progress", *TINY_OBSTACLE]) == 0
    return root / "teacher" / "checkpoints" / "latest"


def _copy(checkpoint: Path, where: Path) -> Path:
    """config.json and weights only: a checkpoint directory without an export."""
    where.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(checkpoint / name, where / name)
    return where


def test_sim_eval_on_onnxruntime_exports_then_reproduces_in_process_eval(
    obstacle_teacher, tmp_path, capsys
):
    ckpt = _copy(obstacle_teacher, tmp_path / "ckpt")
    out = tmp_path / "ort.json"
    args = ["sim-eval", "--checkpoint", str(ckpt), "--task", "obstacle-2d", "--episodes", "2"]
    args += ["--seed", "1", "--threads", "1", "--backend", "onnxruntime", "--no-plot"]
    args += ["--out", str(out), "--timeout-s", "150", "--command-timeout-s", "20"]
    assert sdm_main(args) == 0, out.with_suffix(".log").read_text()[-3000:]
    printed = capsys.readouterr().out
    assert f"exporting {ckpt} to {ckpt / 'policy.onnx'}" in printed
    assert "[sim-eval] episode 2/2 seed 1" in printed and "on onnxruntime over ROS 2" in printed
    ros = json.loads(out.read_text())
    assert (ros["backend"], ros["noise"], ros["transport"], ros["task"]) == (
        "onnxruntime",
        "numpy",
        "ros2",
        "obstacle-2d",
    )
    model = ros["onnx_model"]
    assert (model["path"], model["exported"], model["sampler"], model["steps"]) == (
        str(ckpt / "policy.onnx"),
        True,
        "ddim",
        10,
    )
    assert (ckpt / "policy.onnx.json").is_file()
    assert f"loading {ckpt} (onnxruntime)" in out.with_suffix(".log").read_text()  # the node
    assert ros["episodes_total"] == 2 and len(ros["episode_results"]) == 2
    assert ros["held_steps"] == 0 and ros["chunk_latency_ms"]["n"] > 0  # the node acted

    local = evaluate(
        ckpt, "obstacle-2d", 2, seeds=[1], threads=1, backend="onnxruntime", progress=False
    ).result
    assert (ros["sampler"], ros["steps"]) == (local["sampler"], local["steps"]) == ("ddim", 10)
    for r, e in zip(ros["episode_results"], local["episode_results"], strict=True):
        assert r["reset_seed"] == e["reset_seed"]
        assert (r["success"], r["length"], r["policy_calls"]) == (
            e["success"],
            e["length"],
            e["policy_calls"],
        )
    assert ros["success_rate"] == local["success_rate"]


def test_sim_eval_refuses_a_backend_or_export_it_cannot_run_before_any_process(
    obstacle_teacher, tmp_path, capsys
):
    ckpt = _copy(obstacle_teacher, tmp_path / "ckpt")
    base = ["sim-eval", "--checkpoint", str(ckpt), "--task", "obstacle-2d", "--episodes", "1"]
    base += ["--out", str(tmp_path / "r.json")]
    with pytest.raises(SystemExit) as exit_info:  # argparse: the choices are listed
        sdm_main([*base, "--backend", "tensorrt"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tensorrt'" in capsys.readouterr().err

    # ddpm is never exported: no export made, nothing started
    assert sdm_main([*base, "--backend", "onnxruntime", "--sampler", "ddpm"]) == 2
    assert "checkpoint with sampler ddpm has none (use --backend torch)" in capsys.readouterr().err
    assert not list(ckpt.glob("*.onnx"))

    # an export of other steps is the user's file: refused, not replaced
    export_policy(ckpt, ckpt / "policy.onnx", "onnx", steps=2)
    before = (ckpt / "policy.onnx").read_bytes()
    assert sdm_main([*base, "--backend", "onnxruntime"]) == 2
    err = capsys.readouterr().err
    assert f"{ckpt / 'policy.onnx'} runs ddim x2" in err and "not ddim x10" in err
    assert (ckpt / "policy.onnx").read_bytes() == before
    assert not (tmp_path / "r.log").exists()  # no process was started
