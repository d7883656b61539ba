# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Embedded simulation: MetaWorld v3 tasks on MuJoCo (EGL, OSMesa fallback).

With DP3's point-cloud observations, their scripted experts, and demonstration recording.

    from sdm_policy_core.sim import MetaWorldEnv, ScriptedExpert, record_demos
"""

from sdm_policy_core.sim.demos import DemoSummary, episode_seed, record_demos
from sdm_policy_core.sim.experts import (
    EXPERTS,
    TWO_ROUTE_TASKS,
    ScriptedExpert,
    TwoRouteExpert,
    make_expert,
)
from sdm_policy_core.sim.metaworld_env import (
    ACTION_DIM,
    DEFAULT_CROP_HIGH,
    DEFAULT_CROP_LOW,
    DEFAULT_MAX_EPISODE_STEPS,
    STATE_DIM,
    MetaWorldEnv,
    SimulatorError,
    UnknownTaskError,
    resolve_task,
    task_names,
)

__all__ = [
    "ACTION_DIM",
    "DEFAULT_CROP_HIGH",
    "DEFAULT_CROP_LOW",
    "DEFAULT_MAX_EPISODE_STEPS",
    "EXPERTS",
    "STATE_DIM",
    "TWO_ROUTE_TASKS",
    "DemoSummary",
    "MetaWorldEnv",
    "ScriptedExpert",
    "SimulatorError",
    "TwoRouteExpert",
    "UnknownTaskError",
    "episode_seed",
    "make_expert",
    "record_demos",
    "resolve_task",
    "task_names",
]
