# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""obstacle-2d over ROS 2: the main job's mechanism-task part with real processes.

obstacle-2d over ROS 2: the main job's mechanism-task part with real processes (sim bridge
serving the registry's obstacle-2d, policy node on a state-only checkpoint with the obstacle_2d
robot profile, evaluation driver), and the report stating the paired differences.

Tiny settings (20 demos, a 30-step teacher, a 5-step student, 2 x 2 episodes): the policies
need not succeed, only act through the node. As in test_sim_eval_driver.py the lockstep loop
must give the in-process `sdm eval`'s episodes exactly (same reset seeds, sampler noise,
observations).
"""

from __future__ import annotations

import json

import pytest

from sdm_policy_core.cli import main as sdm_main
from sdm_policy_core.eval import evaluate
from sdm_policy_core.report.main_job import differences
from sdm_policy_ros import main_job

ROWS = {
    "teacher DDIM-10": ("teacher", "ddim", 10),
    "teacher naive one-step": ("teacher", "one-step", 1),
    "SDM one-step": ("sdm", "one-step", 1),
}


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 2 min on 2 idle cores: 3 launches, 2 trainings
def test_main_job_evaluates_obstacle_2d_through_the_policy_node_and_states_the_differences(
    tmp_path, capsys
):
    work = tmp_path / "main_job"
    args = ["--parts", "obstacle", "--work", str(work), "--obstacle-demos", "20"]
    args += ["--obstacle-teacher-steps", "30", "--obstacle-distill-steps", "5"]
    args += ["--obstacle-episodes", "2", "--obstacle-seeds", "0", "1"]
    assert main_job.main(args) == 0
    printed = capsys.readouterr().out
    rows = {}
    for name, (run, sampler, steps) in ROWS.items():
        path = work / "obstacle" / "eval" / (name.replace(" ", "_").lower() + ".json")
        r = rows[name] = json.loads(path.read_text())
        assert (r["transport"], r["task"], r["sim"], r["max_episode_steps"]) == (
            "ros2",
            "obstacle-2d",
            "obstacle-2d",
            60,
        )
        assert (r["sampler"], r["steps"], r["kind"], r["episodes_total"]) == (
            sampler,
            steps,
            run,
            4,
        )
        assert r["held_steps"] == 0 and r["chunk_latency_ms"]["n"] > 0  # the node acted
        assert "robot 'obstacle_2d'" in path.with_suffix(".log").read_text()
    keys = [{(e["seed"], e["reset_seed"]) for e in r["episode_results"]} for r in rows.values()]
    assert keys[0] == keys[1] == keys[2]  # the same episodes for every row

    teacher = work / "obstacle" / "teacher" / "checkpoints" / "latest"
    local = evaluate(
        teacher,
        "obstacle-2d",
        2,
        seeds=[0, 1],
        sampler="ddim",
        steps=10,
        threads=1,  # as the main job's obstacle part runs the policy node
        progress=False,
    )
    for r, e in zip(
        rows["teacher DDIM-10"]["episode_results"], local.result["episode_results"], strict=True
    ):
        assert r["reset_seed"] == e["reset_seed"]
        assert (r["success"], r["length"], r["policy_calls"]) == (
            e["success"],
            e["length"],
            e["policy_calls"],
        )

    report = (work / "report.md").read_text()
    assert "## obstacle-2d" in report and "| SDM one-step |" in report
    diffs = differences(rows)
    assert [(d["b"], d["a"]) for d in diffs] == [
        ("SDM one-step", "teacher naive one-step"),
        ("SDM one-step", "teacher DDIM-10"),
    ]
    for d in diffs:
        lo, hi = d["ci"]
        line = (
            f"- {d['b']} − {d['a']}: {100 * d['difference']:+.1f} points, 95 % interval "
            f"[{100 * lo:+.1f}, {100 * hi:+.1f}] over 4 paired episodes"
        )
        assert line in report and line in printed


def test_sim_eval_refuses_a_task_it_cannot_serve_or_the_checkpoint_cannot_act_in(tmp_path, capsys):
    obs = {"point_cloud_shape": [128, 3], "image_shape": None, "state_dim": 9, "action_dim": 4}
    (tmp_path / "config.json").write_text(json.dumps({"obs": obs}))  # a MetaWorld DP3 policy
    for task, says in (
        ("obstacle-3d", "Did you mean obstacle-2d, obstacle-2d-cue?"),
        ("pusht", "not served by the sim bridge; it serves MetaWorld v3 tasks and obstacle-2d"),
        ("obstacle-2d", "cannot act in obstacle-2d: "),  # refused before any process starts
    ):
        args = ["sim-eval", "--checkpoint", str(tmp_path), "--task", task, "--episodes", "1"]
        assert sdm_main([*args, "--out", str(tmp_path / "r.json")]) == 2
        assert says in capsys.readouterr().err
