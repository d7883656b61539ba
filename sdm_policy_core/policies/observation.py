# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Validation of observation batches against a checkpoint's observation spec."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from sdm_policy_core.config import ObservationSpec
from sdm_policy_core.keys import AGENT_POS, IMAGE, POINT_CLOUD
from sdm_policy_core.runtime_base import ObservationError

__all__ = ["ObservationError", "check_observation", "expected_shapes"]


def expected_shapes(spec: ObservationSpec, n_obs_steps: int) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes `(To, ...)` of each observation key the policy needs."""
    shapes: dict[str, tuple[int, ...]] = {AGENT_POS: (n_obs_steps, spec.state_dim)}
    if spec.point_cloud_shape is not None:
        shapes[POINT_CLOUD] = (n_obs_steps, *spec.point_cloud_shape)
    if spec.image_shape is not None:
        shapes[IMAGE] = (n_obs_steps, *spec.image_shape)
    return shapes


def check_observation(obs: Mapping[str, Tensor], spec: ObservationSpec, n_obs_steps: int) -> int:
    """Raise ObservationError unless `obs` is a finite batch fitting `spec`; return B.

    obs: {"point_cloud": (B, To, P, C), "agent_pos": (B, To, Ds), "image": (B, To, 3, H, W)}.
    A cloud with more channels than the spec (xyz+rgb for an xyz policy) is accepted: the
    encoder reads the channels it was trained on.
    """
    batch: int | None = None
    for key, shape in expected_shapes(spec, n_obs_steps).items():
        if key not in obs:
            raise ObservationError(
                f"observation is missing {key!r} (expected shape (B, "
                f"{', '.join(map(str, shape))})); got keys {sorted(obs)}"
            )
        value = obs[key]
        if not isinstance(value, Tensor):
            raise ObservationError(
                f"observation {key!r} must be a torch.Tensor, got {type(value)}"
            )
        got = tuple(value.shape)
        ok = len(got) == len(shape) + 1 and got[1:] == shape
        if key == POINT_CLOUD and len(got) == 4 and got[1:3] == shape[:2] and got[3] >= shape[2]:
            ok = True
        if not ok:
            raise ObservationError(
                f"observation {key!r} has shape {got}, expected (B, {', '.join(map(str, shape))})"
                f" from the checkpoint (n_obs_steps={n_obs_steps})"
            )
        if batch is None:
            batch = got[0]
        elif got[0] != batch:
            raise ObservationError(
                f"observation {key!r} has batch size {got[0]}, other keys have {batch}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ObservationError(f"observation {key!r} contains NaN or Inf values")
    assert batch is not None
    return batch
