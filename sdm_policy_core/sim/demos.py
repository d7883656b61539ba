# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Record scripted-expert demonstrations of a MetaWorld task into a DP3-layout replay buffer.

    buffer, summary = record_demos("button-press-v3", episodes=10, seed=0)
    buffer.save("button_press.zarr")

Each step stores the observation and the expert's action taken from it:
`point_cloud` (T, P, 3) float32, `state` (T, 9) float32 (= `agent_pos`), `action` (T, 4)
float32, `full_state` (T, 39) float32, and optionally `img` (T, S, S, 3) uint8 and `depth`
(T, H, W) float32 [m]. Keys, dtypes and chunking follow DP3's MetaWorld datasets.

DP3's rule decides which episodes are kept: an episode runs for the full `max_episode_steps`
(200) and is kept only when the task succeeded on at least `min_success_steps` (5) of its steps;
failed episodes are discarded and another placement is tried. `stop_on_success=True` ends an
episode as soon as that count is reached instead (shorter demos, no idle tail).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.keys import (
    ACTION,
    AGENT_POS,
    ARRAY_ACTION,
    ARRAY_DEPTH,
    ARRAY_FULL_STATE,
    ARRAY_POINT_CLOUD,
    ARRAY_STATE,
    DATASET_ARRAYS,
    DEPTH,
    FULL_STATE,
    IMAGE,
    POINT_CLOUD,
)
from sdm_policy_core.sim.experts import ScriptedExpert, TwoRouteExpert, make_expert
from sdm_policy_core.sim.metaworld_env import (
    DEFAULT_MAX_EPISODE_STEPS,
    MetaWorldEnv,
    SimulatorError,
    resolve_task,
)

DEMO_STREAM = 0  # placements of demonstrations, ...
EVAL_STREAM = 1  # ... of evaluation episodes (`sdm eval`) ...
SELECT_STREAM = 2  # ... and of training's periodic evaluations come from independent streams


def episode_seed(seed: int, index: int, stream: int = DEMO_STREAM) -> int:
    """Reset seed of episode `index` of a run with seed `seed`.

    Derived with numpy's SeedSequence from (stream, seed, index), so that episodes are
    reproducible one by one, and demonstrations (stream 0), evaluation episodes (stream 1) and
    the evaluations that select a training run's `best` checkpoint (stream 2) with the same
    seed draw statistically independent object/goal placements.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got {seed}, {index}")
    return int(np.random.SeedSequence([stream, seed, index]).generate_state(1)[0])


# The arrays of `sdm demos` datasets stored as float32 (images stay uint8)
FLOAT_ARRAYS = (ARRAY_POINT_CLOUD, ARRAY_STATE, ARRAY_ACTION, ARRAY_FULL_STATE, ARRAY_DEPTH)


@dataclass
class DemoSummary:
    """What `record_demos` did."""

    task: str
    seed: int
    episodes: int  # kept (successful) episodes
    attempts: int  # episodes run, kept or not
    steps: int  # time steps in the buffer
    episode_lengths: list[int] = field(default_factory=list)
    first_success_steps: list[int] = field(default_factory=list)  # 1-based step of 1st success
    discarded_seeds: list[int] = field(default_factory=list)  # reset seeds of failed episodes
    expert: str = "scripted"
    routes: list[str] = field(default_factory=list)  # per kept episode (two-route expert)
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_episode(
    env: MetaWorldEnv,
    expert: ScriptedExpert | TwoRouteExpert,
    reset_seed: int,
    min_success_steps: int = 5,
    stop_on_success: bool = False,
    keep_image: bool = False,
    keep_depth: bool = False,
) -> tuple[dict[str, np.ndarray], int, int | None]:
    """Run the expert for one episode; (arrays {key: (T, ...)}, success steps, first success).

    The episode runs to `env.max_episode_steps`, or with `stop_on_success` until the task has
    succeeded on `min_success_steps` steps.
    """
    obs = env.reset(seed=reset_seed)
    recorded = [POINT_CLOUD, AGENT_POS, ACTION, FULL_STATE]
    recorded += [IMAGE] if keep_image else []
    recorded += [DEPTH] if keep_depth else []
    steps: dict[str, list[np.ndarray]] = {DATASET_ARRAYS[k]: [] for k in recorded}
    success_steps, first_success, done = 0, None, False
    while not done:
        action = expert.act(env)
        for key in recorded:
            steps[DATASET_ARRAYS[key]].append(action if key == ACTION else obs[key])
        obs, _, success, done, _ = env.step(action)
        if success:
            success_steps += 1
            first_success = first_success or env.steps
            if stop_on_success and success_steps >= min_success_steps:
                break
    arrays = {k: np.stack(v) for k, v in steps.items()}
    for key in FLOAT_ARRAYS:
        if key in arrays:
            arrays[key] = arrays[key].astype(np.float32, copy=False)
    return arrays, success_steps, first_success


def record_demos(
    task: str,
    episodes: int,
    seed: int = 0,
    num_points: int = 512,
    image_size: int = 0,
    save_depth: bool = False,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    min_success_steps: int = 5,
    stop_on_success: bool = False,
    max_attempts: int | None = None,
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    expert: str = "scripted",
) -> tuple[ReplayBuffer, DemoSummary]:
    """Record `episodes` successful expert episodes (DP3's rule, see the module docstring).

    The i-th placement tried uses reset seed `episode_seed(seed, i, DEMO_STREAM)`.
    max_attempts: give up after this many episodes (default max(2 N, N + 10)); raises
    SimulatorError when fewer than `episodes` succeeded by then.
    expert: "scripted" (MetaWorld's expert) or "two-route" (TwoRouteExpert: every placement
    is demonstrated twice, around the wall on the left and on the right, and the pair is kept
    only when both succeed; `episodes` must then be even).
    """
    task = resolve_task(task)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if min_success_steps < 1:
        raise ValueError(f"min_success_steps must be >= 1, got {min_success_steps}")
    max_attempts = max_attempts or max(2 * episodes, episodes + 10)
    start = time.perf_counter()
    buffer = ReplayBuffer.create_empty()
    demonstrator = make_expert(task, expert)  # ValueError before any simulator starts
    ways = len(demonstrator.routes)  # episodes per placement
    if episodes % ways:
        raise ValueError(
            f"the {expert} expert demonstrates each placement {ways} ways "
            f"({', '.join(demonstrator.routes)}): episodes must be a multiple of {ways} "
            f"(even), got {episodes}"
        )
    summary = DemoSummary(task=task, seed=seed, episodes=0, attempts=0, steps=0, expert=expert)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=f"demos {task}", unit="ep", dynamic_ncols=True)
    env = MetaWorldEnv(
        task,
        num_points=num_points,
        image_size=image_size,
        max_episode_steps=max_episode_steps,
        **(env_kwargs or {}),
    )
    try:
        placement = 0
        while summary.episodes < episodes:
            if summary.attempts >= max_attempts:
                raise SimulatorError(
                    f"only {summary.episodes} of {episodes} expert episodes of {task} succeeded "
                    f"(>= {min_success_steps} success steps within {max_episode_steps} steps) "
                    f"in {max_attempts} attempts; raise --max-attempts or --max-episode-steps"
                )
            reset_seed = episode_seed(seed, placement, DEMO_STREAM)
            placement += 1
            demonstrated = []  # (arrays, first success, route) per way of doing it
            for way in range(ways):
                summary.attempts += 1
                demonstrator.begin_episode(way)
                arrays, n_success, first = record_episode(
                    env,
                    demonstrator,
                    reset_seed,
                    min_success_steps=min_success_steps,
                    stop_on_success=stop_on_success,
                    keep_image=image_size > 0,
                    keep_depth=save_depth,
                )
                if n_success < min_success_steps:
                    summary.discarded_seeds.append(reset_seed)
                    break
                demonstrated.append((arrays, first, demonstrator.route))
            if len(demonstrated) < ways:
                continue
            for arrays, first, route in demonstrated:
                buffer.add_episode(arrays)
                summary.episodes += 1
                summary.episode_lengths.append(len(arrays[ARRAY_ACTION]))
                summary.first_success_steps.append(int(first))
                if route:
                    summary.routes.append(route)
            if bar is not None:
                bar.update(ways)
                bar.set_postfix(attempts=summary.attempts, steps=buffer.n_steps)
    finally:
        if bar is not None:
            bar.close()
        env.close()
    summary.steps = buffer.n_steps
    summary.wall_time_s = time.perf_counter() - start
    return buffer, summary
