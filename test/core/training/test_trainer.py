# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Teacher training and SDM distillation runs: checkpoints, metrics, exact resume, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.cli import main as sdm
from sdm_policy_core.config import ConfigError, load_config
from sdm_policy_core.policies.loading import load_policy
from sdm_policy_core.training.data import make_datasets
from sdm_policy_core.training.distributed import DistContext
from sdm_policy_core.training.recipes import SdmRecipe, TeacherRecipe
from sdm_policy_core.training.trainer import Trainer
from test.conftest import FAST, REPO

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


class SimulatedCrashError(RuntimeError):
    pass


def _teacher_trainer(dataset: Path, out: Path, overrides: list[str]) -> Trainer:
    cfg = load_config(overrides=FAST + overrides)
    cfg, train, val = make_datasets(cfg, dataset)
    recipe = TeacherRecipe(cfg, train.get_normalizer(), CPU)
    return Trainer(cfg, recipe, train, val, out, CPU, dataset_path=dataset, progress=False)


def _sdm_trainer(dataset: Path, teacher: Path, out: Path, overrides: list[str]) -> Trainer:
    base = load_checkpoint(teacher).experiment_config()
    cfg = load_config(
        overrides=overrides,
        base={
            "obs": {
                "point_cloud_shape": list(base.obs.point_cloud_shape),
                "state_dim": base.obs.state_dim,
                "action_dim": base.obs.action_dim,
            },
            "model": {k: v for k, v in vars(base.model).items()},
            "train": {
                "batch_size": 16,
                "warmup_steps": 2,
                "log_every": 2,
                "val_fraction": 0.25,
                "threads": 1,
            },
        },
    )
    cfg, train, val = make_datasets(cfg, dataset, fix_obs=False)
    recipe = SdmRecipe(cfg, load_policy(teacher), CPU, teacher)
    return Trainer(cfg, recipe, train, val, out, CPU, dataset_path=dataset, progress=False)


def test_teacher_run_writes_checkpoints_metrics_and_plots(teacher_ckpt):
    run = teacher_ckpt.parent.parent
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    assert [r["step"] for r in val] == [20, 40]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]  # it learns
    assert (run / "plots" / "metrics.png").stat().st_size > 10_000
    for name in ("latest", "best"):
        ckpt = load_checkpoint(run / "checkpoints" / name)
        assert ckpt.kind == "teacher"
        assert ckpt.config["obs"]["point_cloud_shape"] == [32, 3]
        assert ckpt.config["provenance"]["dataset"]["sha256"]
    assert load_checkpoint(teacher_ckpt).training_state["step"] == 40


def test_saved_policy_reloads_bitwise(teacher_ckpt):
    policy = load_policy(teacher_ckpt)
    again = load_policy(teacher_ckpt)
    for (k, a), (_, b) in zip(
        policy.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), k
    obs = {"point_cloud": torch.randn(2, 2, 32, 3), "agent_pos": torch.randn(2, 2, 4)}
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    out_a = policy.predict_action(obs, "ddim", 5, generator=gen_a)["action"]
    out_b = again.predict_action(obs, "ddim", 5, generator=gen_b)["action"]
    assert torch.equal(out_a, out_b)
    assert out_a.shape == (2, 4, 4)


def _raw_state(run: Path, key: str) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "latest").training_state["recipe"][key]


@pytest.mark.parametrize("kind", ["teacher", "sdm"])
def test_resume_after_a_crash_matches_an_uninterrupted_run(
    kind, reaching_dataset, teacher_ckpt, tmp_path
):
    overrides = ["train.max_steps=10", "train.checkpoint_every=4", "train.val_every=5"]

    def make(out):
        if kind == "teacher":
            return _teacher_trainer(reaching_dataset, out, overrides)
        return _sdm_trainer(reaching_dataset, teacher_ckpt, out, overrides)

    make(tmp_path / "full").fit()

    crashing = make(tmp_path / "crashed")

    def crash(step):
        if step == 6:
            raise SimulatedCrashError("simulated power cut")

    crashing.hooks.append(crash)
    with pytest.raises(SimulatedCrashError):
        crashing.fit()
    assert load_checkpoint(tmp_path / "crashed/checkpoints/latest").training_state["step"] == 4
    torch.manual_seed(1234)  # a new process would start from other random states
    summary = make(tmp_path / "crashed").fit()
    assert summary["step"] == 10

    key = "model" if kind == "teacher" else "generator"
    full, resumed = _raw_state(tmp_path / "full", key), _raw_state(tmp_path / "crashed", key)
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name
    # The metrics log holds each step once, as in the uninterrupted run.
    steps = [
        json.loads(x)["step"]
        for x in (tmp_path / "crashed/metrics.jsonl").read_text().splitlines()
        if json.loads(x)["split"] == "train"
    ]
    assert steps == sorted(set(steps)) and steps[-1] == 10


@pytest.mark.parametrize("kind", ["teacher", "sdm"])
def test_best_checkpoint_rule_without_closed_loop_evaluation(
    kind, reaching_dataset, teacher_ckpt, tmp_path
):
    """The best-checkpoint rule without closed-loop evaluation.

    A teacher's `best` is its lowest validation loss; a student's is its newest checkpoint,
    never the lowest validation action MSE (which rewards collapse onto the mean).
    """
    overrides = ["train.max_steps=12", "train.val_every=4", "train.checkpoint_every=4"]
    if kind == "teacher":
        trainer = _teacher_trainer(reaching_dataset, tmp_path, overrides)
    else:
        trainer = _sdm_trainer(reaching_dataset, teacher_ckpt, tmp_path, overrides)
    ckpts = tmp_path / "checkpoints"
    kept: dict[int, int] = {}  # step -> the step `best` holds after it

    def hook(step: int) -> None:
        if step % 4 == 0:
            kept[step] = load_checkpoint(ckpts / "best").training_state["step"]
        if kind == "sdm" and step == 5:  # the student degrades after its first checkpoint
            with torch.no_grad():
                for module in (trainer.recipe.generator, trainer.recipe.distiller.ema.model):
                    for p in module.parameters():
                        p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(0)))

    trainer.hooks.append(hook)
    summary = trainer.fit()
    val = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in val if r["split"] == "val"]
    assert [r["step"] for r in val] == [4, 8, 12]
    if kind == "teacher":
        lowest = [min(val[: i + 1], key=lambda r: r["val_loss"])["step"] for i in range(3)]
        assert list(kept.values()) == lowest
        assert summary["best_val_loss"] == min(r["val_loss"] for r in val)
    else:
        mse = [r["val_action_mse"] for r in val]
        assert mse[0] < min(mse[1:])  # the lowest validation MSE is step 4's...
        assert kept == {4: 4, 8: 8, 12: 12}  # ...but best follows latest
        assert all("val_action_mse" in r for r in val)  # still logged, not used
        assert summary["best_is_latest"] is True
        best, latest = load_checkpoint(ckpts / "best"), load_checkpoint(ckpts / "latest")
        assert best.tensors.keys() == latest.tensors.keys()
        assert all(torch.equal(best.tensors[k], latest.tensors[k]) for k in best.tensors)


def test_resume_refuses_a_different_architecture(reaching_dataset, tmp_path):
    _teacher_trainer(
        reaching_dataset, tmp_path, ["train.max_steps=2", "train.checkpoint_every=2"]
    ).fit()
    code = sdm(
        [
            "train",
            "--dataset",
            str(reaching_dataset),
            "--out",
            str(tmp_path),
            "--no-progress",
            *FAST,
            "model.horizon=16",
            "train.max_steps=4",
        ]
    )
    assert code == 2


def test_two_process_ddp_matches_one_process(reaching_dataset, tmp_path):
    args = [
        "--dataset",
        str(reaching_dataset),
        "--no-progress",
        *FAST,
        "train.max_steps=4",
        "train.checkpoint_every=4",
        "train.val_fraction=0",
        "train.use_ema=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdm_policy_core.cli",
            "train",
            "--out",
            str(tmp_path / "one"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr[-2000:]
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "sdm_policy_core.cli",
            "train",
            "--out",
            str(tmp_path / "two"),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one, two = _raw_state(tmp_path / "one", "model"), _raw_state(tmp_path / "two", "model")
    moved = 0
    initial = load_checkpoint(tmp_path / "one/checkpoints/latest")
    assert initial.training_state["step"] == 4
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-6, msg=name)
        moved += 1
    assert moved > 10


def test_a_run_from_before_a_config_key_existed_resumes(reaching_dataset, tmp_path):
    """A run from before a config key existed resumes.

    Keys added to the config later (e.g. train.eval_*) at their defaults do not block a
    resume of a run whose checkpoint lacks them; set to another value, they do.
    """
    _teacher_trainer(reaching_dataset, tmp_path, ["train.max_steps=2"]).fit()
    config_path = tmp_path / "checkpoints/latest/config.json"
    config = json.loads(config_path.read_text())
    for key in ("eval_task", "eval_every", "eval_episodes"):
        del config["train"][key]
    config_path.write_text(json.dumps(config))
    assert _teacher_trainer(reaching_dataset, tmp_path, ["train.max_steps=4"]).fit()["step"] == 4
    config_path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"train\.eval_episodes"):
        _teacher_trainer(
            reaching_dataset, tmp_path, ["train.max_steps=6", "train.eval_episodes=5"]
        ).fit()


def test_keep_steps_keeps_the_teacher_at_those_steps(reaching_dataset, tmp_path):
    """`train.keep_steps` keeps the teacher at those steps.

    `train.keep_steps` keeps checkpoints/step_N (a teacher taken early and late in one run),
    with step N's weights, while `latest` moves on; a step past the run is refused.
    """
    overrides = ["train.max_steps=6", "train.checkpoint_every=3", "train.keep_steps=[2,6]"]
    kept: dict[int, dict[str, torch.Tensor]] = {}
    trainer = _teacher_trainer(reaching_dataset, tmp_path, overrides)
    trainer.hooks.append(
        lambda step: kept.setdefault(
            step, {k: v.clone() for k, v in trainer.recipe.export_tensors().items()}
        )
    )
    trainer.fit()
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name.startswith("step_")) == [
        "step_2",
        "step_6",
    ]
    for step in (2, 6):
        ckpt = load_checkpoint(ckpts / f"step_{step}")
        assert ckpt.training_state["step"] == step
        assert all(torch.equal(ckpt.tensors[k], kept[step][k]) for k in ckpt.tensors)
    early, late = load_checkpoint(ckpts / "step_2"), load_checkpoint(ckpts / "latest")
    assert any(not torch.equal(early.tensors[k], late.tensors[k]) for k in early.tensors)
    with pytest.raises(ConfigError, match="keep_steps"):
        load_config(overrides=["train.max_steps=6", "train.keep_steps=[7]"])
