# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm sim-eval`: closed-loop evaluation with the simulator in the loop over ROS 2.

    sdm sim-eval --checkpoint CKPT_DIR --task button-press-v3 --episodes 20 --out RESULT.json
                 [--sampler one-step|ddim|ddpm] [--steps K] [--seed S | --seeds S1 S2 S3]
                 [--max-episode-steps N] [--control-rate-hz 10] [--step-mode lockstep]
                 [--command-timeout-s 5] [--threads 2] [--timeout-s T] [--domain-id D]
                 [--backend torch|onnxruntime] [--noise torch|numpy]

Starts real ROS 2 processes (`python -m sdm_policy_ros.launch_runner sim_eval sim:=mujoco`):
the sim bridge (MetaWorld v3 tasks on MuJoCo, or obstacle-2d / obstacle-2d-cue, state-only),
the policy node (robot metaworld_sim, or obstacle_2d / obstacle_2d_cue; sim time) and the
evaluation driver, which runs `sdm eval`'s protocol through the ROS interfaces a real robot
uses: the same reset seeds per episode, the sampler noise seeded per seed, every action of a
chunk executed.
With lockstep stepping (default) the result is comparable with `sdm eval` of the same
checkpoint and seeds. `--backend onnxruntime` runs the policy node on the checkpoint's ONNX
export (no torch in the node): the one .onnx in CKPT_DIR (`sdm export`), or, when there is
none, CKPT_DIR/policy.onnx exported first (verified against PyTorch, as `sdm export` does; a
teacher as DDIM K of its sampler). An export of another sampler or step count, ddpm, or a
teacher's naive one-step call is refused. `--noise numpy` draws the torch backend's initial
noise from onnxruntime's numpy stream, so both backends run the same episodes.
Writes RESULT.json with `sdm eval`'s keys (success_rate, episodes, seeds, sampler, steps,
latency_ms {p50, p99}, control_hz, per_seed, ...) plus the ROS loop's achieved_control_hz,
chunk_latency_ms, command_latency_ms and held_steps, the node's backend and noise
(onnxruntime: onnx_model, the file and its sha256); RESULT.png (success per seed, latency
histogram); RESULT.log (every process's output).
Needs rclpy and the built sdm_msgs (`source scripts/env.sh`); the core never imports them.
Exit codes: 0 done, 1 the ROS processes failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

from sdm_policy_core.cli.eval import (
    add_evaluation_arguments,
    add_noise_argument,
    evaluation_seeds,
    per_seed_text,
)
from sdm_policy_core.keys import RUNTIME_BACKENDS


def _sim_eval(args: argparse.Namespace) -> int:
    from sdm_policy_core.config import ObservationSpec, from_dict
    from sdm_policy_core.eval.envs import resolve_eval_task
    from sdm_policy_core.eval.report import plot_result, write_json
    from sdm_policy_core.eval.sim_in_loop import SimEvalError, run_sim_eval
    from sdm_policy_core.sim.episode import served_task
    from sdm_policy_core.sim.metaworld_env import SimulatorError

    def fail(text: str, code: int = 2) -> int:
        print(f"sdm sim-eval: error: {text}", file=sys.stderr)
        return code

    try:
        task = served_task(args.task)[0]
    except ValueError as err:  # UnknownTaskError too: both list the tasks
        return fail(str(err))
    if not (args.checkpoint / "config.json").is_file():
        return fail(f"{args.checkpoint} is not a checkpoint directory (no config.json)")
    try:  # before any process starts: can this policy act in the task?
        obs = json.loads((args.checkpoint / "config.json").read_text())["obs"]
        spec = from_dict(ObservationSpec, obs, "obs")
        resolve_eval_task(task)[1].check(task, spec, str(args.checkpoint))
    except (KeyError, TypeError, ValueError, SimulatorError) as err:
        return fail(f"{args.checkpoint} cannot act in {task}: {err}")
    if args.episodes < 1:
        return fail(f"--episodes must be >= 1, got {args.episodes}")
    seeds = evaluation_seeds(args)
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        return fail(f"seeds must be distinct integers >= 0, got {seeds}")
    try:
        result = run_sim_eval(
            args.checkpoint,
            task,
            args.episodes,
            seeds,
            args.out,
            sampler=args.sampler,
            steps=args.steps,
            max_episode_steps=args.max_episode_steps,
            control_rate_hz=args.control_rate_hz,
            step_mode=args.step_mode,
            command_timeout_s=args.command_timeout_s,
            threads=args.threads,
            timeout_s=args.timeout_s,
            domain_id=args.domain_id,
            progress=not args.no_progress,
            backend=args.backend,
            noise=args.noise,
        )
    except SimEvalError as err:
        return fail(str(err), 1)
    except ValueError as err:  # backend, noise or the ONNX export, before any process started
        return fail(str(err))
    if not args.no_plot:
        latencies = result.get("policy_latencies_ms", [])
        result["plot"] = str(plot_result(result, latencies, args.out.with_suffix(".png")))
    write_json(result, args.out)
    lat = result["latency_ms"]
    per_seed = per_seed_text(result)
    print(
        f"{task} {result['sampler']}({result['steps']}) on {result['backend']} over ROS 2: "
        f"success "
        f"{result['success_rate']:.3f} [{per_seed}], mean length "
        f"{result['mean_episode_length']:.0f}, latency p50 {lat['p50']:.1f} ms p99 "
        f"{lat['p99']:.1f} ms, achieved {result['achieved_control_hz']:.1f} Hz "
        f"({result['held_steps']} held steps), {result['wall_time_s']:.0f} s -> {args.out}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim-eval",
        help="closed-loop evaluation with the simulator in the loop over ROS 2",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_evaluation_arguments(p, "result JSON (+ .png, .log beside)")
    p.add_argument(
        "--max-episode-steps",
        type=int,
        default=0,
        help="episode length; 0 (default): the task's own (MetaWorld 200, obstacle-2d 60)",
    )
    p.add_argument("--control-rate-hz", type=float, default=10.0, help="[Hz] control rate")
    p.add_argument(
        "--step-mode",
        choices=("lockstep", "realtime"),
        default="lockstep",
        help="lockstep: one sim step per command (reproduces sdm eval); realtime: wall clock",
    )
    p.add_argument(
        "--command-timeout-s",
        type=float,
        default=5.0,
        help="[s] lockstep: the robot holds when no command came for this long",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads of the policy's inference (torch's, or onnxruntime's intra-op threads)",
    )
    p.add_argument(
        "--backend",
        choices=RUNTIME_BACKENDS,
        default="torch",
        help="policy node runtime: torch (default) or onnxruntime (the .onnx exported into the "
        "checkpoint directory, made there with sdm export's verified exporter when missing)",
    )
    add_noise_argument(p)
    p.add_argument("--timeout-s", type=float, help="[s] stop everything after this long")
    p.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID of the run (default: inherited)")
    p.add_argument("--no-plot", action="store_true", help="no PNG plot")
    p.add_argument("--no-progress", action="store_true", help="no per-episode lines")
    p.set_defaults(func=_sim_eval)
