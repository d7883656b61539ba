# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm train`: train a diffusion teacher (DP3 on point clouds, or Diffusion Policy on images).

    sdm train --dataset DATA.zarr --out RUN_DIR [--config FILE.yaml] [section.key=value ...]

The observation spec (points, channels, state and action sizes) comes from the dataset. The run
resumes from RUN_DIR/checkpoints/latest when it exists. `checkpoints/best` is the lowest
validation loss, or with `train.eval_task=TASK` (MetaWorld data) selected on a closed-loop
evaluation every `train.eval_every` steps (`train.eval_episodes` episodes each, on placements
`sdm eval` does not use): the newest checkpoint within one standard error of the most
successful. Deploy `latest` unless the run evaluated in closed loop.
Multi-GPU / multi-node: the same command under `torchrun --nproc_per_node=N` (train.batch_size
is the global batch).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sdm_policy_core.config import ConfigError, load_config
from sdm_policy_core.data import DatasetError


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, type=Path, help="zarr dataset (DP3 layout)")
    p.add_argument("--out", required=True, type=Path, help="run directory (resumed if present)")
    p.add_argument("--config", type=Path, help="YAML file with config sections")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="config overrides, e.g. model.preset=cpu_small train.max_steps=2000",
    )


def run_guarded(fn, args: argparse.Namespace) -> int:
    """Run a training command; configuration and data errors become one clear line."""
    from sdm_policy_core.checkpoint import CheckpointError

    try:
        return fn(args)
    except (ConfigError, DatasetError, CheckpointError) as err:
        print(f"sdm {args.command}: error: {err}", file=sys.stderr)
        return 2


def run_training(
    args: argparse.Namespace, cfg, make_recipe, fix_obs: bool, extra: Sequence[Path] = ()
) -> int:
    """Run a training command: the part shared by `sdm train` and `sdm distill`.

    Process group, datasets (`extra`: more training-only datasets, see `make_datasets`), the
    recipe that `make_recipe(cfg, train_set, ctx)` builds, the Trainer, and the summary line.
    """
    import torch

    from sdm_policy_core.training.data import make_datasets
    from sdm_policy_core.training.distributed import init_distributed, shutdown
    from sdm_policy_core.training.trainer import Trainer

    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    ctx = init_distributed(cfg.train.device)
    try:
        cfg, train_set, val_set = make_datasets(cfg, args.dataset, fix_obs=fix_obs, extra=extra)
        closed_loop = None
        if cfg.train.eval_task:  # checked before any training step
            from sdm_policy_core.eval.selection import selection_evaluator

            closed_loop = selection_evaluator(cfg, ctx.device)
        recipe = make_recipe(cfg, train_set, ctx)
        trainer = Trainer(
            cfg,
            recipe,
            train_set,
            val_set,
            args.out,
            ctx,
            dataset_path=args.dataset,
            progress=not args.no_progress,
            closed_loop=closed_loop,
        )
        summary = trainer.fit()
    finally:
        shutdown(ctx)
    if ctx.is_main:
        print(json.dumps(summary))
    return 0


def _train(args: argparse.Namespace) -> int:
    from sdm_policy_core.training.recipes import TeacherRecipe

    cfg = load_config(args.config, args.overrides)
    return run_training(
        args,
        cfg,
        lambda cfg, train_set, ctx: TeacherRecipe(cfg, train_set.get_normalizer(), ctx),
        fix_obs=True,
    )


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a diffusion teacher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(p)
    p.set_defaults(func=lambda a: run_guarded(_train, a))
