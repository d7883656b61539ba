# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm distill`: distil a teacher checkpoint into a one-step SDM policy.

    sdm distill --teacher CKPT_DIR --dataset DATA.zarr --out RUN_DIR
                [--extra-dataset VISITED.zarr ...] [section.key=value ...]

Architecture, horizons, observation spec and diffusion schedule come from the teacher; only
`train.*` and `distill.*` may be set. The checkpoints in RUN_DIR/checkpoints/{latest,best} hold
the EMA generator, the one the one-step sampler calls. Resumes like `sdm train`, and like it
selects `best` on closed-loop one-step success with `train.eval_task=TASK`; without it `best`
is `latest` (the validation action MSE, still logged, rewards collapse onto the mean).

Distillation uses the dataset's observations only (the teacher's scores, not the recorded
actions, are the targets), so `--extra-dataset` can add observations the demonstrations do not
cover: e.g. the closed-loop rollouts of a first student or of the teacher, recorded with
`sdm eval --record` on seeds that are not the evaluation seeds. All their episodes join the
training split; validation stays on the held-out demonstrations.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdm_policy_core.cli.train import add_common_arguments, run_guarded, run_training
from sdm_policy_core.config import ConfigError, load_config, to_dict


def _distill(args: argparse.Namespace) -> int:
    from sdm_policy_core.checkpoint import CheckpointError, load_checkpoint
    from sdm_policy_core.policies.loading import policy_from_checkpoint
    from sdm_policy_core.training.recipes import SdmRecipe

    fixed = [o for o in args.overrides if o.split(".", 1)[0] in ("obs", "model", "diffusion")]
    if fixed:
        raise ConfigError(
            f"{fixed}: the architecture, observation spec and schedule come from the teacher "
            "checkpoint; only train.* and distill.* can be set for distillation"
        )
    ckpt = load_checkpoint(args.teacher, load_training_state=False)
    if ckpt.kind != "teacher":
        raise CheckpointError(f"{args.teacher} is a {ckpt.kind!r} checkpoint, not a teacher")
    teacher_cfg = ckpt.experiment_config()
    base = {k: to_dict(getattr(teacher_cfg, k)) for k in ("obs", "model", "diffusion")}
    cfg = load_config(args.config, args.overrides, base=base)

    extra = args.extra_dataset or []

    def make_recipe(cfg, train_set, ctx):
        ckpt = load_checkpoint(args.teacher, device=ctx.device, load_training_state=False)
        return SdmRecipe(cfg, policy_from_checkpoint(ckpt), ctx, args.teacher, extra)

    return run_training(args, cfg, make_recipe, fix_obs=False, extra=extra)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a teacher into a one-step SDM policy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--teacher", required=True, type=Path, help="teacher checkpoint directory")
    add_common_arguments(p)
    p.add_argument(
        "--extra-dataset",
        action="append",
        type=Path,
        metavar="PATH",
        help="more observations to distil on (e.g. `sdm eval --record` rollouts); repeatable",
    )
    p.set_defaults(func=lambda a: run_guarded(_distill, a))
