# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Scripted experts of MetaWorld (`metaworld.policies`), one per v3 task, for `sdm demos`."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

import numpy as np

from sdm_policy_core.sim.metaworld_env import MetaWorldEnv, resolve_task


class _Demonstrator(ABC):
    """What `record_demos` drives; it acts on the state vector.

    `routes` are the ways it shows one placement (episode `index` of a placement takes
    routes[index % len(routes)]).
    """

    routes: tuple[str, ...] = ("",)
    route = ""

    def begin_episode(self, index: int) -> None:
        """Start episode `index` of a placement."""
        self.route = self.routes[index % len(self.routes)]

    def act(self, env: MetaWorldEnv) -> np.ndarray:
        """(4,) float32 action for the env's current state, clipped to [-1, 1]."""
        return self.act_on_state(env.state)

    @abstractmethod
    def act_on_state(self, state: np.ndarray) -> np.ndarray:
        """(4,) float32 action for a (39,) MetaWorld state vector."""


class ScriptedExpert(_Demonstrator):
    """MetaWorld's hand-written policy of a task: acts on the (39,) state vector.

    expert = ScriptedExpert("button-press-v3")
    action = expert.act(env)        # (4,) float32 in [-1, 1]
    """

    def __init__(self, task: str) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self.task = resolve_task(task)
        if self.task not in ENV_POLICY_MAP:  # pragma: no cover - metaworld ships all 50
            raise ValueError(f"metaworld.policies has no scripted expert for {self.task}")
        self.policy = ENV_POLICY_MAP[self.task]()  # one way, no state between steps

    def act_on_state(self, state: np.ndarray) -> np.ndarray:
        """(4,) float32 action for a (39,) MetaWorld state vector."""
        with warnings.catch_warnings():  # "Constant(s) may be too high": the env clips anyway
            warnings.simplefilter("ignore", UserWarning)
            action = self.policy.get_action(np.asarray(state, dtype=np.float64))
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)


# The wall of MetaWorld's *-wall-v3 tasks (sawyer_*_wall_v3.xml: a box centred at (0.1, 0.75,
# 0.06) m with half sizes (0.12, 0.01, 0.06) m), world frame, metres.
WALL_X = (-0.02, 0.22)
WALL_Y = (0.74, 0.76)
WALL_TOP = 0.12
ROUTES = ("left", "right")
# Tasks whose object starts in front of that wall and must reach a goal behind it.
TWO_ROUTE_TASKS = ("pick-place-wall-v3", "push-wall-v3")
EXPERTS = ("scripted", "two-route")


class TwoRouteExpert(_Demonstrator):
    """Demonstrations with two modes: carry the object around the wall on the left or the right.

    MetaWorld's scripted experts are deterministic: given the scene, every demonstration does
    the same thing, so a teacher's naive one-step call (roughly the mean action) is already a
    good policy. People do not demonstrate like that. This expert reproduces the simplest case
    of a teleoperator's choice: it grasps the object as MetaWorld's expert does, holds still
    while the gripper closes (`close_steps`), lifts it by `lift` m (below the wall's top), takes
    it around the wall on the route of the episode (`begin_episode`: even episodes left, odd
    ones right), and hands back to MetaWorld's expert behind the wall. `sdm demos` shows each
    placement both ways, so the same scene is demonstrated with two different action
    sequences: a policy cannot tell the route from the observation, it has to choose. Both
    routes succeed; their mean runs into the wall.

    expert = TwoRouteExpert("pick-place-wall-v3")
    expert.begin_episode(0)          # route "left"
    action = expert.act(env)         # (4,) float32 in [-1, 1]
    """

    routes = ROUTES

    def __init__(
        self, task: str, margin: float = 0.08, lift: float = 0.05, close_steps: int = 8
    ) -> None:
        self.base = ScriptedExpert(task)
        self.task = self.base.task
        if self.task not in TWO_ROUTE_TASKS:
            raise ValueError(
                f"the two-route expert needs a wall between the object and the goal; "
                f"{self.task} has none. Use one of {list(TWO_ROUTE_TASKS)}, or --expert scripted"
            )
        self.margin, self.lift, self.close_steps = margin, lift, close_steps
        self.begin_episode(0)

    def begin_episode(self, index: int) -> None:
        """Start an episode; episode `index` takes route ROUTES[index % 2]."""
        super().begin_episode(index)
        self._phase, self._held, self._carry_z = "approach", 0, 0.0

    def act_on_state(self, state: np.ndarray) -> np.ndarray:
        """(4,) float32 action for a (39,) MetaWorld state vector (the expert is stateful)."""
        hand, obj = np.asarray(state[:3], np.float64), np.asarray(state[4:7], np.float64)
        action = self.base.act_on_state(state)  # its gripper command stays in charge
        if self._phase == "approach":
            near = np.linalg.norm(hand[:2] - obj[:2]) <= 0.02 and abs(hand[2] - obj[2]) <= 0.04
            if near and action[3] > 0 and hand[1] < WALL_Y[0]:
                self._phase, self._carry_z = "close", hand[2] + self.lift
        if self._phase == "approach" or self._phase == "behind":
            return action
        x = WALL_X[0] - self.margin if self.route == "left" else WALL_X[1] + self.margin
        if self._phase == "close":
            target = hand
            self._held += 1
            if self._held >= self.close_steps:
                self._phase = "aside"
        if self._phase == "aside":  # beside the wall, still in front of it
            target = np.array([x, WALL_Y[0] - 0.08, self._carry_z])
            if np.linalg.norm(hand[:2] - target[:2]) < 0.02:
                self._phase = "past"
        if self._phase == "past":  # along the wall's side until behind it
            target = np.array([x, WALL_Y[1] + 0.08, self._carry_z])
            if hand[1] > WALL_Y[1] + 0.06:
                self._phase = "behind"
                return action
        delta = np.clip(10.0 * (target - hand), -1.0, 1.0)  # MetaWorld's experts use p = 10
        return np.array([*delta, action[3]], dtype=np.float32)


def make_expert(task: str, kind: str = "scripted") -> ScriptedExpert | TwoRouteExpert:
    """Make the demonstrator `kind` (one of EXPERTS) for `task`."""
    if kind == "scripted":
        return ScriptedExpert(task)
    if kind == "two-route":
        return TwoRouteExpert(task)
    raise ValueError(f"unknown expert {kind!r}; choose one of {list(EXPERTS)}")
