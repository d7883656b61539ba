# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Where the episodes of a pick-and-place task fail: grasp, carry past the wall, or place.

    python benchmarks/metaworld/phases.py --work runs/metaworld/pick-place-wall-v3_two-route \
        [--train-seeds 0 1 2] [--episodes 20] [--eval-seeds 0 1 2] [--variants sdm_reg]

Re-runs the evaluation episodes of `sdm eval` (the same reset seeds and sampler noise, so the
same outcomes; checked against the row's evaluation JSON when `--results` holds it) for the
teacher with DDIM-10, its naive one-step call and the SDM student, and follows the object in
MetaWorld's state vector. Every episode ends in one phase:

- `not grasped`: the object never rose 2 cm (pick-place-wall) / never moved 2 cm (push-wall)
- `before the wall`: it moved, but never got behind the wall (y > 0.76 m): dropped or stuck
- `behind, not placed`: behind the wall, but not at the goal when the episode ended
- `success`: MetaWorld reported success

and, once the object reaches the wall's line, the side it passes on (left of x = -0.02 m,
right of x = 0.22 m, or in between: into the wall). pick-place-v3 has no wall: its episodes end
`not grasped`, `lifted, not placed` or `success`. For every episode the closest the object came
to the goal is kept (the tasks' success radius is 0.07 m): a failure at 8 cm is a
placement that lacked precision, one at 30 cm never got there. `--variants PREFIX` adds a row for
the SDM runs PREFIX_s<seed> (e.g. distillation variants), checked against
metaworld*_<name>_PREFIX_onestep_s<seed>.json when that evaluation exists. Writes
RESULTS/metaworld_phases_<name>.json and .md (also printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import evaluation_files, latest_checkpoint, write_report  # beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
PHASES = ("not grasped", "before the wall", "behind, not placed", "success")
FREE_PHASES = ("not grasped", "lifted, not placed", "success")  # pick-place-v3: no wall
TASKS = ("pick-place-wall-v3", "push-wall-v3", "pick-place-v3")
MOVED_M = 0.02  # a grasp lifts the object (pick-place-wall), a push moves it (push-wall)
SUCCESS_RADIUS_M = 0.07  # MetaWorld v3 success threshold of all three tasks


def goal_distance(states: np.ndarray) -> float:
    """Closest the object (state 4:7) came to the goal (state 36:39) in an episode [m]."""
    states = np.asarray(states)
    return float(np.linalg.norm(states[:, 4:7] - states[:, 36:39], axis=1).min())


def phase_of(
    states: np.ndarray, success: bool, lifts: bool, wall: bool = True
) -> tuple[str, str | None]:
    """(phase, side) of one episode from its (T, 39) MetaWorld states (object xyz at 4:7).

    wall=False (pick-place-v3): 'not grasped', 'lifted, not placed' or 'success'; side None.
    """
    from sdm_policy_core.sim.experts import WALL_X, WALL_Y

    obj = np.asarray(states)[:, 4:7]
    if not wall:
        if success:
            return "success", None
        lifted = (obj[:, 2] - obj[0, 2]).max() > MOVED_M
        return ("lifted, not placed" if lifted else "not grasped"), None
    at_wall = np.flatnonzero(obj[:, 1] > WALL_Y[0] - 0.02)
    side = None
    if at_wall.size:
        x = obj[at_wall[0], 0]
        side = "left" if x < WALL_X[0] else "right" if x > WALL_X[1] else "into the wall"
    if success:
        return "success", side
    moved = (obj[:, 2] - obj[0, 2]).max() if lifts else np.linalg.norm(obj - obj[0], axis=1).max()
    if moved <= MOVED_M:
        return "not grasped", side
    if obj[:, 1].max() <= WALL_Y[1]:
        return "before the wall", side
    return "behind, not placed", side


class _Recorder:
    """A MetaWorld EvalEnv that keeps the state vector of every step of the current episode."""

    def __init__(self, env) -> None:
        self.env, self.states = env, []

    def reset(self, seed: int):
        obs = self.env.reset(seed)
        self.states = [obs["full_state"].copy()]
        return obs

    def step(self, action, observe: bool = True):
        out = self.env.step(action, observe=observe)
        self.states.append(out[0]["full_state"].copy())
        return out

    def render(self):
        return self.env.render()


def run_row(
    task: str, checkpoints: list[Path], sampler: str, steps: int | None, args
) -> list[dict[str, Any]]:
    """Per-episode phase and side of a row, over its checkpoints (one per training seed)."""
    from sdm_policy_core.eval import run_episode
    from sdm_policy_core.eval.envs import MetaWorldEvalEnv
    from sdm_policy_core.runtime import PolicyRuntime
    from sdm_policy_core.sim.demos import EVAL_STREAM, episode_seed
    from sdm_policy_core.sim.metaworld_env import MetaWorldEnv

    episodes = []
    for train_seed, checkpoint in zip(args.train_seeds, checkpoints, strict=True):
        runtime = PolicyRuntime(checkpoint, sampler=sampler, steps=steps, threads=args.threads)
        num_points = runtime.spec.point_cloud_shape[0]
        env = _Recorder(MetaWorldEvalEnv(MetaWorldEnv(task, num_points=num_points)))
        try:
            for s in args.eval_seeds:  # as `sdm eval` runs them
                runtime.generator.manual_seed(s)
                for i in range(args.episodes):
                    ep = run_episode(env, runtime, episode_seed(s, i, EVAL_STREAM), s, i)
                    states = np.array(env.states)
                    phase, side = phase_of(states, ep.success, "pick" in task, "wall" in task)
                    episodes.append(
                        {
                            "train_seed": train_seed,
                            "seed": s,
                            "index": i,
                            "success": ep.success,
                            "phase": phase,
                            "side": side,
                            "goal_distance_m": round(goal_distance(states), 4),
                        }
                    )
        finally:
            env.env.close()
    return episodes


def check_against_eval(name: str, row: str, episodes: list[dict[str, Any]], args) -> str:
    """Compare the outcomes with the evaluation JSONs that run.py wrote for this row."""
    checked = 0
    for train_seed in args.train_seeds:
        found = evaluation_files(args.results, name, row, train_seed)
        if not found:
            continue
        evaluation = json.loads(found[0].read_text())
        theirs = [bool(e["success"]) for e in evaluation["episode_results"]]
        ours = [e["success"] for e in episodes if e["train_seed"] == train_seed]
        if theirs != ours:
            raise SystemExit(f"{row} s{train_seed}: outcomes differ from {found[0]}")
        checked += 1
    missing = len(args.train_seeds) - checked
    return f"{checked} training seed(s) equal to their evaluation JSON" + (
        f", {missing} without one in {args.results}" if missing else ""
    )


def near_misses(episodes: list[dict[str, Any]]) -> str:
    """'median [m] (n within 2x the success radius)' of the failures' closest approach."""
    misses = [e["goal_distance_m"] for e in episodes if not e["success"]]
    if not misses:
        return "-"
    close = sum(d < 2 * SUCCESS_RADIUS_M for d in misses)
    return f"{np.median(misses):.3f} ({close})"


def markdown(rows: dict[str, list[dict[str, Any]]], wall: bool = True) -> str:
    phases_ = PHASES if wall else FREE_PHASES
    sides_head = " left / right / into the wall |" if wall else ""
    lines = [
        "Episodes per phase reached (count)"
        + (", the side the object passed the wall on," if wall else ",")
        + " and the failures' closest approach to the goal: median in m (how many came within"
        f" {2 * SUCCESS_RADIUS_M:.2f} m, twice the success radius).",
        "",
        "| policy | " + " | ".join(phases_) + " |" + sides_head + " failures: closest to goal |",
        "|---|" + "---:|" * (len(phases_) + 1 + wall),
    ]
    for name, episodes in rows.items():
        phases = Counter(e["phase"] for e in episodes)
        sides = Counter(e["side"] for e in episodes)
        side_cell = (
            f" {sides.get('left', 0)} / {sides.get('right', 0)} / "
            f"{sides.get('into the wall', 0)} |"
            if wall
            else ""
        )
        lines.append(
            f"| {name} | "
            + " | ".join(str(phases.get(p, 0)) for p in phases_)
            + " |"
            + side_cell
            + f" {near_misses(episodes)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--work", type=Path, required=True, help=f"a benchmark folder of {', '.join(TASKS)}"
    )
    p.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=20, help="episodes per evaluation seed")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument(
        "--variants",
        nargs="*",
        default=[],
        metavar="PREFIX",
        help="extra SDM rows: the runs PREFIX_s<seed> of every training seed",
    )
    args = p.parse_args()
    name = args.work.name
    task = name.partition("_")[0]
    if task not in TASKS:
        p.error(f"{args.work}: phases are defined for {', '.join(TASKS)}, not {task!r}")
    if args.episodes < 1:
        p.error("--episodes must be >= 1")

    def latest(run: str) -> Path:
        return latest_checkpoint(args.work, run, p.error)

    teachers = [latest(f"teacher_s{s}") for s in args.train_seeds]
    plan = [
        ("teacher DDIM-10", "teacher_ddim10", teachers, "ddim", 10),
        ("teacher naive one-step", "teacher_onestep", teachers, "one-step", None),
        (
            "SDM one-step",
            "sdm_onestep",
            [latest(f"sdm_s{s}") for s in args.train_seeds],
            "one-step",
            None,
        ),
        *[
            (
                f"SDM {v}",
                f"{v}_onestep",
                [latest(f"{v}_s{s}") for s in args.train_seeds],
                "one-step",
                None,
            )
            for v in args.variants
        ],
    ]
    start = time.perf_counter()
    rows, checks = {}, {}
    for label, row, checkpoints, sampler, steps in plan:
        print(f"[{label}]", file=sys.stderr, flush=True)
        rows[label] = run_row(task, checkpoints, sampler, steps, args)
        checks[label] = check_against_eval(name, row, rows[label], args)
        print(f"[{label}] {checks[label]}", file=sys.stderr, flush=True)
    summary = {
        "work": str(args.work),
        "train_seeds": args.train_seeds,
        "eval_seeds": args.eval_seeds,
        "episodes": args.episodes,
        "rows": rows,
        "checked_against_eval": checks,
    }
    table = markdown(rows, wall="wall" in task)
    write_report(args.results / f"metaworld_phases_{name}", summary, table, start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
