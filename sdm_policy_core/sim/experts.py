"""Scripted experts of MetaWorld (`metaworld.policies`), one per v3 task, for `sdm demos`."""

from __future__ import annotations

import warnings

import numpy as np

from sdm_policy_core.sim.metaworld_env import MetaWorldEnv, resolve_task


class ScriptedExpert:
    """MetaWorld's hand-written policy of a task: acts on the (39,) state vector.

    expert = ScriptedExpert("button-press-v3")
    action = expert.act(env)        # (4,) float32 in [-1, 1]
    """

    def __init__(self, task: str) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self.task = resolve_task(task)
        if self.task not in ENV_POLICY_MAP:  # pragma: no cover - metaworld ships all 50
            raise ValueError(f"metaworld.policies has no scripted expert for {self.task}")
        self.policy = ENV_POLICY_MAP[self.task]()

    def act(self, env: MetaWorldEnv) -> np.ndarray:
        """(4,) float32 action for the env's current state, clipped to [-1, 1]."""
        return self.act_on_state(env.state)

    def act_on_state(self, state: np.ndarray) -> np.ndarray:
        """(4,) float32 action for a (39,) MetaWorld state vector."""
        with warnings.catch_warnings():  # "Constant(s) may be too high": the env clips anyway
            warnings.simplefilter("ignore", UserWarning)
            action = self.policy.get_action(np.asarray(state, dtype=np.float64))
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
