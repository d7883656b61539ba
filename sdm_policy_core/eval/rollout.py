# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Closed-loop evaluation of a checkpoint on a task (what `sdm eval` runs).

    result = evaluate("runs/sdm/checkpoints/latest", "button-press-v3", episodes=20,
                      seeds=(0, 1, 2))
    result["success_rate"], result["latency_ms"]["p50"], result["control_hz"]

The environment comes from the task name (`eval/envs.py`: MetaWorld v3 tasks and the registered
ones). Protocol: for every seed s, `episodes` episodes with reset seeds `episode_seed(s, i,
EVAL_STREAM)` (the same placements for every checkpoint and sampler, and independent of the
demonstrations' placements) and the sampler's noise generator seeded with s. Receding horizon, as
Diffusion Policy / DP3 run: the policy sees the last `n_obs_steps` consecutive observations,
predicts `horizon` actions, **all** `n_action_steps` of the chunk are executed, then it re-plans;
or, with `ensembling_decay` set, ACT-style temporal ensembling (the PolicyController's option): a
chunk planned every step, the executed action the exp(-decay * age)-weighted mean of every live
chunk's action for that step. An episode succeeds when the env reports success at any step; it
stops there (the outcome is the same as running on, and it saves time), when the env says it is
done (a terminal failure) or after `max_episode_steps` (MetaWorld: 200).

Timing: `latency_ms` is the wall-clock time of each policy call (observation history in,
action chunk out: normalisation, encoder, sampler); `policy_ms_per_action` = total policy time /
executed actions; `control_hz` = 1000 / policy_ms_per_action, the control rate the policy alone
sustains when each chunk is executed open-loop; `loop_hz` = environment steps per second of the
whole loop including simulation and rendering on this machine.

Seams: `seam_jump` summarises max |a_first(new chunk) - a_last(previous chunk)| over action
dimensions (robot units) at each re-plan, `in_chunk_step` the same difference between
consecutive actions of one chunk (receding only: with ensembling every step is a seam).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdm_policy_core.control import TemporalEnsembler, action_jump
from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.eval.envs import (  # check_spec: re-exported, MetaWorld's spec check
    EvalEnv,
    MetaWorldEvalEnv,
    check_spec,  # noqa: F401
    resolve_eval_task,
)
from sdm_policy_core.keys import (
    AGENT_POS,
    ARRAY_ACTION,
    DATASET_ARRAYS,
    FULL_STATE,
    IMAGE,
    OBSERVATION_KEYS,
    POINT_CLOUD,
    RUNTIME_BACKENDS,
)
from sdm_policy_core.runtime import PolicyRuntime
from sdm_policy_core.sim.demos import EVAL_STREAM, FLOAT_ARRAYS, episode_seed
from sdm_policy_core.sim.metaworld_env import MetaWorldEnv

DEFAULT_SEEDS = (0, 1, 2)  # default protocol: final checkpoint, 20 episodes x 3 seeds


@dataclass
class EpisodeResult:
    """One evaluation episode."""

    seed: int  # evaluation seed (sampler noise, placement stream)
    index: int  # episode index within the seed
    reset_seed: int  # the env's placement seed
    success: bool
    length: int  # environment steps taken (to the first success, or the limit)
    reward: float  # sum of the env's rewards
    policy_calls: int
    latencies_s: list[float] = field(default_factory=list)  # per policy call [s]
    metrics: dict[str, Any] = field(default_factory=dict)  # the env's info["metrics"], last step
    seam_jumps: list[float] = field(default_factory=list)  # at each re-plan (see module doc)
    in_chunk_steps: list[float] = field(default_factory=list)  # between actions of one chunk


@dataclass
class Evaluation:
    """What `evaluate` returns."""

    result: dict[str, Any]  # the JSON result (`sdm eval` contract keys and more)
    episodes: list[EpisodeResult]
    frames: list[np.ndarray]  # (H, W, 3) uint8 RGB frames of the recorded episodes
    # every step the policy acted on, as a dataset (evaluate(record=True)), else None
    visited: ReplayBuffer | None = None

    @property
    def latencies_ms(self) -> list[float]:
        """Per policy call latency [ms], in call order."""
        return [1000.0 * t for e in self.episodes for t in e.latencies_s]


def policy_observation(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return the keys a policy consumes from an env observation."""
    return {k: obs[k] for k in OBSERVATION_KEYS if k in obs}


def run_episode(
    env: EvalEnv | MetaWorldEnv,
    runtime: PolicyRuntime,
    reset_seed: int,
    seed: int = 0,
    index: int = 0,
    frames: list[np.ndarray] | None = None,
    visited: dict[str, list[np.ndarray]] | None = None,
    ensembling_decay: float | None = None,
) -> EpisodeResult:
    """Run one closed-loop episode (receding horizon or, with `ensembling_decay`, ensembling).

    Receding horizon or, with `ensembling_decay`, temporal ensembling: see the module
    docstring.

    env: an EvalEnv (a bare MetaWorldEnv is wrapped in MetaWorldEvalEnv).
    frames: when a list is given, an RGB frame (`env.render()`) is appended per step (video).
    Only the observations that enter the policy's history are rendered: with n_action_steps 8
    and n_obs_steps 2, 2 of every 8 steps render a cloud.
    visited: when a dict of lists is given, every step's observation and the action taken from
    it are appended under the dataset keys of `sdm demos` (state, action, and point_cloud, img,
    full_state where the env gives them); every step is then rendered. The policy sees the
    same history either way, so the episode's outcome does not change.
    """
    if isinstance(env, MetaWorldEnv):
        env = MetaWorldEvalEnv(env)
    obs = env.reset(seed=reset_seed)
    runtime.reset()
    runtime.push(policy_observation(obs))
    if frames is not None:
        frames.append(env.render())
    n_obs = runtime.n_obs_steps
    result = EpisodeResult(seed, index, reset_seed, False, 0, 0.0, 0)
    if ensembling_decay is not None:
        return _run_ensembled(env, runtime, obs, result, ensembling_decay, frames, visited)
    done = False
    last_action: np.ndarray | None = None
    while not done:
        chunk = runtime.infer()
        result.policy_calls += 1
        result.latencies_s.append(chunk.inference_time)
        n = len(chunk.actions)
        for j, action in enumerate(chunk.actions):
            if last_action is not None:
                jumps = result.seam_jumps if j == 0 else result.in_chunk_steps
                jumps.append(action_jump(action, last_action))
            last_action = action
            in_history = j >= n - n_obs  # the last n_obs observations feed the next call
            if visited is not None:
                _append_step(visited, obs, action)
            obs, done = _env_step(env, action, in_history or visited is not None, result, frames)
            if done:
                break
            if in_history:
                runtime.push(policy_observation(obs))
    return result


def _env_step(
    env: EvalEnv,
    action: np.ndarray,
    observe: bool,
    result: EpisodeResult,
    frames: list[np.ndarray] | None,
) -> tuple[dict, bool]:
    """Take one env step with the episode's bookkeeping; return (observation, episode over).

    Bookkeeping: length, reward, the env's metrics, a frame, success ends it. Returns the
    observation and whether the episode is over.
    """
    obs, reward, done, info = env.step(action, observe=observe)
    result.length += 1
    result.reward += float(reward)
    if "metrics" in info:
        result.metrics = dict(info["metrics"])
    if frames is not None:
        frames.append(env.render())
    if info["success"]:
        result.success = True
        done = True
    return obs, done


def _run_ensembled(
    env: EvalEnv,
    runtime: PolicyRuntime,
    obs: dict,
    result: EpisodeResult,
    decay: float,
    frames: list[np.ndarray] | None,
    visited: dict[str, list[np.ndarray]] | None,
) -> EpisodeResult:
    """run_episode with temporal ensembling: a policy call and an observation every step."""
    ensembler = TemporalEnsembler(decay)
    last_action: np.ndarray | None = None
    done = False
    while not done:
        chunk = runtime.infer()
        result.policy_calls += 1
        result.latencies_s.append(chunk.inference_time)
        ensembler.add(chunk.actions)
        action = ensembler.next().astype(np.float32)
        if last_action is not None:
            result.seam_jumps.append(action_jump(action, last_action))
        last_action = action
        if visited is not None:
            _append_step(visited, obs, action)
        obs, done = _env_step(env, action, True, result, frames)
        if not done:
            runtime.push(policy_observation(obs))
    return result


def _spread(values: Sequence[float]) -> dict[str, float]:
    """mean, p99, max and count of non-negative values (0 when there are none)."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return {"mean": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
    return {
        "mean": float(a.mean()),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
        "n": int(a.size),
    }


# observation key -> dataset key of `sdm demos` datasets (their depth is not recorded here)
_DATASET_KEYS = {k: DATASET_ARRAYS[k] for k in (POINT_CLOUD, AGENT_POS, FULL_STATE, IMAGE)}


def _append_step(visited: dict[str, list[np.ndarray]], obs: dict, action: np.ndarray) -> None:
    """One step of a recorded rollout, under the dataset keys of `sdm demos`."""
    step = {_DATASET_KEYS[k]: v for k, v in obs.items() if k in _DATASET_KEYS}
    step[ARRAY_ACTION] = action
    for key, value in step.items():
        visited.setdefault(key, []).append(np.asarray(value))


def visited_episode(visited: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack the arrays of one recorded episode, with the dtypes of `sdm demos` datasets."""
    arrays = {k: np.stack(v) for k, v in visited.items()}
    for key in FLOAT_ARRAYS:
        if key in arrays:
            arrays[key] = arrays[key].astype(np.float32, copy=False)
    return arrays


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else 0.0


def summarize(
    episodes: Sequence[EpisodeResult], seeds: Sequence[int], episodes_per_seed: int
) -> dict[str, Any]:
    """Aggregate episodes into the `sdm eval` result keys (success, lengths, timing)."""
    latencies_ms = [1000.0 * t for e in episodes for t in e.latencies_s]
    actions = sum(e.length for e in episodes)
    policy_s = sum(sum(e.latencies_s) for e in episodes)
    per_seed = []
    for s in seeds:
        mine = [e for e in episodes if e.seed == s]
        per_seed.append(
            {
                "seed": int(s),
                "success_rate": float(np.mean([e.success for e in mine])) if mine else 0.0,
                "mean_episode_length": float(np.mean([e.length for e in mine])) if mine else 0.0,
                "episodes": len(mine),
            }
        )
    rates = [p["success_rate"] for p in per_seed]
    metric_names = sorted({k for e in episodes for k in e.metrics})
    metrics = {
        k: float(np.mean([float(e.metrics[k]) for e in episodes if k in e.metrics]))
        for k in metric_names
    }
    ms_per_action = 1000.0 * policy_s / actions if actions else 0.0
    return {
        "success_rate": float(np.mean([e.success for e in episodes])) if episodes else 0.0,
        "success_rate_std": float(np.std(rates)) if rates else 0.0,
        "episodes": int(episodes_per_seed),
        "episodes_total": len(episodes),
        "seeds": [int(s) for s in seeds],
        "per_seed": per_seed,
        "mean_episode_length": float(np.mean([e.length for e in episodes])) if episodes else 0.0,
        "latency_ms": {
            "p50": _percentile(latencies_ms, 50),
            "p99": _percentile(latencies_ms, 99),
            "mean": float(np.mean(latencies_ms)) if latencies_ms else 0.0,
            "n": len(latencies_ms),
        },
        "policy_ms_per_action": ms_per_action,
        "control_hz": 1000.0 / ms_per_action if ms_per_action else 0.0,
        "seam_jump": _spread([j for e in episodes for j in e.seam_jumps]),
        "in_chunk_step": _spread([j for e in episodes for j in e.in_chunk_steps]),
        **({"metrics": metrics} if metrics else {}),  # the env's per-episode metrics, averaged
    }


def evaluate(
    checkpoint: str | Path,
    task: str,
    episodes: int,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    sampler: str | None = None,
    steps: int | None = None,
    threads: int | None = None,
    max_episode_steps: int | None = None,
    video_episodes: int = 0,
    progress: bool = True,
    device: str = "cpu",
    on_episode: Callable[[EpisodeResult], None] | None = None,
    record: bool = False,
    stream: int = EVAL_STREAM,
    spacing: str | None = None,
    naive_timestep: int | None = None,
    ensembling_decay: float | None = None,
    backend: str = "torch",
    noise: str = "torch",
    ort_optimization: str | None = None,
) -> Evaluation:
    """Evaluate a checkpoint; returns the result dict, the episodes and any video frames.

    The result holds the `sdm eval` contract keys (success_rate 0-1, episodes, seeds, sampler,
    steps, latency_ms {p50, p99}, control_hz) plus per-seed success and episode length, timing
    details and every episode. video_episodes: record RGB frames of the first K episodes of the
    first seed. record: also return every step of every episode as a dataset
    (`Evaluation.visited`, the layout of `sdm demos`, failed episodes included; meta/reset_seed,
    meta/eval_seed and meta/success per episode): the observations this policy visits in closed
    loop, e.g. to distil on them (`sdm distill --extra-dataset`). stream: the placement stream
    (`episode_seed`); training's periodic evaluations use SELECT_STREAM, so that selecting a
    checkpoint never sees the placements `sdm eval` reports on. max_episode_steps: None = the
    env's own (MetaWorld: 200). Per-episode env metrics (`info["metrics"]`, e.g. a collision
    flag) are written into each episode's row and averaged under "metrics".
    spacing, naive_timestep: sampler options of `PolicyRuntime.set_sampler` (trailing DDIM
    steps; the timestep of a teacher's one-step call), recorded in the result.
    ensembling_decay: None = receding horizon; a value >= 0 = temporal ensembling with that
    decay (recorded as `execution` and `ensembling_decay`).
    backend: "torch" (PolicyRuntime) or "onnxruntime" (OnnxPolicyRuntime on the .onnx exported
    into `checkpoint`, or a .onnx path; its noise is numpy's); noise: the torch backend's
    initial noise, "torch" or "numpy" (the onnxruntime backend's stream: with it both backends
    run the same episodes). Both are recorded. ort_optimization: the onnxruntime backend's graph
    optimisation level (OPTIMIZATION_LEVELS; None = "all"); its `threads` are onnxruntime's
    intra-op threads. The result records both and the model's quantisation.
    Raises UnknownTaskError, CheckpointError, ValueError (sampler/steps) or SimulatorError with
    a message that says what to fix.
    """
    task, entry = resolve_eval_task(task)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if ensembling_decay is not None and not ensembling_decay >= 0:
        raise ValueError(f"ensembling_decay must be >= 0, got {ensembling_decay}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
    if backend == "onnxruntime":
        from sdm_policy_core.onnx_runtime import OnnxPolicyRuntime

        if device != "cpu" or spacing is not None or naive_timestep is not None:
            raise ValueError(
                "the onnxruntime backend runs on the CPU with the sampler fixed in the exported "
                "graph: no device, spacing or naive_timestep"
            )
        ort_optimization = ort_optimization or "all"
        runtime = OnnxPolicyRuntime(
            checkpoint,
            sampler=sampler,
            steps=steps,
            threads=threads,
            optimization=ort_optimization,
        )
        noise = "numpy"
    elif ort_optimization is not None:
        raise ValueError("ort_optimization applies to the onnxruntime backend only")
    elif backend == "torch":
        runtime = PolicyRuntime(
            checkpoint,
            sampler=sampler,
            steps=steps,
            threads=threads,
            device=device,
            spacing=spacing,
            naive_timestep=naive_timestep,
            noise=noise,
        )
    else:
        raise ValueError(
            f"backend must be {' or '.join(map(repr, RUNTIME_BACKENDS))}, got {backend!r}"
        )
    entry.check(task, runtime.spec, str(checkpoint))
    env = entry.make(task, runtime.spec, max_episode_steps)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(
            total=episodes * len(seeds),
            desc=f"eval {task} {runtime.sampler}",
            unit="ep",
            dynamic_ncols=True,
        )
    results: list[EpisodeResult] = []
    frames: list[np.ndarray] = []
    buffer = ReplayBuffer.create_empty() if record else None
    start = time.perf_counter()
    try:
        for k, s in enumerate(seeds):
            runtime.generator.manual_seed(s)
            for i in range(episodes):
                frames_of = frames if k == 0 and i < video_episodes else None
                steps: dict[str, list[np.ndarray]] | None = {} if record else None
                reset_seed = episode_seed(s, i, stream)
                ep = run_episode(
                    env, runtime, reset_seed, s, i, frames_of, steps, ensembling_decay
                )
                results.append(ep)
                if buffer is not None and steps:
                    buffer.add_episode(visited_episode(steps))
                if on_episode is not None:
                    on_episode(ep)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(success=f"{np.mean([e.success for e in results]):.2f}")
    finally:
        if bar is not None:
            bar.close()
        env.close()
    wall = time.perf_counter() - start
    result: dict[str, Any] = {
        "task": task,
        "checkpoint": str(checkpoint),
        "policy_id": runtime.policy_id,
        "kind": runtime.kind,
        "sampler": runtime.sampler,
        "steps": runtime.steps,
        "backend": backend,
        "noise": noise,  # where the sampler's initial noise is drawn: torch or numpy
        "ort_optimization": ort_optimization,  # onnxruntime's graph optimisation level
        "quantization": runtime.quantization,  # an exported graph's: None (float) or "int8"
        "timestep_spacing": runtime.spacing,  # ddim/ddpm: "leading" or "trailing"
        "naive_timestep": runtime.naive_timestep,  # a teacher's one-step call
        "timesteps": runtime.timesteps,  # the denoiser's timesteps per policy call
        "placement_stream": stream,
        "execution": "receding" if ensembling_decay is None else "temporal_ensembling",
        "ensembling_decay": ensembling_decay,
        **summarize(results, seeds, episodes),
    }
    env_steps = sum(e.length for e in results)
    result.update(
        {
            "loop_hz": env_steps / wall if wall > 0 else 0.0,
            "wall_time_s": wall,
            "threads": threads,
            "device": str(device),
            "n_obs_steps": runtime.n_obs_steps,
            "n_action_steps": runtime.n_action_steps,
            "horizon": runtime.horizon,
            "max_episode_steps": env.max_episode_steps,
            "episode_results": [_episode_row(e) for e in results],
        }
    )
    if runtime.spec.point_cloud_shape is not None:
        result["num_points"] = int(runtime.spec.point_cloud_shape[0])
    if buffer is not None:
        buffer.meta = {
            "reset_seed": np.array([e.reset_seed for e in results], dtype=np.int64),
            "eval_seed": np.array([e.seed for e in results], dtype=np.int64),
            "success": np.array([e.success for e in results], dtype=np.uint8),
        }
    return Evaluation(result, results, frames, buffer)


def _episode_row(e: EpisodeResult) -> dict[str, Any]:
    """One episode's row of the result JSON: its fields with the env's metrics flattened in."""
    skip = ("latencies_s", "metrics", "seam_jumps", "in_chunk_steps")
    row = {k: v for k, v in asdict(e).items() if k not in skip}
    row["max_seam_jump"] = max(e.seam_jumps, default=0.0)
    row.update(e.metrics)
    return row
