# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Closed-loop evaluation during training (`train.eval_task`) and the `best` it selects."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sdm_policy_core.checkpoint import load_checkpoint
from sdm_policy_core.cli import main as sdm
from sdm_policy_core.config import ConfigError, load_config
from sdm_policy_core.eval import evaluate, mean_of_best
from sdm_policy_core.eval.selection import periodic_evaluations, selection_evaluator
from sdm_policy_core.sim.demos import EVAL_STREAM, SELECT_STREAM, episode_seed
from sdm_policy_core.training.data import make_datasets
from sdm_policy_core.training.distributed import DistContext
from sdm_policy_core.training.recipes import TeacherRecipe
from sdm_policy_core.training.trainer import Trainer, within_noise
from test.conftest import FAST, TINY

_DIR = Path(__file__).resolve().parents[3] / "benchmarks" / "metaworld"
sys.path.insert(0, str(_DIR))  # as when the script runs: it imports common.py beside it
_spec = importlib.util.spec_from_file_location("curves_benchmark", _DIR / "curves.py")
curves = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(curves)

CPU = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
SELECTING = ["train.eval_task=button-press-v3", "train.eval_every=2", "train.eval_episodes=1"]


def _train(dataset: Path, out: Path, *overrides: str, capsys=None) -> dict:
    args = ["train", "--dataset", str(dataset), "--out", str(out), "--no-progress"]
    code = sdm([*args, *TINY, "train.max_steps=6", *overrides])
    assert code == 0
    if capsys is None:
        return {}
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _step(checkpoint: Path) -> int:
    return load_checkpoint(checkpoint).training_state["step"]


def test_a_run_evaluates_in_closed_loop_and_keeps_its_most_successful_checkpoint(
    demos_dataset, tmp_path, capsys
):
    summary = _train(demos_dataset, tmp_path / "selecting", *SELECTING, capsys=capsys)
    rows = periodic_evaluations(tmp_path / "selecting")
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(0.0 <= r["success_rate"] <= 1.0 and r["mean_episode_length"] > 0 for r in rows)
    highest, chosen = -1.0, None
    for r in rows:  # the one-standard-error rule; with 1 episode the rates are 0 or 1
        highest = max(highest, r["success_rate"])
        if r["success_rate"] >= highest - (highest * (1 - highest)) ** 0.5:
            chosen = r
    assert _step(tmp_path / "selecting/checkpoints/best") == chosen["step"]
    assert summary["best_eval_success_rate"] == chosen["success_rate"]
    assert summary["eval_mean_of_5_best"] == pytest.approx(mean_of_best(rows))
    assert (tmp_path / "selecting/plots/metrics.png").stat().st_size > 0

    # Evaluating does not change what is trained: the same run without it ends bitwise equal.
    _train(demos_dataset, tmp_path / "plain")
    evaluated = load_file(tmp_path / "selecting/checkpoints/latest/model.safetensors")
    plain = load_file(tmp_path / "plain/checkpoints/latest/model.safetensors")
    assert evaluated.keys() == plain.keys()
    assert all(torch.equal(evaluated[k], plain[k]) for k in plain)


def test_selection_uses_placements_that_sdm_eval_does_not(tiny_checkpoint):
    cfg = load_checkpoint(tiny_checkpoint).experiment_config()
    cfg.train.eval_task, cfg.train.eval_episodes = "button-press-v3", 2
    result = selection_evaluator(cfg)(tiny_checkpoint)
    seeds = [e["reset_seed"] for e in result["episode_results"]]
    assert seeds == [episode_seed(0, i, SELECT_STREAM) for i in range(2)]
    reported = evaluate(tiny_checkpoint, "button-press-v3", 2, seeds=(0,), progress=False)
    assert not set(seeds) & {e["reset_seed"] for e in reported.result["episode_results"]}
    assert reported.result["placement_stream"] == EVAL_STREAM


def test_a_task_the_run_cannot_be_evaluated_on_is_refused_before_training(
    demos_dataset, reaching_dataset, tmp_path, capsys
):
    def train(dataset: Path, out: Path, task: str) -> int:
        args = ["train", "--dataset", str(dataset), "--out", str(out), "--no-progress"]
        return sdm([*args, *TINY, "train.eval_every=2", f"train.eval_task={task}"])

    code = train(demos_dataset, tmp_path / "a", "button-smash-v3")
    err = capsys.readouterr().err
    assert code == 2 and "train.eval_task='button-smash-v3'" in err and "button-press-v3" in err
    assert not (tmp_path / "a/checkpoints").exists()
    # The reaching data's agent_pos is not MetaWorld's 9 values: no simulator can run it.
    code = train(reaching_dataset, tmp_path / "b", "button-press-v3")
    err = capsys.readouterr().err
    assert code == 2 and "agent_pos" in err and "train.eval_task" in err
    assert not (tmp_path / "b/checkpoints").exists()
    with pytest.raises(ConfigError, match="eval_episodes"):
        load_config(overrides=["train.eval_episodes=0"])


def _selecting_trainer(dataset: Path, out: Path, max_steps: int, rates: dict[int, float]):
    """Build a teacher run whose closed-loop evaluations return `rates[step]`.

    A teacher run whose closed-loop evaluations return `rates[step]` (the rule under test is
    the trainer's choice; the simulator's part is covered above).
    """
    cfg = load_config(overrides=[*FAST, f"train.max_steps={max_steps}", "train.eval_every=2"])
    cfg, train, val = make_datasets(cfg, dataset)
    recipe = TeacherRecipe(cfg, train.get_normalizer(), CPU)

    def scripted(checkpoint: Path) -> dict:
        step = _step(checkpoint)
        return {
            "success_rate": rates[step],
            "mean_episode_length": 100.0,
            "wall_time_s": 0.0,
            "task": "scripted",
            "episodes_total": 100,
        }

    return Trainer(cfg, recipe, train, val, out, CPU, progress=False, closed_loop=scripted)


@pytest.mark.parametrize(
    ("highest", "episodes", "within", "outside"),
    [(0.5, 20, 0.39, 0.38), (0.55, 100, 0.51, 0.50), (0.25, 20, 0.16, 0.15), (1.0, 20, 1.0, 0.95)],
)
def test_within_noise_is_one_binomial_standard_error(highest, episodes, within, outside):
    assert within_noise(within, highest, episodes)
    assert not within_noise(outside, highest, episodes)


def test_best_is_the_newest_checkpoint_as_good_as_the_highest_success_and_survives_a_resume(
    reaching_dataset, tmp_path
):
    # 100 episodes per evaluation: one standard error of 0.6 is 0.049.
    rates = {2: 0.2, 4: 0.6, 6: 0.57, 8: 0.5, 10: 0.53, 12: 0.1}
    _selecting_trainer(reaching_dataset, tmp_path, 6, rates).fit()
    # 0.57 at step 6 is within a standard error of 0.6 at step 4: the later one is kept.
    assert _step(tmp_path / "checkpoints/best") == 6
    # Resumed to 12 steps: measured against the 0.6 from before the resume, 0.5 and 0.53 are
    # more than a standard error below it, so step 6 stays best.
    summary = _selecting_trainer(reaching_dataset, tmp_path, 12, rates).fit()
    assert _step(tmp_path / "checkpoints/best") == 6
    assert summary["best_eval_success_rate"] == 0.57
    assert [r["step"] for r in periodic_evaluations(tmp_path)] == [2, 4, 6, 8, 10, 12]
    assert summary["eval_mean_of_5_best"] == pytest.approx((0.6 + 0.57 + 0.53 + 0.5 + 0.2) / 5)
    # benchmarks/metaworld/curves.py replays the rule on the logged evaluations: the same step.
    curve = curves.run_curve("scripted", tmp_path)
    assert curve["selected_step"] == curve["best_checkpoint_step"] == 6
    assert curve["success_rate"] == [rates[s] for s in curve["steps"]]


def test_a_distillation_selects_its_one_step_student_in_closed_loop(
    tiny_checkpoint, demos_dataset, tmp_path
):
    out = tmp_path / "sdm"
    args = ["distill", "--teacher", str(tiny_checkpoint), "--dataset", str(demos_dataset)]
    distill = [o for o in TINY if o.startswith("train.")]  # the rest comes from the teacher
    args += ["--out", str(out), "--no-progress", *distill, "train.max_steps=4", *SELECTING]
    assert sdm(args) == 0
    rows = periodic_evaluations(out)
    assert [r["step"] for r in rows] == [2, 4]
    best = load_checkpoint(out / "checkpoints/best")
    assert best.kind == "sdm" and best.training_state["step"] in (2, 4)
    # The checkpoint a distillation evaluates is a one-step student.
    result = selection_evaluator(best.experiment_config())(out / "checkpoints/best")
    assert result["kind"] == "sdm" and result["sampler"] == "one-step"
