# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The training loop shared by `sdm train` (teacher) and `sdm distill` (SDM student).

A `Recipe` owns the models, optimisers and the step; the `Trainer` owns everything around it:
data order (DistributedSampler, resumable mid-epoch), progress bar, metrics JSONL + PNG plots,
periodic validation, optional periodic closed-loop evaluation, `RUN_DIR/checkpoints/{latest,
best}` written atomically on rank 0, exact resume, and torchrun data parallelism.

`best` is, when the run evaluates in closed loop (`closed_loop`, built from `train.eval_task` by
`eval.selection`), the latest checkpoint whose success rate is within one standard error of the
highest so far (`within_noise`); otherwise the checkpoint with the lowest validation value of the
recipe's `best_metric` (teacher: diffusion loss), or, for a recipe without one (SDM: its
validation action MSE rewards collapse onto the mean), the newest checkpoint, i.e. `latest`.

Per-step randomness of the losses (diffusion noise, timesteps) is drawn for the GLOBAL batch from
a generator seeded by (seed, step) and each rank takes its rows, so a resumed run and an N-process
run see exactly the numbers a single uninterrupted process sees.
"""

from __future__ import annotations

import abc
import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from sdm_policy_core.checkpoint import (
    capture_rng_state,
    checkpoint_config,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from sdm_policy_core.config import ConfigError, ExperimentConfig, to_dict
from sdm_policy_core.run_metrics import EVAL_SPLIT, MetricsLog, mean_of_best, plot_metrics
from sdm_policy_core.training.distributed import DistContext, barrier, broadcast_flag

EVAL_METRIC = "eval_success_rate"  # what `best` maximises when the run evaluates in closed loop

# Config keys a resumed run may change (everything else must match the checkpoint's).
RESUMABLE_CHANGES = {
    ("train", k)
    for k in (
        "max_steps",
        "val_every",
        "checkpoint_every",
        "keep_steps",
        "log_every",
        "device",
        "num_workers",
        "threads",
        "max_val_batches",
    )
}


def within_noise(rate: float, highest: float, episodes: int) -> bool:
    """Whether a success rate is within one binomial standard error of the highest so far.

    Whether a success rate over `episodes` episodes is within one binomial standard error of
    the highest rate so far (the one-standard-error rule). The newest checkpoint that is
    becomes `best`: a checkpoint trained longer is kept unless an earlier one was better by
    more than the evaluation can resolve (20 episodes at 50 %: 11 points).
    """
    return rate >= highest - math.sqrt(highest * (1.0 - highest) / episodes) - 1e-12


def replay_selection(
    evaluations: list[dict[str, Any]], episodes: int
) -> tuple[dict[str, Any] | None, float]:
    """Replay the rule over a run's periodic evaluations (metrics rows, training order).

    Returns (the evaluation whose checkpoint is `best`, the highest success rate). episodes:
    for rows logged without their episode count (train.eval_episodes).
    """
    kept, highest = None, -math.inf
    for row in evaluations:
        rate = float(row["success_rate"])
        highest = max(highest, rate)
        if within_noise(rate, highest, int(row.get("episodes", episodes))):
            kept = row
    return kept, highest


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """Make a CPU generator for `step` of a run: the same on every rank and after a resume."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + stream) % (2**63))


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch


class Recipe(abc.ABC):
    """What is trained. Subclasses: TeacherRecipe, SdmRecipe (training/recipes.py)."""

    kind: str = ""
    # Validation metric that selects `best` without closed-loop evaluation (lower is better);
    # None: no offline metric is trusted, `best` is the newest checkpoint (= `latest`).
    best_metric: str | None = "val_loss"

    @abc.abstractmethod
    def train_step(self, batch: dict, step: int) -> dict[str, float]:
        """One optimisation step on this rank's batch; float metrics."""

    @abc.abstractmethod
    def validate(self, batches: list[dict]) -> dict[str, float]:
        """Compute validation metrics over fixed batches (deterministic)."""

    @abc.abstractmethod
    def export_tensors(self) -> dict[str, torch.Tensor]:
        """Tensors of model.safetensors (the deployable model)."""

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything else a resume needs (optimisers, schedulers, raw weights, EMA)."""

    @abc.abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what `state` returned."""

    def config_extra(self) -> dict[str, Any]:
        """Extra top-level keys of config.json (e.g. the teacher an SDM run distils)."""
        return {}


class Trainer:
    """Runs a Recipe for `cfg.train.max_steps` steps in `run_dir`, resuming when possible."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        recipe: Recipe,
        train_set: Dataset,
        val_set: Dataset | None,
        run_dir: Path,
        ctx: DistContext,
        dataset_path: Path | None = None,
        progress: bool = True,
        closed_loop: Callable[[Path], dict[str, Any]] | None = None,
    ) -> None:
        """Set up the trainer; closed_loop evaluates a checkpoint directory in closed loop.

        closed_loop: evaluates a checkpoint directory in closed loop and returns a result
        with `success_rate` and `episodes_total` (`eval.selection.selection_evaluator`); called
        on rank 0 every `train.eval_every` steps and at the last step, it then selects `best`.
        """
        self.cfg = cfg
        self.recipe = recipe
        self.train_set = train_set
        self.val_set = val_set if val_set is not None and len(val_set) > 0 else None
        self.run_dir = Path(run_dir)
        self.ctx = ctx
        self.dataset_path = dataset_path
        self.progress = progress and ctx.is_main
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", enabled=ctx.is_main)
        tc = cfg.train
        if tc.batch_size % ctx.world_size:
            raise ConfigError(
                f"train.batch_size={tc.batch_size} (the global batch) must be divisible by the "
                f"number of processes {ctx.world_size}"
            )
        self.per_rank_batch = tc.batch_size // ctx.world_size
        self.sampler = DistributedSampler(
            train_set,
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=tc.seed,
            drop_last=True,
        )
        self.batches_per_epoch = len(self.sampler) // self.per_rank_batch
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"the training split has {len(train_set)} windows, fewer than "
                f"train.batch_size={tc.batch_size}; lower the batch size or add episodes"
            )
        self.closed_loop = closed_loop
        self.best_metric = EVAL_METRIC if closed_loop is not None else recipe.best_metric
        self.best_value = -math.inf if closed_loop is not None else math.inf
        self.eval_max = -math.inf  # highest closed-loop success so far
        self.hooks: list = []  # called as hook(step) after each step (tests, progress)

    # -- data ------------------------------------------------------------------------------------
    def _loader(self, batches: list[list[int]]) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_sampler=batches,
            num_workers=self.cfg.train.num_workers,
            pin_memory=self.ctx.device.type == "cuda",
            generator=torch.Generator(),  # keeps the global RNG untouched (exact resume)
        )

    def _batches(self, start_step: int) -> Iterator[dict]:
        """Training batches from `start_step` on, in the order an uninterrupted run sees them."""
        step, b = start_step, self.per_rank_batch
        while True:
            epoch, offset = divmod(step, self.batches_per_epoch)
            self.sampler.set_epoch(epoch)
            indices = list(self.sampler)
            order = [indices[i * b : (i + 1) * b] for i in range(offset, self.batches_per_epoch)]
            for batch in self._loader(order):
                yield to_device(batch, self.ctx.device)
                step += 1

    def _val_batches(self) -> list[dict]:
        if self.val_set is None:
            return []
        loader = DataLoader(
            self.val_set,
            batch_size=self.per_rank_batch,
            shuffle=False,
            num_workers=0,
            generator=torch.Generator(),
        )
        out = []
        for i, batch in enumerate(loader):
            if i >= self.cfg.train.max_val_batches:
                break
            out.append(to_device(batch, self.ctx.device))
        return out

    # -- checkpoints -----------------------------------------------------------------------------
    def _save(self, name: str, step: int) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "step": step,
            "best_value": self.best_value,
            "recipe": self.recipe.state(),
            "rng": capture_rng_state(),
        }
        config = checkpoint_config(
            self.cfg,
            kind=self.recipe.kind,
            step=step,
            dataset=self.dataset_path,
            **self.recipe.config_extra(),
        )
        save_checkpoint(self.ckpt_dir / name, config, self.recipe.export_tensors(), state)

    def _check_compatible(self, stored: dict[str, Any]) -> None:
        mine = to_dict(self.cfg)
        defaults = to_dict(ExperimentConfig())
        diffs = []
        for section, values in mine.items():
            for key, value in values.items():
                if key not in stored.get(section, {}) and value == defaults[section].get(key):
                    continue  # a key added after the run started, at its default
                old = stored.get(section, {}).get(key)
                if old != value and (section, key) not in RESUMABLE_CHANGES:
                    diffs.append(f"{section}.{key}: run has {old!r}, now {value!r}")
        for key, value in self.recipe.config_extra().items():  # teacher, extra datasets
            if stored.get(key) != value and (key in stored or value):  # absent = empty
                diffs.append(f"{key}: run has {stored.get(key)!r}, now {value!r}")
        if diffs:
            raise ConfigError(
                f"{self.run_dir} holds a run with a different configuration ("
                + "; ".join(diffs[:5])
                + "). Resume it with the same settings, or choose a new --out"
            )

    def _resume(self) -> int:
        latest = self.ckpt_dir / "latest"
        exists = broadcast_flag(self.ctx, (latest / "config.json").is_file())
        if not exists:
            return 0
        ckpt = load_checkpoint(latest, device=self.ctx.device)
        self._check_compatible(ckpt.config)
        state = ckpt.training_state
        if state is None:
            raise ConfigError(f"{latest} has no training state to resume from")
        self.recipe.load_state(state["recipe"])
        restore_rng_state(state["rng"])
        step = int(state["step"])
        self.metrics.truncate_after(step)
        if self.closed_loop is None:
            self.best_value = float(state["best_value"])
        else:  # the selection follows from the evaluations logged up to this step
            kept, self.eval_max = replay_selection(
                self.metrics.read(EVAL_SPLIT), self.cfg.train.eval_episodes
            )
            if kept is not None:
                self.best_value = float(kept["success_rate"])
        return step

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        tc = self.cfg.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        start = self._resume()
        if self.ctx.is_main:
            (self.run_dir / "config.json").write_text(
                json.dumps(
                    {"kind": self.recipe.kind, **to_dict(self.cfg), **self.recipe.config_extra()},
                    indent=2,
                )
            )
            if start:
                print(
                    f"[{self.recipe.kind}] resuming {self.run_dir} at step {start}",
                    file=sys.stderr,
                )
        if start >= tc.max_steps:
            return self._summary(start, 0.0)
        val_batches = self._val_batches()
        bar = tqdm(
            total=tc.max_steps,
            initial=start,
            disable=not self.progress,
            desc=f"{self.recipe.kind} {self.run_dir.name}",
            unit="step",
            dynamic_ncols=True,
            mininterval=1.0 if sys.stderr.isatty() else 15.0,
        )
        t0, t_log = time.perf_counter(), time.perf_counter()
        window: dict[str, list[float]] = {}
        step = start
        try:
            for batch in self._batches(start):
                metrics = self.recipe.train_step(batch, step)
                step += 1
                for k, v in metrics.items():
                    window.setdefault(k, []).append(v)
                bar.update(1)
                if step % tc.log_every == 0 or step == tc.max_steps:
                    now = time.perf_counter()
                    row = {k: sum(v) / len(v) for k, v in window.items()}
                    row.update(
                        step=step,
                        split="train",
                        epoch=step // self.batches_per_epoch,
                        time=round(now - t0, 3),
                        steps_per_s=round(
                            len(next(iter(window.values()), [1])) / max(now - t_log, 1e-9), 3
                        ),
                    )
                    self.metrics.append(row)
                    main = {k: row[k] for k in list(metrics)[:2]}
                    bar.set_postfix({k: f"{v:.4g}" for k, v in main.items()})
                    window, t_log = {}, now
                last = step == tc.max_steps
                if val_batches and (step % tc.val_every == 0 or last):
                    val = self.recipe.validate(val_batches)
                    self.metrics.append({"step": step, "split": "val", **val})
                    value = val.get(self.recipe.best_metric or "", math.inf)
                    if self.closed_loop is None and value < self.best_value:
                        self.best_value = value
                        self._save("best", step)
                evaluate = self.closed_loop is not None and (step % tc.eval_every == 0 or last)
                if step in tc.keep_steps:
                    self._save(f"step_{step}", step)
                if step % tc.checkpoint_every == 0 or last or evaluate:
                    self._save("latest", step)
                    if evaluate:  # evaluates the `latest` just written
                        self._evaluate(step, bar)
                    elif self.closed_loop is None and (
                        not val_batches or self.recipe.best_metric is None
                    ):
                        self._save("best", step)  # nothing to select on: best = newest
                    self._plot()
                    barrier(self.ctx)
                for hook in self.hooks:
                    hook(step)
                if step >= tc.max_steps:
                    break
        except KeyboardInterrupt:
            # Nothing is lost: keep the progress made so far, then stop.
            if step > start:
                self._save("latest", step)
            bar.close()
            raise
        bar.close()
        return self._summary(step, time.perf_counter() - t0)

    def _evaluate(self, step: int, bar: tqdm) -> None:
        """Closed-loop evaluation of the `latest` just written (rank 0); selects `best`.

        The evaluation runs under forked RNG states, so a run that evaluates trains exactly as
        one that does not.
        """
        if not self.ctx.is_main:
            return
        devices = [self.ctx.device] if self.ctx.device.type == "cuda" else []
        numpy_state = np.random.get_state()
        with torch.random.fork_rng(devices=devices):
            result = self.closed_loop(self.ckpt_dir / "latest")
        np.random.set_state(numpy_state)
        rate = float(result["success_rate"])
        row = {
            "step": step,
            "split": EVAL_SPLIT,
            "success_rate": rate,
            "mean_episode_length": float(result["mean_episode_length"]),
            "episodes": int(result["episodes_total"]),
            "wall_s": round(float(result["wall_time_s"]), 2),
        }
        self.metrics.append(row)
        self.eval_max = max(self.eval_max, rate)
        if within_noise(rate, self.eval_max, row["episodes"]):
            self.best_value = rate
            self._save("best", step)
        bar.write(
            f"[{self.recipe.kind}] step {step}: closed-loop success {rate:.2f} on "
            f"{result['task']} ({result['episodes_total']} episodes, {row['wall_s']:.0f} s); "
            f"highest {self.eval_max:.2f}, best {self.best_value:.2f}",
            file=sys.stderr,
        )

    def _plot(self) -> None:
        if self.ctx.is_main:
            plot_metrics(
                self.metrics.read(),
                self.run_dir / "plots" / "metrics.png",
                f"{self.recipe.kind}: {self.run_dir.name}",
            )

    def _summary(self, step: int, seconds: float) -> dict[str, Any]:
        summary = {
            "run_dir": str(self.run_dir),
            "step": step,
            "seconds": round(seconds, 2),
            "latest": str(self.ckpt_dir / "latest"),
            "best": str(self.ckpt_dir / "best"),
        }
        if self.best_metric is not None:
            summary["best_" + self.best_metric] = self.best_value
        else:  # no metric selects: best is the newest checkpoint
            summary["best_is_latest"] = True
        if self.closed_loop is not None and self.ctx.is_main:
            rows = self.metrics.read(EVAL_SPLIT)
            if rows:  # DP3's number, over this run's periodic evaluations
                summary["eval_mean_of_5_best"] = mean_of_best(rows, k=5)
        return summary
