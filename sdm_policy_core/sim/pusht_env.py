# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PushT (Diffusion Policy's planar pushing task) in `gym-pusht`, observed as its state.

    env = PushTEnv()
    obs = env.reset(seed=3)            # random start: agent, block position and angle
    obs["agent_pos"]                   # (5,) float32 [agent_x, agent_y, block_x, block_y, angle]
    obs, reward, done, info = env.step(np.array([250.0, 300.0]))
    info["success"], info["coverage"], info["metrics"]["max_coverage"]

The state is what Diffusion Policy's PushT dataset stores as `data/state` (T, 5): positions in
pixels of the 512 x 512 workspace, the block's angle in radians in [0, 2 pi). The action (2,) is
the absolute target of the agent (pixels, 0-512; the dataset's `data/action`), tracked by a PD
controller for 0.1 s (10 physics steps). An episode lasts `max_episode_steps` (300, as
Diffusion Policy and LeRobot evaluate).

Metrics, per step and per episode (Diffusion Policy's): `coverage` is the fraction of the goal
T covered by the block; the reward and score are min(coverage / 0.95, 1); an episode's score is
that of its best step (`max_coverage`), and it succeeds when coverage >= 0.95 at any step.

`reset_to_state(state)` starts from a recorded state. gym-pusht sets the block's angle after its
position and pymunk rotates the block about its centre of gravity, (0, 45) in block
coordinates, so a state passed as it is lands the block up to 90 px away; this class passes
q - c + R(theta) c for the block position q, which lands it on q. Replaying a demonstration's
actions from its first state then reproduces its states (test/core/sim/test_pusht_env.py).

gym-pusht 0.1.8 needs pymunk < 7; scripts/setup.sh installs both (requirements/no-deps.txt).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sdm_policy_core.keys import AGENT_POS, IMAGE
from sdm_policy_core.sim.metaworld_env import SimulatorError

TASK = "pusht"
STATE_DIM = 5  # agent x, y; block x, y [px]; block angle [rad]
ACTION_DIM = 2  # agent target x, y [px]
DEFAULT_MAX_EPISODE_STEPS = 300  # Diffusion Policy's and LeRobot's PushT evaluation
SUCCESS_COVERAGE = 0.95  # gym-pusht's success threshold (and the score's normaliser)
BLOCK_COG = (0.0, 45.0)  # the T's centre of gravity in block coordinates [px]
INSTALL_HINT = (
    "run scripts/setup.sh, or: pip install 'pymunk>=6.6,<7' pygame shapely && "
    "pip install --no-deps gym-pusht==0.1.8"
)


def coverage_score(coverage: float) -> float:
    """Diffusion Policy's PushT score of a coverage in [0, 1]: min(coverage / 0.95, 1)."""
    return min(max(float(coverage) / SUCCESS_COVERAGE, 0.0), 1.0)


def episode_metrics(max_coverage: float) -> dict[str, Any]:
    """Return the per-episode metrics of an episode whose best coverage was `max_coverage`."""
    return {
        "max_coverage": float(max_coverage),
        "score": coverage_score(max_coverage),
        "success": bool(max_coverage >= SUCCESS_COVERAGE),
    }


def _gym_pusht_env_class() -> type:
    try:
        from gym_pusht.envs import PushTEnv as GymPushTEnv
    except ImportError as err:
        raise SimulatorError(
            f"the pusht task needs gym-pusht, which is not importable ({err}); {INSTALL_HINT}"
        ) from None
    return GymPushTEnv


def block_reset_position(state: np.ndarray) -> np.ndarray:
    """(2,) block position to pass to gym-pusht's reset so that the block lands at state[2:4].

    state: (5,) [agent_x, agent_y, block_x, block_y, angle]. Returns q - c + R(angle) c with
    c = BLOCK_COG (gym-pusht rotates about the centre of gravity after setting the position).
    """
    theta = float(state[4])
    c = np.asarray(BLOCK_COG, dtype=np.float64)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return np.asarray(state[2:4], dtype=np.float64) - c + rotation @ c


class PushTEnv:
    """gym-pusht's PushT with a state observation, a step limit and per-episode metrics.

    max_episode_steps: steps until `done` (300). image_size: when > 0, observations also hold
    "image" (S, S, 3) uint8, the 96 x 96 view of Diffusion Policy's image policies at S = 96.
    Follows the evaluation env protocol of `sdm eval` (reset(seed) / step(action) / render).
    """

    task = TASK
    state_dim = STATE_DIM
    action_dim = ACTION_DIM

    def __init__(
        self, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS, image_size: int = 0
    ) -> None:
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if image_size < 0:
            raise ValueError(f"image_size must be >= 0 (0: no image), got {image_size}")
        self.max_episode_steps = int(max_episode_steps)
        self.image_size = int(image_size)
        self.observation_keys: tuple[str, ...] = (AGENT_POS,) + ((IMAGE,) if image_size else ())
        size = image_size or 96
        self._env = _gym_pusht_env_class()(
            obs_type="state",
            render_mode="rgb_array",
            observation_width=size,
            observation_height=size,
        )
        self._steps = 0
        self._max_coverage = 0.0
        self._started = False

    @property
    def steps(self) -> int:
        """Steps taken in the current episode."""
        return self._steps

    @property
    def max_coverage(self) -> float:
        """Best coverage of the current episode's steps (the reset state does not count)."""
        return self._max_coverage

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset to a random start drawn from `seed`; return the observation.

        Agent in [50, 450) px, block in [100, 400) px, angle in [-pi, pi); the same seed gives
        the same start. Returns the observation.
        """
        state, _ = self._env.reset(seed=None if seed is None else int(seed))
        return self._start(state)

    def reset_to_state(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Start from a recorded (5,) state, e.g. a demonstration's first `data/state` row."""
        state = np.asarray(state, dtype=np.float64).reshape(-1)
        if state.shape != (STATE_DIM,) or not np.isfinite(state).all():
            raise ValueError(
                f"a PushT state is ({STATE_DIM},) finite [agent_x, agent_y, block_x, block_y, "
                f"angle], got shape {state.shape}: {state}"
            )
        raw = np.concatenate([state[:2], block_reset_position(state), state[4:]])
        obs, _ = self._env.reset(options={"reset_to_state": raw})
        return self._start(obs)

    def _start(self, state: np.ndarray) -> dict[str, np.ndarray]:
        self._steps = 0
        self._max_coverage = 0.0
        self._started = True
        return self._observation(state)

    def step(
        self, action: np.ndarray, observe: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, dict[str, Any]]:
        """Move the agent toward the target `action` (2,) [px] for one control step (0.1 s).

        Returns (observation, reward, done, info): reward = min(coverage / 0.95, 1) of this
        step; done once `max_episode_steps` steps were taken; info["success"] (coverage >=
        0.95 at this step), info["coverage"] and info["metrics"]: the episode's max coverage so
        far and its score (`sdm eval` writes them per episode and averages them).
        observe=False skips the image (agent_pos is always there).
        """
        if not self._started:
            raise RuntimeError("call reset() or reset_to_state() before step()")
        if self._steps >= self.max_episode_steps:
            raise RuntimeError(
                f"episode is over ({self.max_episode_steps} steps); call reset() first"
            )
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,):
            raise ValueError(
                f"a PushT action is the ({ACTION_DIM},) agent target [px], got {action.shape}"
            )
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or Inf: {action}")
        state, _, _, _, raw_info = self._env.step(action)
        coverage = float(raw_info["coverage"])
        self._steps += 1
        self._max_coverage = max(self._max_coverage, coverage)
        best = self._max_coverage
        info = {
            "success": coverage >= SUCCESS_COVERAGE,
            "coverage": coverage,
            "n_contacts": int(raw_info["n_contacts"]),
            "metrics": {"max_coverage": best, "score": coverage_score(best)},
        }
        done = self._steps >= self.max_episode_steps
        return self._observation(state, image=observe), coverage_score(coverage), done, info

    def _observation(self, state: np.ndarray, image: bool = True) -> dict[str, np.ndarray]:
        obs = {AGENT_POS: np.asarray(state, dtype=np.float32)}
        if self.image_size and image:
            obs[IMAGE] = np.ascontiguousarray(self._env._render(visualize=False), dtype=np.uint8)
        return obs

    def render(self) -> np.ndarray:
        """(680, 680, 3) uint8 RGB view with the last action marked (videos)."""
        return np.asarray(self._env.render(), dtype=np.uint8)

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> PushTEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PushTEnv(max_episode_steps={self.max_episode_steps}, image={self.image_size})"


def replay_episode(
    env: PushTEnv, states: np.ndarray, actions: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Replay a recorded episode's actions open loop from its first state.

    states: (T, 5) recorded states, actions: (T, 2); action t was taken in state t. Returns
    (replayed (T, 5) float64: the start, then the state after each of actions 0..T-2;
    coverages (T,): the coverage after each action, the last one included).
    """
    states = np.asarray(states)
    actions = np.asarray(actions)
    if states.ndim != 2 or states.shape[1] != STATE_DIM or actions.shape != (len(states), 2):
        raise ValueError(
            f"replay_episode needs states (T, {STATE_DIM}) and actions (T, {ACTION_DIM}), got "
            f"{states.shape} and {actions.shape}"
        )
    replayed = np.empty(states.shape, dtype=np.float64)
    coverages = np.empty(len(states), dtype=np.float64)
    saved_limit = env.max_episode_steps
    env.max_episode_steps = max(saved_limit, len(states))
    try:
        replayed[0] = env.reset_to_state(states[0])[AGENT_POS]
        for t, action in enumerate(actions):
            obs, _, _, info = env.step(action, observe=False)
            coverages[t] = info["coverage"]
            if t + 1 < len(states):
                replayed[t + 1] = obs[AGENT_POS]
    finally:
        env.max_episode_steps = saved_limit
    return replayed, coverages


def state_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...,) max absolute difference of PushT states over their 5 entries.

    The angle is taken modulo 2 pi (0 and 2 pi - 1e-6 are the same angle).
    """
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    angle = diff[..., 4] % (2 * np.pi)
    diff[..., 4] = np.minimum(angle, 2 * np.pi - angle)
    return diff.max(axis=-1)
