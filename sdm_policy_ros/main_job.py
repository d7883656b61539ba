"""The main job (README command 1): the whole loop on the embedded simulator, over ROS 2.

    ./scripts/main_job.sh [--task button-press-v3] [--work runs/main_job] [--force]

1. record   scripted-expert demos driven through the ROS 2 sim bridge (expert_teleop_node),
            recorded live into a rosbag2 bag (mcap) by bag_recorder
2. bag2zarr the bag -> a DP3 zarr dataset (config/bag2zarr/metaworld_sim.yaml)
3. train    a DP3 teacher (`sdm train`)
4. distill  the SDM one-step student (`sdm distill`)
5. evaluate sim-in-the-loop through the policy node (`sdm sim-eval`): the teacher with DDIM,
            the teacher's naive one-step call, and the SDM student
6. report   report.md with plots (success, latency distribution, control rate, training
            curves) and a closing table on the terminal

Finished stages are reused (a stage's output exists) unless --force; every command is printed.
The processes this starts keep DDS on this machine (scripts/env.sh). No rclpy import here: the
job only starts processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _say(text: str) -> None:
    print(f"\n[main-job] {text}", flush=True)


def _run(cmd: list[str]) -> None:
    print("$ " + " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.run([str(c) for c in cmd]).returncode
    if code != 0:
        raise SystemExit(f"[main-job] failed (exit {code}): {' '.join(str(c) for c in cmd)}")


def record(task: str, episodes: int, bag: Path, logs: Path) -> None:
    """Expert demos through the sim bridge into a rosbag2 bag: sim_record.launch.py's processes
    (bridge, expert teleoperator, recorder, driver with `sdm demos`' seeds and keep rule)."""
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--task", default="button-press-v3")
    p.add_argument("--work", type=Path, default=REPO / "runs" / "main_job")
    p.add_argument("--demos", type=int, default=10)
    p.add_argument("--num-points", type=int, default=256)
    p.add_argument("--teacher-steps", type=int, default=2000)
    p.add_argument("--distill-steps", type=int, default=1000)
    p.add_argument("--eval-episodes", type=int, default=10)
    p.add_argument("--force", action="store_true", help="redo every stage")
    a = p.parse_args(argv)
    work = a.work.resolve()
    if a.force and work.exists():
        import shutil

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

    bag, data = work / "demos_bag", work / "demos.zarr"
    teacher, student = work / "teacher", work / "sdm"
    stage(
        "record demos through the sim bridge",
        (bag / "metadata.yaml").is_file(),
        lambda: record(a.task, a.demos, bag, work / "logs"),
    )
    stage(
        "bag2zarr",
        (data / ".zgroup").exists() or (data / "zarr.json").exists(),
        lambda: _run(
            [
                *sdm,
                "bag2zarr",
                bag,
                "--out",
                data,
                "--config",
                REPO / "config" / "bag2zarr" / "metaworld_sim.yaml",
                "--set",
                f"point_cloud.num_points={a.num_points}",
            ]
        ),
    )
    stage(
        "train teacher",
        (teacher / "checkpoints" / "latest").is_dir()
        and json.loads((teacher / "checkpoints/latest/config.json").read_text())["provenance"][
            "step"
        ]
        >= a.teacher_steps,
        lambda: _run(
            [
                *sdm,
                "train",
                "--dataset",
                data,
                "--out",
                teacher,
                "model.preset=cpu_small",
                f"train.max_steps={a.teacher_steps}",
                "train.batch_size=32",
                "train.lr=3e-4",
                "train.warmup_steps=100",
                "train.val_every=200",
                "train.checkpoint_every=200",
                "train.threads=2",
            ]
        ),
    )
    stage(
        "distill SDM",
        (student / "checkpoints" / "latest").is_dir()
        and json.loads((student / "checkpoints/latest/config.json").read_text())["provenance"][
            "step"
        ]
        >= a.distill_steps,
        lambda: _run(
            [
                *sdm,
                "distill",
                "--teacher",
                teacher / "checkpoints" / "latest",
                "--dataset",
                data,
                "--out",
                student,
                f"train.max_steps={a.distill_steps}",
                "train.batch_size=32",
                "train.warmup_steps=20",
                "train.val_every=100",
                "train.checkpoint_every=100",
                "train.threads=2",
            ]
        ),
    )
    rows = {
        "teacher DDIM-10": (teacher, "ddim", 10),
        "teacher naive one-step": (teacher, "one-step", 1),
        "SDM one-step": (student, "one-step", 1),
    }
    results: dict[str, dict] = {}
    for name, (run, sampler, steps) in rows.items():
        out = work / "eval" / (name.replace(" ", "_").lower() + ".json")
        stage(
            f"sim-in-the-loop eval: {name}",
            out.is_file(),
            lambda run=run, sampler=sampler, steps=steps, out=out: _run(
                [
                    *sdm,
                    "sim-eval",
                    "--checkpoint",
                    run / "checkpoints" / "latest",
                    "--task",
                    a.task,
                    "--episodes",
                    str(a.eval_episodes),
                    "--seed",
                    "0",
                    "--sampler",
                    sampler,
                    "--steps",
                    str(steps),
                    "--out",
                    out,
                ]
            ),
        )
        results[name] = json.loads(out.read_text())
    from sdm_policy_core.report.main_job import terminal_table, write_report

    stages["total (this invocation)"] = time.monotonic() - t_all
    report = write_report(
        work,
        f"SDM Policy main job: {a.task}",
        results,
        {"teacher": teacher, "sdm": student},
        stages,
        [
            f"Demos: {a.demos} scripted-expert episodes recorded through ROS 2; "
            f"{a.num_points}-point clouds; teacher `cpu_small` "
            f"{a.teacher_steps} steps, SDM {a.distill_steps} steps; "
            f"{a.eval_episodes} sim-in-the-loop episodes per row (seed 0)."
        ],
    )
    _say(f"report: {report}\n")
    print(terminal_table(results), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_LOCALHOST_ONLY", "1")
    sys.exit(main())
