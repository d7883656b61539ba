# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Which environment `sdm eval` runs a task in: a small protocol and a registry by task name.

    task, entry = resolve_eval_task("button-press")  # "button-press-v3", the MetaWorld entry
    entry.check(task, policy_spec, "ckpt")  # raises when that policy cannot act there
    env = entry.make(task, policy_spec, None)  # an EvalEnv (None: the env's episode length)
    obs = env.reset(seed=3)
    obs, reward, done, info = env.step(action)  # info["success"]: bool

An environment is anything with the `EvalEnv` attributes and methods. Tasks are found by exact
name in the registry (`register_env`); any other name is tried as a MetaWorld v3 task, so every
MetaWorld name (with or without '-v3') keeps working. To add a simulator, write a class with
the `EvalEnv` members and register an `EnvEntry` at the bottom of this module; import heavy
packages inside its `make`, so that listing tasks stays cheap.

Per-episode extra metrics: an env may return `info["metrics"]`, a dict of JSON numbers or
booleans describing the episode so far (e.g. {"collision": True} or {"max_coverage": 0.93}).
The rollout keeps the last step's dict for the episode (`EpisodeResult.metrics`), writes it
into that episode's result row and averages each metric over the episodes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sdm_policy_core.config import ObservationSpec
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD


@runtime_checkable
class EvalEnv(Protocol):
    """What the closed-loop rollout needs from an environment.

    task: canonical task name. max_episode_steps: the episode ends (done) at this step.
    observation_keys: the policy observation keys `reset`/`step` return, among "agent_pos"
        (state_dim,) float32, "point_cloud" (P, C) float32 and "image" (H, W, 3) uint8; an
        observation may hold more keys (e.g. "full_state"), which policies ignore.
    state_dim, action_dim: sizes of "agent_pos" and of one action.
    """

    task: str
    max_episode_steps: int
    observation_keys: tuple[str, ...]
    state_dim: int
    action_dim: int

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Start an episode whose initial state is fixed by `seed`; its first observation."""
        ...

    def step(
        self, action: np.ndarray, observe: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, dict[str, Any]]:
        """Apply one action (action_dim,); return (observation, reward, done, info).

        info["success"] (bool, this step) and optionally info["metrics"]. `done`: the episode
        is over (step limit or a terminal failure). observe=False: the caller will not use this
        observation (the env may skip rendering; "agent_pos" must still be there).
        """
        ...

    def render(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame of the current state (videos)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EnvEntry:
    """A family of tasks in the registry.

    name: the registry name (an exact task name, or "metaworld" for the fallback family).
    resolve: canonical task name of a requested one; raises UnknownTaskError (a ValueError).
    check: (task, policy spec, source) -> None; raises ValueError naming `source` (the policy)
        when a policy with that spec cannot act in this env.
    make: (task, policy spec, max_episode_steps or None for the env's default) -> EvalEnv.
    summary: one line for `sdm eval --help` and error messages.
    demos: what `sdm demos --task` runs for this task: (task, episodes, seed,
        max_episode_steps or None, progress) -> (ReplayBuffer, DemoSummary); None: the task
        has no scripted expert here (MetaWorld's is `sim.demos.record_demos`).
    serve: (task, max_episode_steps or None) -> EvalEnv without a policy to check against:
        what `sim_bridge_node` serves over ROS 2 (sim/episode.py); None: the bridge does not
        serve the task (MetaWorld has its own path there).
    """

    name: str
    resolve: Callable[[str], str]
    check: Callable[[str, ObservationSpec, str], None]
    make: Callable[[str, ObservationSpec, int | None], EvalEnv]
    summary: str = ""
    demos: Callable[[str, int, int, int | None, bool], tuple[Any, Any]] | None = None
    serve: Callable[[str, int | None], EvalEnv] | None = None


_REGISTRY: dict[str, EnvEntry] = {}


def register_env(entry: EnvEntry) -> None:
    """Add (or replace) the tasks of `entry` under its name."""
    _REGISTRY[entry.name] = entry


def registered_tasks() -> tuple[str, ...]:
    """Names of the registered non-MetaWorld tasks, sorted."""
    return tuple(sorted(n for n in _REGISTRY if n != METAWORLD))


def resolve_eval_task(name: str) -> tuple[str, EnvEntry]:
    """Return (canonical task name, its entry).

    Registered names match exactly; others are tried as MetaWorld tasks. Raises
    UnknownTaskError listing the registered tasks and MetaWorld's.
    """
    from sdm_policy_core.sim.metaworld_env import UnknownTaskError

    name = name.strip()
    if name in _REGISTRY and name != METAWORLD:
        entry = _REGISTRY[name]
        return entry.resolve(name), entry
    try:
        return _REGISTRY[METAWORLD].resolve(name), _REGISTRY[METAWORLD]
    except UnknownTaskError as err:
        others = registered_tasks()
        close = difflib.get_close_matches(name, others, n=2, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}? " if close else " "
        raise UnknownTaskError(
            f"unknown task {name!r}.{hint}Tasks besides MetaWorld's: {', '.join(others)}. {err}"
        ) from None


def require_state_only(
    spec: ObservationSpec, source: str, task: str, state_dim: int, action_dim: int
) -> None:
    """Raise ValueError unless `spec` is a state-only policy with these sizes.

    Low-dimensional envs use it as their `check`.
    """
    if spec.point_cloud_shape is not None or spec.image_shape is not None:
        raise ValueError(
            f"{source} observes a point cloud or an image; {task} gives only agent_pos "
            f"({state_dim},): train it on `sdm demos --task {task}` data"
        )
    if spec.state_dim != state_dim:
        raise ValueError(
            f"{source} expects agent_pos of size {spec.state_dim}; {task} gives {state_dim}: "
            f"train it on `sdm demos --task {task}` data"
        )
    if spec.action_dim != action_dim:
        raise ValueError(
            f"{source} outputs {spec.action_dim}-D actions; {task} takes {action_dim}"
        )


# -- MetaWorld ------------------------------------------------------------------------------------
METAWORLD = "metaworld"


def check_spec(spec: ObservationSpec, source: str | Path) -> int:
    """Raise when a policy with this observation spec cannot act in MetaWorldEnv.

    It cannot with no point cloud, a non-square image, another state or action size. Returns
    the image size to render (0: none). source names the policy in the message.
    """
    from sdm_policy_core.sim.metaworld_env import ACTION_DIM, STATE_DIM, SimulatorError

    if spec.point_cloud_shape is None:
        raise ValueError(f"{source} is not a point-cloud policy; sdm eval runs DP3 policies")
    image_size = 0
    if spec.image_shape is not None:
        _, h, w = spec.image_shape
        if h != w:
            raise ValueError(f"MetaWorldEnv renders square images; {source} wants {h}x{w}")
        image_size = h
    if spec.state_dim != STATE_DIM:
        raise SimulatorError(
            f"{source} expects agent_pos of size {spec.state_dim}; MetaWorldEnv gives "
            f"{STATE_DIM} (hand xyz + right/left finger xyz): train it on `sdm demos` data"
        )
    if spec.action_dim != ACTION_DIM:
        raise SimulatorError(
            f"{source} outputs {spec.action_dim}-D actions; MetaWorld takes {ACTION_DIM}"
        )
    return image_size


class MetaWorldEvalEnv:
    """A MetaWorldEnv seen through the EvalEnv protocol (its own `step` returns a 5-tuple)."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.task: str = env.task
        self.max_episode_steps: int = env.max_episode_steps
        self.state_dim: int = env.state_dim
        self.action_dim: int = env.action_dim
        keys = (POINT_CLOUD, AGENT_POS)
        self.observation_keys: tuple[str, ...] = keys + ((IMAGE,) if env.image_size else ())

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        return self.env.reset(seed=seed)

    def step(
        self, action: np.ndarray, observe: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, dict[str, Any]]:
        obs, reward, success, done, info = self.env.step(action, observe=observe)
        info = dict(info)
        info["success"] = bool(success)
        return obs, reward, done, info

    def render(self) -> np.ndarray:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def _metaworld_resolve(task: str) -> str:
    from sdm_policy_core.sim.metaworld_env import resolve_task

    return resolve_task(task)


def _metaworld_check(task: str, spec: ObservationSpec, source: str) -> None:
    check_spec(spec, source)


def _metaworld_make(task: str, spec: ObservationSpec, max_episode_steps: int | None) -> EvalEnv:
    from sdm_policy_core.sim.metaworld_env import DEFAULT_MAX_EPISODE_STEPS, MetaWorldEnv

    image_size = check_spec(spec, task)
    num_points, channels = spec.point_cloud_shape
    env = MetaWorldEnv(
        task,
        num_points=num_points,
        image_size=image_size,
        max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
        cloud_channels=channels,
    )
    return MetaWorldEvalEnv(env)


register_env(
    EnvEntry(
        METAWORLD,
        _metaworld_resolve,
        _metaworld_check,
        _metaworld_make,
        "MetaWorld v3 tasks on MuJoCo (point cloud + agent_pos; 200 steps)",
    )
)


# -- PushT (gym-pusht; Diffusion Policy's human demonstrations) ----------------------------------
PUSHT = "pusht"


def _pusht_check(task: str, spec: ObservationSpec, source: str) -> None:
    from sdm_policy_core.sim.pusht_env import ACTION_DIM, STATE_DIM

    if spec.point_cloud_shape is not None or spec.image_shape is not None:
        raise ValueError(
            f"{source} observes a point cloud or an image; {task} gives only agent_pos "
            f"({STATE_DIM},): train a state-only policy on Diffusion Policy's PushT zarr"
        )
    if spec.state_dim != STATE_DIM or spec.action_dim != ACTION_DIM:
        raise ValueError(
            f"{source} maps agent_pos ({spec.state_dim},) to {spec.action_dim}-D actions; "
            f"{task} gives [agent_x, agent_y, block_x, block_y, angle] ({STATE_DIM},) and takes "
            f"the agent's ({ACTION_DIM},) target: train it on the PushT zarr's data/state"
        )


def _pusht_make(task: str, spec: ObservationSpec, max_episode_steps: int | None) -> EvalEnv:
    from sdm_policy_core.sim.pusht_env import DEFAULT_MAX_EPISODE_STEPS, PushTEnv

    return PushTEnv(max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS)


register_env(
    EnvEntry(
        PUSHT,
        lambda task: task,
        _pusht_check,
        _pusht_make,
        "PushT in gym-pusht (agent_pos = [agent xy, block xy, angle]; 300 steps; per episode "
        "max coverage and score min(coverage/0.95, 1))",
    )
)


# -- the two-mode obstacle task (sim/obstacle.py) ------------------------------------------------
def _obstacle_check(task: str, spec: ObservationSpec, source: str) -> None:
    from sdm_policy_core.sim.obstacle import ACTION_DIM, TASK_CUE

    require_state_only(spec, source, task, 3 if task == TASK_CUE else 2, ACTION_DIM)


def _obstacle_serve(task: str, max_episode_steps: int | None) -> EvalEnv:
    from sdm_policy_core.sim.obstacle import DEFAULT_MAX_EPISODE_STEPS, TASK_CUE, ObstacleEnv

    return ObstacleEnv(task == TASK_CUE, max_episode_steps or DEFAULT_MAX_EPISODE_STEPS)


def _obstacle_make(task: str, spec: ObservationSpec, max_episode_steps: int | None) -> EvalEnv:
    _obstacle_check(task, spec, task)
    return _obstacle_serve(task, max_episode_steps)


def _obstacle_demos(
    task: str, episodes: int, seed: int, max_episode_steps: int | None, progress: bool
) -> tuple[Any, Any]:
    from sdm_policy_core.sim.obstacle import (
        DEFAULT_MAX_EPISODE_STEPS,
        TASK_CUE,
        record_obstacle_demos,
    )

    steps = max_episode_steps or DEFAULT_MAX_EPISODE_STEPS
    return record_obstacle_demos(episodes, seed, task == TASK_CUE, steps, progress)


for _name, _summary in (
    ("obstacle-2d", "a point mass passes a disc left or right, a hidden coin picks the side"),
    ("obstacle-2d-cue", "obstacle-2d with the side in the observation (and required)"),
):
    register_env(
        EnvEntry(
            _name,
            lambda task: task,
            _obstacle_check,
            _obstacle_make,
            _summary + " (state-only; 60 steps)",
            _obstacle_demos,
            _obstacle_serve,
        )
    )
