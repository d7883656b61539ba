# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""MetaWorld benchmark: teacher (DDIM-10, DDIM-2, naive one-step) vs the SDM one-step student.

    python benchmarks/metaworld/run.py                       # the full protocol (hours on 2 CPUs)
    python benchmarks/metaworld/run.py --smoke               # a few minutes: proves the pipeline
    python benchmarks/metaworld/run.py --tasks pick-place-v3 --teacher-steps 6000
    python benchmarks/metaworld/run.py --tasks pick-place-wall-v3:two-route   # TASK[:EXPERT]

Per task, each stage is one `sdm` command in its own process (the commands are printed and
logged, so every number can be reproduced by hand):
1. `sdm demos`   10 scripted-expert demonstrations (DP3's rule: successful episodes only);
   `TASK:two-route` records them with `--expert two-route` (each placement left and right
   around the wall: demonstrations with two modes) under the name TASK_two-route; such a
   task also gets `modes.py` (route chosen or blended where the demos part ways)
2. `sdm train`   the DP3 teacher (per training seed)
3. `sdm distill` SDM: the teacher's frozen scores + a corrector -> a one-step generator
4. `sdm eval`    final checkpoints, `--episodes` x `--eval-seeds` episodes each (the same
   placements for every row): the teacher with DDIM-10, the teacher with DDIM-2, the teacher's
   naive one-step call (x0 at the largest timestep, no distillation) and the SDM student.

Stages whose outputs exist are skipped (a dataset, a checkpoint at its final step, an evaluation
JSON unless --redo-evals) and an interrupted `sdm train` / `sdm distill` resumes, so a killed
run continues where it stopped; the time of each stage is kept in WORK/stages.json when it
runs, so a table rebuilt later still shows it. Writes
`RESULTS/metaworld[_TAG]_<task>_<row>[_s<seed>].json` per evaluation,
`RESULTS/metaworld[_TAG].json` (all rows + wall-clock per stage) and the markdown table
`RESULTS/metaworld[_TAG].md` (also printed) for BENCHMARKS.md.

DP3 / SDM report the mean over 3 *training* seeds of the mean of the 5 best periodic evaluations;
this benchmark reports final checkpoints (stricter) over 3 evaluation seeds by default, and over
several training seeds with `--train-seeds 0 1 2` (3x the training time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import gap_cell  # beside this script

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"

DEFAULT_TASKS = ("button-press-v3", "drawer-open-v3", "pick-place-v3", "assembly-v3")
# MetaWorld difficulty groups used by DP3 (after Seo et al. 2022); tasks not listed are "easy".
_GROUPS = {
    "medium": "basketball bin-picking box-close coffee-pull coffee-push hammer peg-insert-side "
    "push-wall soccer sweep sweep-into",
    "hard": "assembly hand-insert pick-out-of-hole pick-place push push-back",
    "very hard": "shelf-place disassemble stick-pull stick-push pick-place-wall",
}
DIFFICULTY = {f"{t}-v3": group for group, names in _GROUPS.items() for t in names.split()}
# Published success rates (%) per difficulty group (METHOD.md): DP3 paper / SDM Policy.
PUBLISHED = {
    "easy": (90.9, 86.5),
    "medium": (61.6, 65.8),
    "hard": (31.7, 35.8),
    "very hard": (49.0, 71.6),
}
ROWS = (  # (row name, checkpoint, sampler, steps)
    ("teacher_ddim10", "teacher", "ddim", 10),
    ("teacher_ddim2", "teacher", "ddim", 2),
    ("teacher_onestep", "teacher", "one-step", None),
    ("sdm_onestep", "sdm", "one-step", None),
)


def sdm_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "sdm_policy_core.cli", *args]


def _trained_steps(checkpoint: Path) -> int:
    """Return the step a checkpoint was saved at (0 when there is none)."""
    try:
        return int(json.loads((checkpoint / "config.json").read_text())["provenance"]["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


class Stages:
    """Runs commands with logs and records the wall-clock time of each stage.

    The record of every stage that ran (seconds, command) persists in WORK/stages.json, so a
    stage skipped later (its outputs exist) still reports the time it took when it ran.
    """

    def __init__(self, work: Path) -> None:
        self.work = work
        self.record_path = work / "stages.json"
        try:
            self.record: dict[str, dict[str, Any]] = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            self.record = {}
        self.timings: dict[str, float] = {}
        self.commands: dict[str, str] = {}

    def skip(self, name: str, why: str) -> None:
        """Skip a stage whose outputs exist: report its recorded time, if any."""
        done = self.record.get(name)
        if done:
            self.timings[name] = float(done["seconds"])
            self.commands[name] = done["command"]
        print(f"[{name}] skipped: {why}", file=sys.stderr, flush=True)

    def run(self, name: str, cmd: list[str], log: Path) -> float:
        shown = " ".join(["sdm", *cmd[3:]] if cmd[:3] == sdm_cmd() else cmd)
        print(f"[{name}] $ {shown}", file=sys.stderr, flush=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with log.open("w") as handle:
            proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            raise SystemExit(
                f"[{name}] failed with exit code {proc.returncode} after {elapsed:.0f} s; "
                f"log {log}:\n" + "\n".join(tail)
            )
        self.timings[name] = elapsed
        self.commands[name] = shown
        self.record[name] = {"seconds": elapsed, "command": shown}
        self.work.mkdir(parents=True, exist_ok=True)
        tmp = self.record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record, indent=2) + "\n")
        os.replace(tmp, self.record_path)
        print(f"[{name}] {elapsed:.1f} s", file=sys.stderr, flush=True)
        return elapsed


def run_task(spec: str, args: argparse.Namespace, stages: Stages) -> list[dict[str, Any]]:
    """All stages of one TASK[:EXPERT]; one summary row per (training seed, evaluation row)."""
    task, _, expert = spec.partition(":")
    name = f"{task}_{expert}" if expert else task  # work folder, stage and result names
    work = args.work / name
    demos = work / "demos.zarr"
    common = ["--no-progress"] if args.no_progress else []
    if demos.exists():
        stages.skip(f"{name}/demos", f"{demos} exists")
    else:
        cmd = sdm_cmd(
            "demos",
            "--task",
            task,
            "--episodes",
            str(args.demos),
            "--out",
            str(demos),
            "--seed",
            str(args.demo_seed),
            "--num-points",
            str(args.num_points),
            *(["--stop-on-success"] if args.stop_on_success else []),
            *(["--expert", expert] if expert else []),
            *common,
        )
        stages.run(f"{name}/demos", cmd, work / "logs" / "demos.log")
    rows = []
    for seed in args.train_seeds:
        teacher_dir, sdm_dir = work / f"teacher_s{seed}", work / f"sdm_s{seed}"
        teacher = teacher_dir / "checkpoints" / "latest"
        student = sdm_dir / "checkpoints" / "latest"
        train = [
            f"model.preset={args.preset}",
            f"train.max_steps={args.teacher_steps}",
            f"train.seed={seed}",
            f"train.threads={args.threads}",
            *args.train_overrides,
        ]
        cmd = sdm_cmd("train", "--dataset", str(demos), "--out", str(teacher_dir), *train)
        if _trained_steps(teacher) >= args.teacher_steps:
            stages.skip(f"{name}/train_s{seed}", f"{teacher} is at step {args.teacher_steps}")
        else:  # a new run, or the resumption of an interrupted one
            log = work / "logs" / f"train_s{seed}.log"
            stages.run(f"{name}/train_s{seed}", cmd + common, log)
        distill = [
            f"train.max_steps={args.distill_steps}",
            f"train.seed={seed}",
            f"train.threads={args.threads}",
            *args.distill_overrides,
        ]
        cmd = sdm_cmd(
            "distill", "--teacher", str(teacher), "--dataset", str(demos), "--out", str(sdm_dir)
        )
        log = work / "logs" / f"distill_s{seed}.log"
        if _trained_steps(student) >= args.distill_steps:
            stages.skip(f"{name}/distill_s{seed}", f"{student} is at step {args.distill_steps}")
        else:
            stages.run(f"{name}/distill_s{seed}", cmd + distill + common, log)
        for row, which, sampler, steps in ROWS:
            if row not in args.rows:
                continue
            suffix = f"_s{seed}" if len(args.train_seeds) > 1 else ""
            out = args.results / f"metaworld{args.tag}_{name}_{row}{suffix}.json"
            cmd = sdm_cmd(
                "eval",
                "--checkpoint",
                str(teacher if which == "teacher" else student),
                "--task",
                task,
                "--episodes",
                str(args.episodes),
                "--seeds",
                *map(str, args.eval_seeds),
                "--sampler",
                sampler,
                *(["--steps", str(steps)] if steps else []),
                "--threads",
                str(args.threads),
                "--out",
                str(out),
                *common,
            )
            log = work / "logs" / f"eval_{row}_s{seed}.log"
            if out.exists() and not args.redo_evals:
                stages.skip(f"{name}/eval_{row}_s{seed}", f"{out.name} exists (--redo-evals)")
            else:
                stages.run(f"{name}/eval_{row}_s{seed}", cmd, log)
            result = json.loads(out.read_text())
            rows.append(
                {
                    "task": name,
                    "expert": expert or "scripted",
                    "train_seed": seed,
                    "row": row,
                    "success_rate": result["success_rate"],
                    "success_rate_std": result["success_rate_std"],
                    "per_seed": result["per_seed"],
                    "mean_episode_length": result["mean_episode_length"],
                    "latency_ms": result["latency_ms"],
                    "policy_ms_per_action": result["policy_ms_per_action"],
                    "control_hz": result["control_hz"],
                    "result": str(out.relative_to(REPO) if out.is_relative_to(REPO) else out),
                }
            )
    if expert == "two-route":  # where the demos part ways: a chosen route or a blend?
        modes = args.results / f"metaworld_modes_{name}.json"
        try:
            done_seeds = json.loads(modes.read_text()).get("train_seeds", [0])
        except (OSError, ValueError):
            done_seeds = None
        if done_seeds == args.train_seeds and not args.redo_evals:
            stages.skip(f"{name}/modes", f"{modes.name} exists (--redo-evals)")
        else:
            cmd = [
                sys.executable,
                str(HERE / "modes.py"),
                "--work",
                str(work),
                "--train-seeds",
                *map(str, args.train_seeds),
                "--threads",
                str(args.threads),
                "--results",
                str(args.results),
            ]
            stages.run(f"{name}/modes", cmd, work / "logs" / "modes.log")
    return rows


def paired_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(task, base row) -> paired_difference(base, SDM) over the training seeds of the task."""
    from sdm_policy_core.eval import paired_difference

    def results(task: str, row: str) -> list[dict[str, Any]]:
        mine = sorted((r for r in rows if r["task"] == task and r["row"] == row), key=_seed)
        return [json.loads((REPO / r["result"]).read_text()) for r in mine]

    out = {}
    for task in dict.fromkeys(r["task"] for r in rows):
        student = results(task, "sdm_onestep")
        for base in ("teacher_ddim10", "teacher_onestep"):
            reference = results(task, base)
            if student and len(reference) == len(student):
                out[task, base] = paired_difference(reference, student)
    return out


def _seed(row: dict[str, Any]) -> int:
    return int(row["train_seed"])


def _gap_cell(gap: dict[str, Any] | None) -> str:
    return "–" if gap is None else gap_cell(gap, interval_decimals=0)


def markdown(
    rows: list[dict[str, Any]],
    paired: dict[tuple[str, str], dict[str, Any]],
    timings: dict[str, float],
    args: argparse.Namespace,
) -> str:
    """Format the BENCHMARKS.md table: success (%) per row, policy time per action, wall-clock."""
    import numpy as np

    lines = [
        f"Final checkpoints, {args.episodes} episodes x {len(args.eval_seeds)} evaluation seeds"
        f" x {len(args.train_seeds)} training seed(s); {args.demos} demos; teacher "
        f"`model.preset={args.preset}` {args.teacher_steps} steps, SDM {args.distill_steps} "
        f"steps; {args.num_points} points; {args.threads} CPU threads. Success in % (mean ± std "
        + (
            "over training seeds, each seed's success in brackets)"
            if len(args.train_seeds) > 1
            else "over evaluation seeds)"
        )
        + "; policy time per executed action in ms.",
        "",
        "| task (difficulty) | teacher DDIM-10 | teacher DDIM-2 | naive one-step | SDM one-step "
        "| SDM − DDIM-10 (95% CI) | SDM − naive (95% CI) "
        "| ms/action DDIM-10 → SDM | speed-up | DP3 / SDM published (group) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task in dict.fromkeys(r["task"] for r in rows):
        cells, ms = [], {}
        for row, *_ in ROWS:
            mine = [r for r in rows if r["task"] == task and r["row"] == row]
            if not mine:
                cells.append("–")
                continue
            if len(mine) > 1:  # DP3's convention: mean ± std over training seeds
                rates = [100 * r["success_rate"] for r in sorted(mine, key=_seed)]
                each = " / ".join(f"{x:.0f}" for x in rates)
                cells.append(f"{np.mean(rates):.1f} ± {np.std(rates):.1f} ({each})")
            else:
                rates = [100 * p["success_rate"] for p in mine[0]["per_seed"]]
                cells.append(f"{np.mean(rates):.1f} ± {np.std(rates):.1f}")
            ms[row] = float(np.mean([r["policy_ms_per_action"] for r in mine]))
        group = DIFFICULTY.get(task.partition("_")[0], "easy")
        dp3, sdm = PUBLISHED[group]
        speed = (
            f"{ms['teacher_ddim10'] / ms['sdm_onestep']:.1f}x"
            if "teacher_ddim10" in ms and "sdm_onestep" in ms
            else "–"
        )
        timing = (
            f"{ms.get('teacher_ddim10', float('nan')):.2f} → "
            f"{ms.get('sdm_onestep', float('nan')):.2f}"
        )
        cells += [_gap_cell(paired.get((task, b))) for b in ("teacher_ddim10", "teacher_onestep")]
        lines.append(
            f"| {task} ({group}) | {' | '.join(cells)} | {timing} | {speed} | "
            f"{dp3} / {sdm} ({group}) |"
        )
    lines += [
        "",
        "SDM − X: success of the SDM student minus row X on the same episodes (points), with "
        "the 95% interval of a paired bootstrap over training seeds and episodes "
        "(`sdm_policy_core.eval.paired_difference`).",
    ]
    lines += ["", "Wall-clock per stage (s, this machine):", ""]
    lines += ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in timings.items()]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--tasks",
        nargs="+",
        default=list(DEFAULT_TASKS),
        metavar="TASK[:EXPERT]",
        help="MetaWorld v3 tasks; TASK:two-route = demos by `sdm demos --expert two-route`",
    )
    p.add_argument("--demos", type=int, default=10, help="expert demonstrations per task")
    p.add_argument("--demo-seed", type=int, default=0)
    p.add_argument("--stop-on-success", action="store_true", help="short demos (sdm demos)")
    p.add_argument("--num-points", type=int, default=512)
    p.add_argument("--preset", default="cpu_small", help="teacher model.preset")
    p.add_argument("--teacher-steps", type=int, default=3000)
    p.add_argument("--distill-steps", type=int, default=2000)
    p.add_argument("--train-overrides", nargs="*", default=[], metavar="K=V")
    p.add_argument("--distill-overrides", nargs="*", default=[], metavar="K=V")
    p.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per seed")
    p.add_argument("--rows", nargs="+", default=[r[0] for r in ROWS], choices=[r[0] for r in ROWS])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", type=Path, default=REPO / "runs" / "metaworld")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--tag", default="", help="suffix of result names (e.g. smoke)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--redo-evals",
        action="store_true",
        help="evaluate again even where a result exists (e.g. on a quieter machine)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="button-press-v3, 10 demos, 300 teacher + 100 SDM steps, 5 episodes x 1 seed",
    )
    args = p.parse_args()
    if args.smoke:
        args.tasks = ["button-press-v3"]
        args.teacher_steps, args.distill_steps = 300, 100
        args.episodes, args.eval_seeds = 5, [0]
        args.tag = args.tag or "smoke"
        if args.work == REPO / "runs" / "metaworld":
            args.work = REPO / "runs" / "metaworld_smoke"
        args.train_overrides = [
            "train.val_every=100",
            "train.checkpoint_every=100",
            *args.train_overrides,
        ]
        args.distill_overrides = [
            "train.val_every=50",
            "train.checkpoint_every=50",
            *args.distill_overrides,
        ]
    args.tag = f"_{args.tag}" if args.tag and not args.tag.startswith("_") else args.tag
    return args


def main() -> int:
    args = parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    args.results.mkdir(parents=True, exist_ok=True)
    stages = Stages(args.work)
    rows: list[dict[str, Any]] = []
    start = time.perf_counter()
    for task in args.tasks:
        rows += run_task(task, args, stages)
    paired = paired_rows(rows)
    summary = {
        "tasks": args.tasks,
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("smoke",)
        },
        "rows": rows,
        "paired_sdm_minus": {f"{task}/{base}": gap for (task, base), gap in paired.items()},
        "timings_s": stages.timings,
        "commands": stages.commands,
        "wall_time_s": time.perf_counter() - start,
        "cpu_count": os.cpu_count(),
    }
    out = args.results / f"metaworld{args.tag}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    table = markdown(rows, paired, stages.timings, args)
    (args.results / f"metaworld{args.tag}.md").write_text(table)
    print(table)
    print(f"-> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
