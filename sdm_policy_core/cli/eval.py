# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""`sdm eval`: closed-loop success rate and policy timing of a checkpoint on a task.

    sdm eval --checkpoint CKPT_DIR --task button-press-v3 --episodes 20 --out RESULT.json
             [--sampler one-step|ddim|ddpm] [--steps K] [--seed S | --seeds S1 S2 S3]
             [--spacing leading|trailing] [--naive-timestep T]
             [--backend torch|onnxruntime [--ort-optimization LEVEL]] [--noise torch|numpy]
             [--video PATH.mp4] [--threads T] [--max-episode-steps N]
             [--record VISITED.zarr [--overwrite]] [--temporal-ensembling [--ensembling-decay D]]

TASK is a MetaWorld v3 task or a registered one (sdm_policy_core/eval/envs.py). Runs N episodes per
seed (default seeds 0 1 2: the default protocol is the final checkpoint, 20 episodes x 3 seeds)
with fixed placements, receding horizon (every predicted action of a chunk is executed, then the
policy re-plans; `--temporal-ensembling`: a plan every step, the chunks' overlapping actions
averaged, as the policy node's option). Writes RESULT.json (success_rate 0-1, episodes, seeds,
sampler, steps, latency_ms {p50, p99}, control_hz, per-seed success and episode length, ...),
RESULT.png (success per seed, latency histogram) and, with --video, the first episode. Teachers
default to their configured sampler (DDIM); `--sampler one-step` on a teacher is the naive single
call at the largest timestep (`--naive-timestep T` elsewhere); `--spacing trailing` places
DDIM/DDPM steps from the noisiest timestep down. SDM checkpoints sample one-step only. `--record`
also writes every step of every episode (failed ones too) as a dataset in the layout of `sdm
demos`: the observations this policy visits in closed loop, which `sdm distill --extra-dataset` can
distil on (choose seeds that are not your evaluation seeds). Exit codes: 0 done, 2 bad input
(unknown task, checkpoint, sampler, observation mismatch).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdm_policy_core.config import SAMPLERS, TIMESTEP_SPACINGS
from sdm_policy_core.keys import NOISE_SOURCES, RUNTIME_BACKENDS
from sdm_policy_core.onnx_runtime import OPTIMIZATION_LEVELS


def add_noise_argument(p: argparse.ArgumentParser) -> None:
    """Add `--noise`, the torch backend's initial noise (`sdm eval` and `sdm sim-eval`)."""
    p.add_argument(
        "--noise",
        choices=NOISE_SOURCES,
        default="torch",
        help="torch backend's initial noise: torch's generator (default) or numpy's, as "
        "onnxruntime draws it (then both backends run the same episodes; one-step and ddim)",
    )


def add_evaluation_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    """Add the arguments `sdm eval` and `sdm sim-eval` share.

    Checkpoint, task, episodes, output, sampler and the evaluation seeds.
    """
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    p.add_argument(
        "--task",
        required=True,
        help="MetaWorld v3 task (e.g. button-press-v3) or a registered task",
    )
    p.add_argument("--episodes", required=True, type=int, help="episodes per seed")
    p.add_argument("--out", required=True, type=Path, help=out_help)
    p.add_argument("--sampler", choices=SAMPLERS, help="default: the checkpoint's own")
    p.add_argument("--steps", type=int, help="denoising steps for ddim/ddpm")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="a single evaluation seed")
    seeds.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds (default 0 1 2)")


def evaluation_seeds(args: argparse.Namespace) -> list[int]:
    """--seeds, else [--seed], else the default protocol's seeds."""
    from sdm_policy_core.eval.rollout import DEFAULT_SEEDS

    if args.seeds:
        return list(args.seeds)
    return [args.seed] if args.seed is not None else list(DEFAULT_SEEDS)


def per_seed_text(result: dict) -> str:
    """'0:0.95 1:1.00 2:0.90': success rate per evaluation seed."""
    return " ".join(f"{p['seed']}:{p['success_rate']:.2f}" for p in result["per_seed"])


def _eval(args: argparse.Namespace) -> int:
    from sdm_policy_core.checkpoint import CheckpointError
    from sdm_policy_core.data import DatasetError
    from sdm_policy_core.eval.envs import resolve_eval_task
    from sdm_policy_core.eval.report import plot_result, write_json, write_video
    from sdm_policy_core.eval.rollout import evaluate
    from sdm_policy_core.policies.observation import ObservationError
    from sdm_policy_core.sim import SimulatorError, UnknownTaskError

    try:
        task, _ = resolve_eval_task(args.task)
    except UnknownTaskError as err:
        print(f"sdm eval: error: {err}", file=sys.stderr)
        return 2
    seeds = evaluation_seeds(args)
    if args.record is not None and args.record.exists() and not args.overwrite:
        print(
            f"sdm eval: error: {args.record} exists; pass --overwrite to replace it",
            file=sys.stderr,
        )
        return 2
    try:
        run = evaluate(
            args.checkpoint,
            task,
            args.episodes,
            seeds=seeds,
            sampler=args.sampler,
            steps=args.steps,
            threads=args.threads,
            max_episode_steps=args.max_episode_steps,
            video_episodes=1 if args.video else 0,
            progress=not args.no_progress,
            device=args.device,
            record=args.record is not None,
            spacing=args.spacing,
            naive_timestep=args.naive_timestep,
            ensembling_decay=args.ensembling_decay if args.temporal_ensembling else None,
            backend=args.backend,
            noise=args.noise,
            ort_optimization=args.ort_optimization,
        )
    except (CheckpointError, ObservationError, SimulatorError, ValueError) as err:
        print(f"sdm eval: error: {err}", file=sys.stderr)
        return 2
    result = run.result
    if run.visited is not None:
        try:
            run.visited.save(args.record, overwrite=args.overwrite)
        except DatasetError as err:
            print(f"sdm eval: error: {err}", file=sys.stderr)
            return 2
        result["record"] = {"path": str(args.record), "steps": run.visited.n_steps}
    if args.video:
        result["video"] = str(write_video(run.frames, args.video))
    if not args.no_plot:
        result["plot"] = str(plot_result(result, run.latencies_ms, args.out.with_suffix(".png")))
    write_json(result, args.out)
    lat = result["latency_ms"]
    per_seed = per_seed_text(result)
    # the env's per-episode metrics, averaged (e.g. PushT: "max_coverage 0.812 score 0.840")
    metrics = "".join(f", {k} {v:.3f}" for k, v in result.get("metrics", {}).items())
    print(
        f"{task} {result['sampler']}({result['steps']}): success {result['success_rate']:.3f} "
        f"[{per_seed}]{metrics}, mean length {result['mean_episode_length']:.0f}, latency p50 "
        f"{lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms, {result['policy_ms_per_action']:.2f} ms "
        f"policy/action ({result['control_hz']:.0f} Hz), seam jump mean "
        f"{result['seam_jump']['mean']:.3f} max {result['seam_jump']['max']:.3f}, "
        f"{result['wall_time_s']:.0f} s -> {args.out}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="closed-loop evaluation in the embedded simulators (MetaWorld and registered tasks)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_evaluation_arguments(p, "result JSON (plot: same name .png)")
    p.add_argument("--video", type=Path, help="video of the first episode (.mp4 or .gif)")
    p.add_argument(
        "--spacing",
        choices=TIMESTEP_SPACINGS,
        help="where a teacher's ddim/ddpm steps lie: leading (DDIM-2 = [50, 0]) or trailing "
        "([99, 49]); default: the checkpoint's diffusion.timestep_spacing",
    )
    p.add_argument(
        "--naive-timestep",
        type=int,
        metavar="T",
        help="timestep of a teacher's one-step call (default T-1; for an epsilon-prediction "
        "teacher, its student's distill.generator_timestep is the fair baseline)",
    )
    p.add_argument(
        "--threads", type=int, help="CPU threads (torch's, or onnxruntime's intra-op threads)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument(
        "--backend",
        choices=RUNTIME_BACKENDS,
        default="torch",
        help="torch (default) or onnxruntime: the .onnx exported into the checkpoint directory "
        "(sdm export), or a .onnx path as --checkpoint",
    )
    p.add_argument(
        "--ort-optimization",
        choices=OPTIMIZATION_LEVELS,
        help="onnxruntime backend: graph optimisation level (default all)",
    )
    add_noise_argument(p)
    p.add_argument(
        "--max-episode-steps",
        type=int,
        help="episode length (default: the task's own; MetaWorld 200, as DP3)",
    )
    p.add_argument(
        "--record",
        type=Path,
        help="also write every step of every episode as a zarr dataset (sdm demos layout)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing --record")
    p.add_argument(
        "--temporal-ensembling",
        action="store_true",
        help="plan every step and average the overlapping chunks' actions (ACT-style, the policy "
        "node's temporal_ensembling) instead of executing n_action_steps per plan",
    )
    p.add_argument(
        "--ensembling-decay",
        type=float,
        default=0.1,
        help="weight exp(-decay * age in steps) of older chunks (default 0.1, as the node)",
    )
    p.add_argument("--no-plot", action="store_true", help="no PNG plot")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_eval)
