# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""What every policy runtime shares, without torch: action chunk, errors, observation history.

The action chunk, the errors, and the observation history with its validation.

`PolicyRuntime` (PyTorch, runtime.py) and `OnnxPolicyRuntime` (onnxruntime, onnx_runtime.py)
both derive from `RuntimeBase`, so the controller, the node and `sdm eval` call either the same
way: `push(obs)`, `infer(noise=None)`, `step(obs)`, `reset()`, `spec`, `policy_id`, `sampler`,
`steps`, `kind`, `generator.manual_seed(seed)`, `set_sampler(...)`.

This module imports numpy and the config dataclasses only: a robot's torch-free install
(requirements/deploy.txt) imports it.
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sdm_policy_core.config import ObservationSpec
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD


class ObservationError(ValueError):
    """An observation does not fit the policy; the message names expected and received."""


class PolicyOutputError(RuntimeError):
    """The model produced non-finite actions; nothing may be sent to a robot."""


@dataclass
class ActionChunk:
    """Actions of one inference call, in robot units."""

    actions: np.ndarray  # (n_action_steps, Da) float32: execute these, in order
    action_pred: np.ndarray  # (horizon, Da) float32: the whole predicted sequence
    inference_time: float  # [s] wall-clock time of the call
    sampler: str
    steps: int  # network evaluations made (1 for one-step)
    policy_id: str


def checkpoint_policy_id(checkpoint: str | Path, step: int | None) -> str:
    """Return the id of a checkpoint's policy, the same on either runtime.

    '<run>/<checkpoint>@<step>' (run: the directory above checkpoints/; without '@<step>' when
    the step is unknown).
    """
    checkpoint = Path(checkpoint)
    run = checkpoint.resolve().parent.parent.name
    return f"{run}/{checkpoint.name}" + (f"@{step}" if step is not None else "")


class NumpyNoise:
    """The runtime's noise stream: numpy default_rng(seed) standard normals, float32.

    Offers `manual_seed` like torch.Generator, so callers re-seed either runtime alike.
    """

    def __init__(self, seed: int = 0) -> None:
        self.manual_seed(seed)

    def manual_seed(self, seed: int) -> NumpyNoise:
        self.seed = int(seed)
        self._rng = np.random.default_rng(self.seed)
        return self

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.standard_normal(shape, dtype=np.float32)


class RuntimeBase(abc.ABC):
    """Observation history of `n_obs_steps` and its validation.

    Subclasses set `spec`, `n_obs_steps`, `n_action_steps`, `horizon` and call
    `_init_history()`, and implement `infer(noise=None) -> ActionChunk`.
    """

    spec: ObservationSpec
    n_obs_steps: int
    n_action_steps: int
    horizon: int
    policy_id: str = ""
    sampler: str = ""
    steps: int = 0
    quantization: str | None = None  # an exported graph's ("int8"); None: float weights

    def _init_history(self) -> None:
        self._history: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs_steps)

    # -- observations ----------------------------------------------------------------------------
    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of one observation per key (no time axis)."""
        shapes: dict[str, tuple[int, ...]] = {AGENT_POS: (self.spec.state_dim,)}
        if self.spec.point_cloud_shape is not None:
            shapes[POINT_CLOUD] = tuple(self.spec.point_cloud_shape)
        if self.spec.image_shape is not None:
            c, h, w = self.spec.image_shape
            shapes[IMAGE] = (h, w, c)
        return shapes

    def _zero_observation(self) -> dict[str, np.ndarray]:
        return {
            k: np.zeros(s, dtype=np.uint8 if k == IMAGE else np.float32)
            for k, s in self.expected_shapes().items()
        }

    def validate(self, observation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return checked copies of one observation step; ObservationError names what is wrong."""
        out = {}
        for key, shape in self.expected_shapes().items():
            if key not in observation:
                raise ObservationError(
                    f"observation is missing {key!r} (shape {shape}); got {sorted(observation)}"
                )
            value = np.asarray(observation[key])
            got = value.shape
            if key == POINT_CLOUD and value.ndim == 2 and got[0] == shape[0] and got[1] > shape[1]:
                value = value[:, : shape[1]]  # xyz of an xyz+rgb cloud for an xyz policy
            elif got != shape:
                raise ObservationError(
                    f"observation {key!r} has shape {got}, the checkpoint expects {shape}"
                )
            if key == IMAGE:
                if value.dtype != np.uint8:
                    raise ObservationError(f"observation 'image' must be uint8, got {value.dtype}")
            else:
                if not np.issubdtype(value.dtype, np.number):
                    raise ObservationError(
                        f"observation {key!r} must be numeric, got {value.dtype}"
                    )
                value = value.astype(np.float32, copy=True)
                if not np.isfinite(value).all():
                    raise ObservationError(f"observation {key!r} contains NaN or Inf values")
            out[key] = value
        return out

    def reset(self) -> None:
        """Forget the history (new episode); the next observation fills it."""
        self._history.clear()

    def push(self, observation: dict[str, np.ndarray]) -> None:
        """Validate and append one observation step to the history."""
        obs = self.validate(observation)
        if not self._history:
            for _ in range(self.n_obs_steps - 1):
                self._history.append(obs)
        self._history.append(obs)

    # -- inference -------------------------------------------------------------------------------
    def noise_shape(self) -> tuple[int, int, int]:
        """(1, horizon, Da): the sampler's initial noise of one call."""
        return (1, self.horizon, self.spec.action_dim)

    def check_noise(self, noise: np.ndarray) -> np.ndarray:
        """Check initial noise (horizon, Da) or (1, horizon, Da) -> (1, horizon, Da) float32.

        ValueError naming the expected shape.
        """
        value = np.asarray(noise)
        shape = self.noise_shape()
        if value.shape not in (shape, shape[1:]):
            raise ValueError(f"noise must have shape {shape} or {shape[1:]}, got {value.shape}")
        value = value.reshape(shape).astype(np.float32, copy=False)
        if not np.isfinite(value).all():
            raise ValueError("noise contains NaN or Inf values")
        return value

    @abc.abstractmethod
    def infer(self, noise: np.ndarray | None = None) -> ActionChunk:
        """Plan an action chunk from the current history.

        `noise` (1, horizon, Da) replaces the sampler's own draw of initial noise.
        """

    def _require_history(self) -> None:
        if not self._history:
            raise ObservationError("no observation yet: call push() or step() first")

    def _chunk(self, action_pred: np.ndarray, elapsed: float) -> ActionChunk:
        """Cut the chunk to execute from a predicted sequence (horizon, Da).

        Actions start at the newest observation step (index n_obs_steps - 1); non-finite output
        raises PolicyOutputError.
        """
        start = self.n_obs_steps - 1
        actions = action_pred[start : start + self.n_action_steps].copy()
        if not np.isfinite(action_pred).all():
            raise PolicyOutputError(f"{self.policy_id} produced non-finite actions")
        return ActionChunk(
            actions=actions,
            action_pred=action_pred,
            inference_time=elapsed,
            sampler=self.sampler,
            steps=self.steps,
            policy_id=self.policy_id,
        )

    def step(self, observation: dict[str, np.ndarray]) -> ActionChunk:
        """push(observation) then infer()."""
        self.push(observation)
        return self.infer()
