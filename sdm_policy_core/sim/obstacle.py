# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A two-mode task that punishes averaging: a point mass must pass a disc left or right.

    env = ObstacleEnv()                       # or ObstacleEnv(cue=True): the side is observed
    obs = env.reset(seed=3)                   # obs["agent_pos"]: (2,) x, y [m] (cue: + side)
    obs, reward, done, info = env.step(action)  # action (2,) in [-1, 1]; info["success"]
    expert = ObstacleExpert(); expert.act(env)  # the scripted demonstrator of this episode's side

The plane [m]: the point starts near (0, 0) (uniform jitter of ±`START_JITTER` per axis), the
goal is a gate, the line y = `GOAL_Y` for |x| <= `GOAL_HALF_WIDTH`, and between them a disc
obstacle of radius `OBSTACLE_RADIUS` sits at `OBSTACLE` = (0, 0.36). An action is a velocity
command: the point moves by `STEP` * clip(action, -1, 1) per step (first order, no inertia).
The episode succeeds when the point reaches the gate, fails at once when the segment of a step
touches the obstacle (`collision`), and ends after `max_episode_steps` (60; the expert needs
25-27).

The coin: every reset draws a side (-1 left, +1 right) from the reset seed; the scripted expert
goes around the obstacle on its side through a waypoint at (side * w, 0.36), w drawn in
`WAYPOINT_X`, then on to the goal. Without a cue the observation does not reveal the side, so
the demonstrations from one start are an even mixture of two routes whose average drives
straight into the obstacle, 0.16 m ahead: it collides within the first 8 steps, i.e. inside
the first action chunk a policy executes open loop, before any re-planning. `cue=True` appends
the side to `agent_pos` (a 3-D state) and demands it: passing on the other side fails
(`wrong_side`).

Per-episode metrics (info["metrics"]): collision, passed_left, passed_right (on which side the
point crossed the obstacle's centre line y = OBSTACLE[1]), wrong_side (cue only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdm_policy_core.data import ReplayBuffer
from sdm_policy_core.keys import AGENT_POS, ARRAY_ACTION, ARRAY_STATE
from sdm_policy_core.sim.demos import DEMO_STREAM, DemoSummary, episode_seed
from sdm_policy_core.sim.metaworld_env import SimulatorError

STEP = 0.05  # [m] displacement per step at full command
START_JITTER = 0.03  # [m] start position is uniform in (0, 0) ± this, per axis
GOAL_Y, GOAL_HALF_WIDTH = 0.95, 0.25  # [m] the gate
GOAL = (0.0, 1.0)  # [m] the expert's final target, just beyond the gate
OBSTACLE = (0.0, 0.36)
OBSTACLE_RADIUS = 0.2
WAYPOINT_X = (0.48, 0.54)  # [m] the expert's lateral clearance point, drawn per episode
ARENA_LOW, ARENA_HIGH = (-1.0, -0.5), (1.0, 1.5)  # the point stays inside this box
DEFAULT_MAX_EPISODE_STEPS = 60
ACTION_DIM = 2
TASK, TASK_CUE = "obstacle-2d", "obstacle-2d-cue"


def segment_distance(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Distance from point c to the segment [a, b] (all (2,))."""
    ab = b - a
    denom = float(ab @ ab)
    s = 0.0 if denom == 0.0 else float(np.clip((c - a) @ ab / denom, 0.0, 1.0))
    return float(np.linalg.norm(a + s * ab - c))


@dataclass
class ObstacleEpisode:
    """State of the current episode."""

    side: int = 1  # the coin: -1 left, +1 right
    waypoint_x: float = 0.51  # [m] |x| of the expert's waypoint
    steps: int = 0
    collision: bool = False
    success: bool = False
    passed: int = 0  # side on which the point crossed y = OBSTACLE[1]; 0 before that


class ObstacleEnv:
    """The task; an EvalEnv (see eval/envs.py), pure numpy.

    cue: show the coin's side in `agent_pos` (3-D) and require it. max_episode_steps: the
    episode fails when it ends there.
    """

    def __init__(
        self, cue: bool = False, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS
    ) -> None:
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.cue = bool(cue)
        self.task = TASK_CUE if cue else TASK
        self.max_episode_steps = int(max_episode_steps)
        self.observation_keys: tuple[str, ...] = (AGENT_POS,)
        self.state_dim = 3 if cue else 2
        self.action_dim = ACTION_DIM
        # agent_pos and action as a robot names them (config/robots/obstacle_2d*.yaml)
        self.state_names: tuple[str, ...] = ("x", "y", "side") if cue else ("x", "y")
        self.action_names: tuple[str, ...] = ("vx", "vy")
        self.position = np.zeros(2)
        self.episode = ObstacleEpisode()

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Start a new episode: start jitter, side and expert waypoint drawn from `seed` (>= 0)."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        rng = np.random.default_rng(int(seed))
        self.position = rng.uniform(-START_JITTER, START_JITTER, size=2)
        side = int(rng.choice((-1, 1)))
        self.episode = ObstacleEpisode(side=side, waypoint_x=float(rng.uniform(*WAYPOINT_X)))
        return self.observe()

    def observe(self) -> dict[str, np.ndarray]:
        """{"agent_pos": (2,) x, y [m] (cue: (3,) with the side ±1)} float32."""
        state = [*self.position, float(self.episode.side)] if self.cue else self.position
        return {AGENT_POS: np.asarray(state, dtype=np.float32)}

    def step(
        self, action: np.ndarray, observe: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, dict[str, Any]]:
        """Move by STEP * clip(action); return (obs, reward, done, info).

        reward: 1 on the success step, -1 on a collision, else 0. Raises ValueError for a
        malformed action and RuntimeError after the episode ended.
        """
        ep = self.episode
        if ep.collision or ep.success or ep.steps >= self.max_episode_steps:
            raise RuntimeError("the episode is over; call reset() first")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,) or not np.isfinite(action).all():
            raise ValueError(f"action must be {ACTION_DIM} finite values, got {action}")
        old = self.position
        new = np.clip(old + STEP * np.clip(action, -1.0, 1.0), ARENA_LOW, ARENA_HIGH)
        self.position = new
        ep.steps += 1
        oy = OBSTACLE[1]
        if ep.passed == 0 and old[1] < oy <= new[1]:
            ep.passed = -1 if new[0] < OBSTACLE[0] else 1
        ep.collision = segment_distance(old, new, np.asarray(OBSTACLE)) < OBSTACLE_RADIUS
        at_goal = bool(new[1] >= GOAL_Y and abs(new[0]) <= GOAL_HALF_WIDTH)
        wrong_side = self.cue and ep.passed not in (0, ep.side)
        ep.success = at_goal and not ep.collision and not wrong_side
        done = ep.collision or ep.success or ep.steps >= self.max_episode_steps
        reward = 1.0 if ep.success else -1.0 if ep.collision else 0.0
        metrics: dict[str, Any] = {
            "collision": ep.collision,
            "passed_left": ep.passed == -1,
            "passed_right": ep.passed == 1,
        }
        if self.cue:
            metrics["wrong_side"] = bool(wrong_side)
        info = {"success": ep.success, "metrics": metrics, "side": ep.side}
        return self.observe(), reward, done, info

    def render(self, size: int = 128) -> np.ndarray:
        """(size, size, 3) uint8: obstacle grey, gate green, the point blue (top = +y)."""
        span = np.array(ARENA_HIGH) - np.array(ARENA_LOW)
        u = (np.arange(size) + 0.5) / size
        x = ARENA_LOW[0] + u[None, :] * span[0]
        y = ARENA_HIGH[1] - u[:, None] * span[1]
        image = np.full((size, size, 3), 255, dtype=np.uint8)
        gate = (np.abs(x) <= GOAL_HALF_WIDTH) & (np.abs(y - GOAL_Y) < 0.02)
        image[gate] = (60, 180, 75)
        for (cx, cy), radius, colour in (
            (OBSTACLE, OBSTACLE_RADIUS, (120, 120, 120)),
            (self.position, 0.03, (0, 90, 220)),
        ):
            image[(x - cx) ** 2 + (y - cy) ** 2 < radius**2] = colour
        return image

    def close(self) -> None:
        """Nothing to free (kept for the EvalEnv protocol)."""


class ObstacleExpert:
    """The scripted demonstrator: to the waypoint on the episode's side, then to the goal.

    To the waypoint (side * w, 0.36) on the episode's side, then to the goal, at full speed
    (slowing to land on a target). The phase follows from the position alone (y), so the
    expert is a function of the state and the coin. `side` overrides the episode's coin (e.g.
    to compute both modes' actions).
    """

    def act(self, env: ObstacleEnv, side: int | None = None) -> np.ndarray:
        """(2,) float32 action in [-1, 1] for the env's current state."""
        ep = env.episode
        side = ep.side if side is None else side
        p = env.position
        waypoint = np.array([side * ep.waypoint_x, OBSTACLE[1]])
        target = waypoint if p[1] < OBSTACLE[1] - 0.02 else np.asarray(GOAL)
        delta = target - p
        distance = float(np.linalg.norm(delta))
        if distance < 1e-9:
            return np.zeros(ACTION_DIM, dtype=np.float32)
        speed = min(1.0, distance / STEP)
        return (speed * delta / distance).astype(np.float32)


def averaged_expert_action(env: ObstacleEnv, expert: ObstacleExpert) -> np.ndarray:
    """Average the two modes' actions (left and right) at the current state.

    What a policy that averages the demonstrations does.
    """
    return 0.5 * (expert.act(env, side=-1) + expert.act(env, side=1))


def record_obstacle_demos(
    episodes: int,
    seed: int = 0,
    cue: bool = False,
    max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
    progress: bool = False,
) -> tuple[ReplayBuffer, DemoSummary]:
    """Record `episodes` scripted-expert episodes as a state-only dataset.

    data/state (T, 2|3), data/action (T, 2) float32, meta/episode_ends and meta/side (E,)
    int64 (-1 left, +1 right).

    Episode i resets with `episode_seed(seed, i, DEMO_STREAM)` (the coin and start come from
    it) and ends at its success step. Raises SimulatorError if the expert ever fails (it does
    not within 60 steps; a shorter `max_episode_steps` can make it).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    start = time.perf_counter()
    env, expert = ObstacleEnv(cue=cue, max_episode_steps=max_episode_steps), ObstacleExpert()
    buffer = ReplayBuffer.create_empty()
    summary = DemoSummary(task=env.task, seed=seed, episodes=0, attempts=0, steps=0)
    sides = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc=f"demos {env.task}", unit="ep", dynamic_ncols=True)
    for i in range(episodes):
        obs = env.reset(episode_seed(seed, i, DEMO_STREAM))
        states, actions, done, info = [], [], False, {"success": False}
        while not done:
            action = expert.act(env)
            states.append(obs[AGENT_POS])
            actions.append(action)
            obs, _, done, info = env.step(action)
        summary.attempts += 1
        if not info["success"]:
            raise SimulatorError(
                f"the {env.task} expert failed episode {i} (seed {seed}) within "
                f"{max_episode_steps} steps; raise --max-episode-steps"
            )
        buffer.add_episode(
            {ARRAY_STATE: np.stack(states), ARRAY_ACTION: np.stack(actions).astype(np.float32)}
        )
        sides.append(env.episode.side)
        summary.episodes += 1
        summary.episode_lengths.append(len(actions))
        summary.first_success_steps.append(len(actions))
        summary.routes.append("left" if env.episode.side < 0 else "right")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    buffer.meta = {"side": np.array(sides, dtype=np.int64)}
    summary.steps = buffer.n_steps
    summary.wall_time_s = time.perf_counter() - start
    return buffer, summary
