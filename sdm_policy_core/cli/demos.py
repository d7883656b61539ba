# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm demos`: record scripted-expert demonstrations of a task as a zarr dataset.

    sdm demos --task button-press-v3 --episodes 10 --out data/button_press.zarr
              [--seed S] [--num-points P] [--image-size S] [--save-depth] [--stop-on-success]
              [--expert scripted|two-route]

Keeps only successful episodes (DP3's rule: the task succeeded on >= 5 steps of a full
200-step episode), tries further placements for failed ones, and writes the dataset atomically
(DP3 layout: data/point_cloud, state, action, full_state [, img, depth]; meta/episode_ends).
Exit codes: 0 written, 1 too few successful episodes, 2 bad arguments (unknown task, existing
output without --overwrite, an expert the task does not have).

`--expert two-route` (pick-place-wall-v3, push-wall-v3) records demonstrations with two modes:
every placement is demonstrated twice, carrying the object around the wall on the left and on
the right, as two teleoperators might (N must be even: N/2 placements); MetaWorld's own expert
(`scripted`, the default) does the same thing every time.

Registered tasks with a scripted expert (e.g. `obstacle-2d`, `obstacle-2d-cue`) write their
own dataset (state-only: data/state, data/action); the MetaWorld options (--num-points,
--image-size, --save-depth, --stop-on-success, --max-attempts, --expert) do not apply to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _registered_demos(args: argparse.Namespace, task: str, entry):
    """(buffer, summary) of a registered task's expert; ValueError for options it lacks."""
    if entry.demos is None:
        raise ValueError(f"{task} has no scripted expert here; train on a recorded dataset")
    metaworld_only = {
        "--num-points": args.num_points != 512,
        "--image-size": args.image_size != 0,
        "--save-depth": args.save_depth,
        "--stop-on-success": args.stop_on_success,
        "--max-attempts": args.max_attempts is not None,
        "--expert": args.expert != "scripted",
    }
    given = [name for name, set_ in metaworld_only.items() if set_]
    if given:
        raise ValueError(f"{', '.join(given)} apply to MetaWorld tasks only, not to {task}")
    return entry.demos(
        task, args.episodes, args.seed, args.max_episode_steps, not args.no_progress
    )


def _demos(args: argparse.Namespace) -> int:
    from sdm_policy_core.data import DatasetError
    from sdm_policy_core.eval.envs import METAWORLD, resolve_eval_task
    from sdm_policy_core.sim import (
        DEFAULT_MAX_EPISODE_STEPS,
        SimulatorError,
        UnknownTaskError,
        record_demos,
    )

    try:
        task, entry = resolve_eval_task(args.task)
    except UnknownTaskError as err:
        print(f"sdm demos: error: {err}", file=sys.stderr)
        return 2
    if args.out.exists() and not args.overwrite:
        print(
            f"sdm demos: error: {args.out} exists; pass --overwrite to replace it", file=sys.stderr
        )
        return 2
    try:
        if entry.name != METAWORLD:
            buffer, summary = _registered_demos(args, task, entry)
        else:
            buffer, summary = record_demos(
                task,
                args.episodes,
                seed=args.seed,
                num_points=args.num_points,
                image_size=args.image_size,
                save_depth=args.save_depth,
                max_episode_steps=args.max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
                stop_on_success=args.stop_on_success,
                max_attempts=args.max_attempts,
                progress=not args.no_progress,
                expert=args.expert,
            )
    except ValueError as err:
        print(f"sdm demos: error: {err}", file=sys.stderr)
        return 2
    except SimulatorError as err:
        print(f"sdm demos: error: {err}", file=sys.stderr)
        return 1
    try:
        buffer.save(args.out, overwrite=args.overwrite)
    except DatasetError as err:
        print(f"sdm demos: error: {err}", file=sys.stderr)
        return 2
    lengths = summary.episode_lengths
    print(
        f"{task}: kept {summary.episodes}/{summary.attempts} episodes, {summary.steps} steps "
        f"(length {min(lengths)}-{max(lengths)}, first success at step "
        f"{min(summary.first_success_steps)}-{max(summary.first_success_steps)}) in "
        f"{summary.wall_time_s:.1f} s -> {args.out}",
        file=sys.stderr,
    )
    print(json.dumps({**summary.to_dict(), "out": str(args.out)}))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demos",
        help="record scripted-expert demonstrations (MetaWorld, obstacle-2d)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--task",
        required=True,
        help="MetaWorld v3 task (e.g. button-press-v3) or obstacle-2d[-cue]",
    )
    p.add_argument("--episodes", required=True, type=int, help="successful episodes to keep")
    p.add_argument("--out", required=True, type=Path, help="zarr dataset to write")
    p.add_argument("--seed", type=int, default=0, help="placement seed (default 0)")
    p.add_argument("--num-points", type=int, default=512, help="points per cloud (default 512)")
    p.add_argument(
        "--image-size", type=int, default=0, help="also store RGB `img` of SxS px (default 0: no)"
    )
    p.add_argument("--save-depth", action="store_true", help="also store `depth` (m, 128x128)")
    p.add_argument(
        "--max-episode-steps",
        type=int,
        help="episode length (default: the task's own; MetaWorld 200, as DP3)",
    )
    p.add_argument(
        "--stop-on-success",
        action="store_true",
        help="end an episode once it succeeded on 5 steps (default: full episodes, as DP3)",
    )
    p.add_argument(
        "--max-attempts", type=int, help="episodes to try at most (default max(2N, N+10))"
    )
    p.add_argument(
        "--expert",
        choices=("scripted", "two-route"),
        default="scripted",
        help="demonstrator: MetaWorld's scripted expert (default) or two-route (each placement "
        "left and right around the wall; pick-place-wall-v3, push-wall-v3)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_demos)
