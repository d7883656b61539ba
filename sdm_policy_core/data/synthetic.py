# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A small synthetic reaching dataset in the DP3 layout, for tests and benchmarks.

For tests and benchmarks that must run on a bare checkout (no simulator, no download).

Each episode: a goal g ~ U[-0.5, 0.5]^3 marked by a cluster of points on a table of random
points; the state (x, y, z, gripper) moves toward g, the gripper closes near it; the action is
the next state. A policy must read the goal from the cloud to act well.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sdm_policy_core.data.replay_buffer import ReplayBuffer
from sdm_policy_core.keys import ARRAY_ACTION, ARRAY_IMAGE, ARRAY_POINT_CLOUD, ARRAY_STATE


def reaching_episode(
    rng: np.random.Generator, steps: int, num_points: int, image_size: int = 0
) -> dict:
    goal = rng.uniform(-0.5, 0.5, size=3).astype(np.float32)
    state = np.zeros((steps + 1, 4), dtype=np.float32)
    state[0, :3] = rng.uniform(-0.5, 0.5, size=3)
    for t in range(steps):
        delta = goal - state[t, :3]
        state[t + 1, :3] = state[t, :3] + 0.25 * delta + rng.normal(0, 0.005, 3)
        state[t + 1, 3] = 1.0 if np.linalg.norm(delta) < 0.1 else 0.0
    n_goal = num_points // 4
    table = rng.uniform(-0.6, 0.6, size=(steps, num_points - n_goal, 3)).astype(np.float32)
    table[..., 2] = -0.6
    marker = goal + rng.normal(0, 0.02, size=(steps, n_goal, 3)).astype(np.float32)
    cloud = np.concatenate([table, marker], axis=1)
    episode = {
        ARRAY_POINT_CLOUD: cloud.astype(np.float32),
        ARRAY_STATE: state[:-1],
        ARRAY_ACTION: state[1:].copy(),
    }
    if image_size:
        # A top view: grey table, the goal as a red square (its x, y in pixels).
        image = np.full((steps, image_size, image_size, 3), 90, dtype=np.uint8)
        u, v = ((goal[:2] + 0.6) / 1.2 * (image_size - 1)).astype(int)
        r = max(1, image_size // 16)
        image[:, max(0, v - r) : v + r + 1, max(0, u - r) : u + r + 1] = (220, 30, 30)
        episode[ARRAY_IMAGE] = image
    return episode


def make_reaching_dataset(
    path: str | Path | None,
    episodes: int = 8,
    steps: int = 24,
    num_points: int = 64,
    seed: int = 0,
    image_size: int = 0,
) -> ReplayBuffer:
    """Write (when `path` is given) and return a synthetic dataset of `episodes` episodes.

    With `image_size` > 0 it also holds `img` (T, S, S, 3) uint8 top views.
    """
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer.create_empty()
    for _ in range(episodes):
        buffer.add_episode(reaching_episode(rng, steps, num_points, image_size))
    if path is not None:
        buffer.save(path, overwrite=True)
    return buffer
