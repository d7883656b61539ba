# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Closed-loop evaluation during training: what selects a run's `checkpoints/best`.

With `train.eval_task=TASK` (`sdm train` and `sdm distill`), every `train.eval_every` steps and
at the last step the trainer writes `checkpoints/latest`, evaluates it in the embedded
simulator (`train.eval_episodes` episodes, the checkpoint's own sampler: DDIM for a teacher, one
step for an SDM student) and keeps as `best` the newest checkpoint whose success rate is within
one binomial standard error of the highest so far (`trainer.within_noise`): 20 episodes cannot
tell 50 % from 55 %, and of two checkpoints the evaluation cannot separate, the one trained
longer is kept. Without it, a teacher's `best` is the lowest validation loss, which on MetaWorld
can be far from the best policy: a 6000-step pick-place-wall teacher had its lowest validation
loss at step 1250, and that checkpoint solved 13 % of the episodes `latest` solved 59 % of; a
student's `best` is then `latest` (its validation action MSE rewards collapse onto the mean).

The periodic evaluations reset the same placements every time (seed 0 of SELECT_STREAM), which
`sdm eval` never uses (EVAL_STREAM): the checkpoint is selected on other episodes than the ones
it is reported on. DP3 and SDM Policy instead report the mean of the 5 best periodic evaluations
on the test episodes; `periodic_evaluations(run_dir)` gives the success rates to compute that
number too (`dp3_score`), knowing that it selects on the episodes it scores.

    evaluator = selection_evaluator(cfg, device)   # fails now on a task or spec that cannot run
    evaluator(run_dir / "checkpoints" / "latest")  # the `sdm eval` result dict
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sdm_policy_core.config import ConfigError, ExperimentConfig
from sdm_policy_core.run_metrics import EVAL_SPLIT, MetricsLog


def selection_evaluator(
    cfg: ExperimentConfig, device: torch.device | str = "cpu"
) -> Callable[[Path], dict[str, Any]]:
    """Make a function that evaluates a checkpoint of this run on `cfg.train.eval_task`.

    Checks before training starts that the task exists and that a policy with `cfg.obs` can act
    in it; raises ConfigError naming `train.eval_task` otherwise.
    """
    from sdm_policy_core.eval.envs import resolve_eval_task
    from sdm_policy_core.eval.rollout import evaluate
    from sdm_policy_core.sim.demos import SELECT_STREAM
    from sdm_policy_core.sim.metaworld_env import SimulatorError, UnknownTaskError

    tc = cfg.train
    try:
        task, entry = resolve_eval_task(tc.eval_task)
        entry.check(task, cfg.obs, "this run's policy")
    except (UnknownTaskError, SimulatorError, ValueError) as err:
        raise ConfigError(f"train.eval_task={tc.eval_task!r}: {err}") from err

    def run(checkpoint: Path) -> dict[str, Any]:
        return evaluate(
            checkpoint,
            task,
            tc.eval_episodes,
            seeds=(0,),
            progress=False,
            device=str(device),
            stream=SELECT_STREAM,
        ).result

    return run


def periodic_evaluations(run_dir: str | Path) -> list[dict[str, Any]]:
    """Read the periodic closed-loop evaluations of a run, in training order.

    One dict per evaluation with `step`, `success_rate`, `mean_episode_length`, `episodes` and
    `wall_s`.

    `dp3_score({seed: periodic_evaluations(run) for seed, run in runs.items()})` is DP3's
    "mean of the 5 best" over them. Raises ValueError when the run has none.
    """
    path = Path(run_dir) / "metrics.jsonl"
    rows = MetricsLog(path).read(EVAL_SPLIT)
    if not rows:
        raise ValueError(
            f"{path} has no closed-loop evaluations; train with train.eval_task=TASK "
            "(and train.eval_every=N) to evaluate periodically"
        )
    return rows
