# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The main job (README command 1): the whole loop on the embedded simulator, over ROS 2.

    ./scripts/main_job.sh [--task button-press-v3] [--work runs/main_job] [--force]
                          [--parts metaworld obstacle]

Part metaworld (a MetaWorld task, point clouds):
1. record   scripted-expert demos driven through the ROS 2 sim bridge (expert_teleop_node),
            recorded live into a rosbag2 bag (mcap) by bag_recorder
2. bag2zarr the bag -> a DP3 zarr dataset (config/bag2zarr/metaworld_sim.yaml)
3. train    a DP3 teacher (`sdm train`)
4. distill  the SDM one-step student (`sdm distill`)
5. evaluate sim-in-the-loop through the policy node (`sdm sim-eval`): the teacher with DDIM,
            the teacher's naive one-step call, and the SDM student
Part obstacle (the mechanism task obstacle-2d, where the rows differ: the demonstrations pass
a disc left or right by a coin the observation hides, and their average collides):
1. demos    `sdm demos --task obstacle-2d` (scripted, in process: no bag is needed)
2. train    a state-only MLP teacher, the study's settings (benchmarks/protocols/obstacle_2d.yaml)
3. distill  the SDM student, the study's headline distillation (`sdm_dm_sigma2`)
4. evaluate the same three rows through the policy node on the same seeds and episodes
Then:
   report   report.md: per task the rows, the paired differences SDM − naive and SDM − DDIM-10
            with 95 % intervals, plots (success, latency distribution, control rate, training
            curves), and closing tables on the terminal

Finished stages are reused (a stage's output exists) unless --force; every command is printed.
The processes this starts keep DDS on this machine (scripts/env.sh). No rclpy import here: the
job only starts processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("metaworld", "obstacle")
OBSTACLE = "obstacle-2d"
OBSTACLE_PROTOCOL = REPO / "benchmarks" / "protocols" / "obstacle_2d.yaml"
# The study's headline SDM: the distillation with the best development success (BENCHMARKS.md).
OBSTACLE_SDM = "sdm_dm_sigma2"
THREADS = ["train.threads=2"]
# obstacle-2d's networks are small MLPs: one thread, as the study ran them. On the busy 2-core
# machine two threads made the teacher's and the distillation's steps 4-6x slower (BENCHMARKS.md).
OBSTACLE_THREADS = 1


def _say(text: str) -> None:
    print(f"\n[main-job] {text}", flush=True)


def _run(cmd: list[str]) -> None:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.run([str(c) for c in cmd]).returncode
    if code != 0:
        raise SystemExit(f"[main-job] failed (exit {code}): {' '.join(str(c) for c in cmd)}")


def record(task: str, episodes: int, bag: Path, logs: Path) -> None:
    """Record expert demos through the sim bridge into a rosbag2 bag.

    Expert demos through the sim bridge into a rosbag2 bag: sim_record.launch.py's processes
    (bridge, expert teleoperator, recorder, driver with `sdm demos`' seeds and keep rule).
    """
    logs.mkdir(parents=True, exist_ok=True)
    _run(
        [
            sys.executable,
            "-m",
            "sdm_policy_ros.launch_runner",
            "sim_record",
            f"task:={task}",
            f"bag:={bag}",
            f"episodes:={episodes}",
            "stop_on_success:=5",
            f"result:={logs / 'demos.json'}",
        ]
    )


def _trained(run: Path, steps: int) -> bool:
    """Return whether the run's latest checkpoint has at least `steps` steps."""
    config = run / "checkpoints" / "latest" / "config.json"
    return config.is_file() and json.loads(config.read_text())["provenance"]["step"] >= steps


def obstacle_settings() -> tuple[list[str], list[str]]:
    """(teacher, SDM distillation) overrides of the obstacle-2d study's protocol."""
    import yaml

    protocol = yaml.safe_load(OBSTACLE_PROTOCOL.read_text())
    return list(protocol["teacher"]), list(protocol["distillations"][OBSTACLE_SDM])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", default="button-press-v3", help="MetaWorld task of part metaworld")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "main_job")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--demos", type=int, default=10)
    p.add_argument("--num-points", type=int, default=256)
    p.add_argument("--teacher-steps", type=int, default=2000)
    p.add_argument("--distill-steps", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--obstacle-demos", type=int, default=100)
    p.add_argument("--obstacle-teacher-steps", type=int, default=1500)
    p.add_argument("--obstacle-distill-steps", type=int, default=1500)
    p.add_argument("--obstacle-episodes", type=int, default=20, help="per evaluation seed")
    p.add_argument("--obstacle-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--force", action="store_true", help="redo every stage")
    a = p.parse_args(argv)
    work = a.work.resolve()
    if a.force and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    sdm = [sys.executable, "-m", "sdm_policy_core.cli"]
    stages: dict[str, float] = {}
    t_all = time.monotonic()

    def stage(name: str, done: bool, fn) -> None:
        if done:
            _say(f"{name}: reused (output exists; --force to redo)")
            return
        _say(f"{name} ...")
        start = time.monotonic()
        fn()
        stages[name] = time.monotonic() - start
        _say(f"{name}: {stages[name]:.0f} s")

    def evaluate(label: str, task: str, teacher: Path, student: Path, out_dir: Path, args):
        """Evaluate the three rows through the policy node, on the same seeds and episodes."""
        rows = {
            "teacher DDIM-10": (teacher, ["--sampler", "ddim", "--steps", "10"]),
            "teacher naive one-step": (teacher, ["--sampler", "one-step", "--steps", "1"]),
            "SDM one-step": (student, ["--sampler", "one-step", "--steps", "1"]),
        }
        results: dict[str, dict] = {}
        for name, (run, sampler) in rows.items():
            out = out_dir / (name.replace(" ", "_").lower() + ".json")
            cmd = [*sdm, "sim-eval", "--checkpoint", run / "checkpoints" / "latest"]
            cmd += ["--task", task, *args, *sampler, "--out", out]
            stage(f"{label}sim-in-the-loop eval: {name}", out.is_file(), lambda c=cmd: _run(c))
            results[name] = json.loads(out.read_text())
        return results

    tasks: dict[str, dict[str, dict]] = {}
    runs: dict[str, Path] = {}
    notes: list[str] = []
    if "metaworld" in a.parts:
        bag, data = work / "demos_bag", work / "demos.zarr"
        teacher, student = work / "teacher", work / "sdm"
        stage(
            "record demos through the sim bridge",
            (bag / "metadata.yaml").is_file(),
            lambda: record(a.task, a.demos, bag, work / "logs"),
        )
        bag2zarr = [*sdm, "bag2zarr", bag, "--out", data, "--config"]
        bag2zarr += [REPO / "config" / "bag2zarr" / "metaworld_sim.yaml"]
        bag2zarr += ["--set", f"point_cloud.num_points={a.num_points}"]
        stage(
            "bag2zarr",
            (data / ".zgroup").exists() or (data / "zarr.json").exists(),
            lambda: _run(bag2zarr),
        )
        train = [*sdm, "train", "--dataset", data, "--out", teacher, "model.preset=cpu_small"]
        train += [f"train.max_steps={a.teacher_steps}", "train.batch_size=32", "train.lr=3e-4"]
        train += ["train.warmup_steps=100", "train.val_every=200", "train.checkpoint_every=200"]
        stage("train teacher", _trained(teacher, a.teacher_steps), lambda: _run(train + THREADS))
        distill = [*sdm, "distill", "--teacher", teacher / "checkpoints" / "latest"]
        distill += ["--dataset", data, "--out", student, f"train.max_steps={a.distill_steps}"]
        distill += ["train.batch_size=32", "train.warmup_steps=20", "train.val_every=100"]
        distill += ["train.checkpoint_every=100"]
        stage("distill SDM", _trained(student, a.distill_steps), lambda: _run(distill + THREADS))
        args = ["--episodes", str(a.eval_episodes), "--seed", "0"]
        tasks[a.task] = evaluate("", a.task, teacher, student, work / "eval", args)
        runs.update({"teacher": teacher, "sdm": student})
        notes.append(
            f"{a.task}: {a.demos} scripted-expert episodes recorded through ROS 2; "
            f"{a.num_points}-point clouds; teacher `cpu_small` {a.teacher_steps} steps, SDM "
            f"{a.distill_steps} steps; {a.eval_episodes} sim-in-the-loop episodes per row "
            "(seed 0)."
        )
    if "obstacle" in a.parts:
        root = work / "obstacle"
        data, teacher, student = root / "demos.zarr", root / "teacher", root / "sdm"
        teacher_set, distill_set = obstacle_settings()
        demos = [*sdm, "demos", "--task", OBSTACLE, "--episodes", str(a.obstacle_demos)]
        demos += ["--seed", "0", "--out", data, "--no-progress"]
        stage(
            f"{OBSTACLE}: scripted demos",
            (data / ".zgroup").exists() or (data / "zarr.json").exists(),
            lambda: _run(demos),
        )
        train = [*sdm, "train", "--dataset", data, "--out", teacher, *teacher_set]
        train += [f"train.max_steps={a.obstacle_teacher_steps}", "train.seed=0"]
        stage(
            f"{OBSTACLE}: train teacher",
            _trained(teacher, a.obstacle_teacher_steps),
            lambda: _run([*train, f"train.threads={OBSTACLE_THREADS}"]),
        )
        distill = [*sdm, "distill", "--teacher", teacher / "checkpoints" / "latest"]
        distill += ["--dataset", data, "--out", student, *distill_set]
        distill += [f"train.max_steps={a.obstacle_distill_steps}", "train.seed=0"]
        stage(
            f"{OBSTACLE}: distill SDM ({OBSTACLE_SDM})",
            _trained(student, a.obstacle_distill_steps),
            lambda: _run([*distill, f"train.threads={OBSTACLE_THREADS}"]),
        )
        args = ["--threads", str(OBSTACLE_THREADS), "--episodes", str(a.obstacle_episodes)]
        args += ["--seeds", *(str(s) for s in a.obstacle_seeds)]
        tasks[OBSTACLE] = evaluate(
            f"{OBSTACLE}: ", OBSTACLE, teacher, student, root / "eval", args
        )
        runs.update({f"{OBSTACLE} teacher": teacher, f"{OBSTACLE} sdm": student})
        episodes = a.obstacle_episodes * len(a.obstacle_seeds)
        notes.append(
            f"{OBSTACLE}: {a.obstacle_demos} scripted demos (`sdm demos`, seed 0); state-only "
            f"MLP teacher {a.obstacle_teacher_steps} steps and SDM `{OBSTACLE_SDM}` "
            f"{a.obstacle_distill_steps} steps with the settings of "
            f"{OBSTACLE_PROTOCOL.relative_to(REPO)} (one thread); {episodes} sim-in-the-loop "
            "episodes per row "
            f"(seeds {' '.join(map(str, a.obstacle_seeds))} x {a.obstacle_episodes}), the same "
            "episodes for every row. One training run: the intervals cover evaluation noise "
            "only (the study in BENCHMARKS.md bootstraps over five training seeds too)."
        )
    from sdm_policy_core.report.main_job import (
        difference_lines,
        differences,
        terminal_table,
        write_report,
    )

    stages["total (this invocation)"] = time.monotonic() - t_all
    report = write_report(work, "SDM Policy main job", tasks, runs, stages, notes)
    _say(f"report: {report}\n")
    for task, rows in tasks.items():
        print(f"\n{task}\n" + terminal_table(rows), flush=True)
        print("\n".join(difference_lines(differences(rows))), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    sys.exit(main())
