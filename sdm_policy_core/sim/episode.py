# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Episodes of the embedded simulator as a robot sees them: what `sim_bridge_node` runs.

    runner = EpisodeRunner("button-press-v3", control_period_s=0.1)
    obs = runner.reset(seed=7)            # first observation; sim time advances one period
    obs = runner.step(action)             # (action_dim,) in [-1, 1]; None = hold
    runner.status.done, runner.status.success, runner.summary()

An `EpisodeRunner` wraps a simulated task and keeps the bookkeeping a robot-in-the-loop
evaluation needs, independent of ROS. The task is a MetaWorld v3 task (a `MetaWorldEnv`, point
clouds + agent_pos) or a task of the evaluation registry that can be served (`EnvEntry.serve`,
e.g. obstacle-2d: agent_pos only); `served_task` says which, and names the valid ones otherwise.
A runner keeps to its family: a reset may switch between MetaWorld tasks, not to another one.

- Hold: `step(None)` applies a zero command; MetaWorld keeps the last commanded gripper effort
  (an object in the gripper stays held). Held steps count as episode steps.
- End of an episode: the success flag held on `stop_on_success` steps (1: the first success,
  as `sdm eval` stops; 0: never end early, unless the task itself ends there),
  `max_episode_steps` reached, a terminal failure of the task (`failed`, e.g. obstacle-2d's
  collision), or `end()`. After the end no observation is rendered (`step()` returns None for
  the final step): the policy has nothing left to act on.
- Simulation time: starts at 0 and advances by `control_period_s` on every reset and step, so
  it is monotonic across episodes (ROS time must not jump backwards) and the first observation
  of an episode is never stamped 0.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.sim.metaworld_env import DEFAULT_MAX_EPISODE_STEPS, MetaWorldEnv

# Names of agent_pos's 9 values, in order (the metaworld_sim robot profile's state_names; the
# sim bridge's JointState names).
STATE_NAMES = (
    "hand_x",
    "hand_y",
    "hand_z",
    "right_finger_x",
    "right_finger_y",
    "right_finger_z",
    "left_finger_x",
    "left_finger_y",
    "left_finger_z",
)
ACTION_NAMES = ("dx", "dy", "dz", "grip")  # MetaWorld's action, each in [-1, 1]
FULL_STATE_DIM = 39  # MetaWorld's state vector (what the scripted experts act on)
END_REASONS = ("running", "success", "max_steps", "failed", "ended", "reset")
METAWORLD = "metaworld"


def served_task(name: str) -> tuple[str, str]:
    """Return (canonical task name, family) of a task the sim bridge can serve.

    Family "metaworld" for MetaWorld v3 tasks, else the registry name of the task
    (sdm_policy_core.eval.envs). Raises UnknownTaskError listing the tasks, or ValueError for
    a registered task that is not served (no `serve`).
    """
    from sdm_policy_core.eval.envs import METAWORLD as REGISTRY_METAWORLD
    from sdm_policy_core.eval.envs import registered_tasks, resolve_eval_task

    task, entry = resolve_eval_task(name)
    if entry.name == REGISTRY_METAWORLD:
        return task, METAWORLD
    if entry.serve is None:
        served = [t for t in registered_tasks() if resolve_eval_task(t)[1].serve is not None]
        raise ValueError(
            f"task {task!r} is not served by the sim bridge; it serves MetaWorld v3 tasks and "
            f"{', '.join(served)} (evaluate {task} in process with `sdm eval --task {task}`)"
        )
    return task, entry.name


@dataclass
class EpisodeStatus:
    """Progress of the current (or last) episode; the fields of sdm_msgs/EpisodeStatus + more."""

    episode_id: int = 0  # 0 before the first reset, then 1, 2, ...
    step: int = 0  # control steps taken in this episode
    max_steps: int = DEFAULT_MAX_EPISODE_STEPS
    success: bool = False  # MetaWorld's success flag was set on some step of this episode
    done: bool = True  # the episode has ended (True before the first reset)
    task: str = ""
    seed: int = 0  # reset seed of this episode (object / goal placement)
    end_reason: str = "running"  # one of END_REASONS
    first_success_step: int = 0  # 1-based step of the first success (0: none)
    success_steps: int = 0
    held_steps: int = 0  # steps taken with the hold action (no fresh command)
    commanded_steps: int = 0  # steps taken with a received command
    reward: float = 0.0  # sum of MetaWorld rewards
    sim_time_ns: int = 0  # [ns] simulation time of the newest state
    start_wall: float = 0.0  # [s] time.monotonic() at the reset
    end_wall: float = 0.0  # [s] time.monotonic() at the end (0 while running)


@dataclass
class EpisodeRunner:
    """The simulator as a robot; see the module docstring.

    task: task of the first episode (`served_task`: MetaWorld v3, '-v3' may be left out, or a
        served registry task such as obstacle-2d).
    control_period_s: [s] simulation time per control step (1 / control rate).
    max_episode_steps: steps before an episode ends unsuccessfully; 0: the task's own
        (MetaWorld 200, obstacle-2d 60).
    stop_on_success: end the episode once success was reported on this many steps (0: never).
    env_kwargs: more MetaWorldEnv arguments (num_points, image_size, ...); unused by the
        registry tasks.
    """

    task: str
    control_period_s: float = 0.1
    max_episode_steps: int = 0
    stop_on_success: int = 1
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.task, self.family = served_task(self.task)
        if not self.control_period_s > 0:
            raise ValueError(f"control_period_s must be > 0, got {self.control_period_s}")
        if self.max_episode_steps < 0:
            raise ValueError(
                f"max_episode_steps must be >= 1 (0: the task's own), got {self.max_episode_steps}"
            )
        if self.stop_on_success < 0:
            raise ValueError(f"stop_on_success must be >= 0, got {self.stop_on_success}")
        self.env = self._make_env(self.task)
        self.max_episode_steps = int(self.env.max_episode_steps)
        self.status = EpisodeStatus(max_steps=self.max_episode_steps, task=self.task)
        self._period_ns = round(self.control_period_s * 1e9)
        self._grip = 0.0  # MetaWorld: gripper effort of the hold action, the last commanded one

    def _make_env(self, task: str) -> Any:
        steps = self.max_episode_steps or None
        if self.family == METAWORLD:
            steps = steps or DEFAULT_MAX_EPISODE_STEPS
            return MetaWorldEnv(task, max_episode_steps=steps, **self.env_kwargs)
        from sdm_policy_core.eval.envs import resolve_eval_task

        return resolve_eval_task(task)[1].serve(task, steps)

    @property
    def action_dim(self) -> int:
        return int(self.env.action_dim)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Names of agent_pos's values: MetaWorld's STATE_NAMES, else the env's `state_names`.

        agent_pos_0, agent_pos_1, ... when it has none.
        """
        if self.family == METAWORLD:
            return STATE_NAMES
        names = getattr(self.env, "state_names", None)
        if names:
            return tuple(names)
        return tuple(f"agent_pos_{i}" for i in range(self.env.state_dim))

    @property
    def observation_keys(self) -> tuple[str, ...]:
        """Keys of the observations `reset`/`step` return ("point_cloud", "agent_pos", ...)."""
        if self.family == METAWORLD:
            keys = (POINT_CLOUD, AGENT_POS)
            return keys + ((IMAGE,) if self.env.image_size else ())
        return tuple(self.env.observation_keys)

    @property
    def active(self) -> bool:
        """An episode is running (reset and not yet ended)."""
        return not self.status.done

    @property
    def hold_action(self) -> np.ndarray:
        """A zero command: stand still, keeping MetaWorld's last commanded gripper effort.

        MetaWorld: (4,) zero hand displacement with the last commanded gripper effort; other
        tasks zeros (velocity commands: stand still).
        """
        if self.family == METAWORLD:
            return np.array([0.0, 0.0, 0.0, self._grip])
        return np.zeros(self.action_dim)

    def reset(self, seed: int, task: str | None = None) -> dict[str, np.ndarray]:
        """Start a new episode (ending a running one with reason 'reset'); return its first obs.

        Returns its first observation. Raises UnknownTaskError (listing the tasks) or
        ValueError (seed < 0, a task of another family than this runner's).
        """
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        task, family = served_task(task) if task else (self.task, self.family)
        if family != self.family:
            raise ValueError(
                f"this sim bridge serves {self.task!r} ({self.family}); {task!r} needs a bridge "
                f"of its own (task:={task})"
            )
        if self.active:
            self.end("reset")
        if task != self.task:
            env = self._make_env(task)  # build first: a failure keeps the old env working
            self.env.close()
            self.env, self.task = env, task
        obs = self.env.reset(seed=int(seed))
        old = self.status
        self.status = EpisodeStatus(
            episode_id=old.episode_id + 1,
            max_steps=self.max_episode_steps,
            done=False,
            task=task,
            seed=int(seed),
            sim_time_ns=old.sim_time_ns + self._period_ns,
            start_wall=time.monotonic(),
        )
        self._grip = 0.0
        return obs

    def step(self, action: np.ndarray | None) -> dict[str, np.ndarray] | None:
        """Run one control step with `action` (action_dim,) in [-1, 1] (None: hold).

        Returns the new observation, or None when this step ended the episode. Raises
        RuntimeError when no episode is running and ValueError for a malformed action.
        """
        if not self.active:
            raise RuntimeError("no episode is running: reset first")
        st = self.status
        if action is None:
            action = self.hold_action
            st.held_steps += 1
        else:
            action = np.asarray(action, dtype=np.float64).reshape(-1)
            if action.shape != (self.action_dim,) or not np.isfinite(action).all():
                raise ValueError(f"action must be {self.action_dim} finite values, got {action}")
            if self.family == METAWORLD:
                self._grip = float(np.clip(action[3], -1.0, 1.0))
            st.commanded_steps += 1
        if self.family == METAWORLD:
            _, reward, success, done, _ = self.env.step(action, observe=False)
            obs = None
        else:  # state-only tasks: observing costs nothing
            obs, reward, done, info = self.env.step(action)
            success = bool(info["success"])
        st.step += 1
        st.reward += reward
        st.sim_time_ns += self._period_ns
        if success:
            st.success_steps += 1
            if not st.success:
                st.success, st.first_success_step = True, st.step
        if self.stop_on_success and st.success_steps >= self.stop_on_success:
            self.end("success")
        elif done:  # MetaWorld: the step limit; other tasks also end on success or a failure
            limit = st.step >= self.max_episode_steps
            self.end("max_steps" if limit else "success" if success else "failed")
        if st.done:
            return None
        return self.env.observe() if obs is None else obs

    def end(self, reason: str = "ended") -> None:
        """End the running episode (no-op when none runs)."""
        if reason not in END_REASONS:
            raise ValueError(f"reason must be one of {END_REASONS}, got {reason!r}")
        if self.active:
            self.status.done, self.status.end_reason = True, reason
            self.status.end_wall = time.monotonic()

    def full_state(self) -> np.ndarray | None:
        """(39,) float64 MetaWorld state vector of the newest step; None for other tasks.

        What the scripted experts act on.
        """
        return self.env.state if self.family == METAWORLD else None

    def summary(self) -> dict[str, Any]:
        """Describe the current (or last) episode as a JSON-able dict.

        With `wall_s` [s] from the reset to the end (or now) and `achieved_hz` = steps / wall_s.
        """
        st = asdict(self.status)
        end = self.status.end_wall or time.monotonic()
        wall = max(end - self.status.start_wall, 0.0) if self.status.episode_id else 0.0
        st.pop("start_wall"), st.pop("end_wall")
        st["wall_s"] = wall
        st["achieved_hz"] = self.status.step / wall if wall > 0 else 0.0
        return st

    def close(self) -> None:
        self.env.close()
