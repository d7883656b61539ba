# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Per-dimension linear normaliser of actions and observations, stored inside checkpoints.

Matches Diffusion Policy's / DP3's `LinearNormalizer` in `limits` mode: every feature (the last
axis of an array) is mapped affinely from its fitted [min, max] to [-1, 1]:

    y = x * scale + offset,    x = (y - offset) / scale

A degenerate feature (max - min < `range_eps`, e.g. a gripper that never moves) gets scale 1 and
an offset that maps the constant to 0, so nothing is divided by zero and unnormalising returns the
constant. `identity` mode (scale 1, offset 0) leaves a key as it is (e.g. point clouds in metres).

The normaliser is an `nn.Module` whose buffers are plain float32 tensors named
`{key}.scale`, `{key}.offset`, `{key}.min`, `{key}.max`, `{key}.mean`, `{key}.std`, so it moves
with `.to(device)`, appears in a policy's `state_dict()` under `normalizer.` and is saved with
safetensors like any other weights. Loading a state dict (directly or through a parent module)
rebuilds the keys it holds; scale and offset fully define the transform.

    normalizer = LinearNormalizer()
    normalizer.fit({"action": actions, "agent_pos": states}, mode="limits")
    naction = normalizer.normalize("action", action)         # (B, T, Da) in [-1, 1]
    action = normalizer.unnormalize("action", naction)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

NormalizerMode = Literal["limits", "identity"]
MODES: tuple[str, ...] = ("limits", "identity")
STAT_NAMES: tuple[str, ...] = ("scale", "offset", "min", "max", "mean", "std")


class _FieldStats(nn.Module):
    """Buffers of one normalised key; every buffer has shape (D,) with D the feature size."""

    def __init__(self, dim: int, mode: str = "limits") -> None:
        super().__init__()
        for name in STAT_NAMES:
            self.register_buffer(name, torch.zeros(dim, dtype=torch.float32))
        self.mode = mode

    @property
    def dim(self) -> int:
        return int(self.scale.shape[0])


def _column_stats(key: str, value: Any) -> tuple[np.ndarray, ...]:
    """Compute (min, max, mean, std) per feature of an (..., D) array or a list of such arrays.

    A list of chunks, e.g. the episodes of a split; returned as (D,) float64 arrays. Works
    block-wise in float64 so fitting a large point-cloud array costs little extra memory.
    """
    chunks = (
        list(value)
        if isinstance(value, (list, tuple))
        and value
        and all(isinstance(v, (np.ndarray, torch.Tensor)) for v in value)
        else [value]
    )
    x_min = x_max = total = total_sq = None
    count = 0
    for chunk in chunks:
        if isinstance(chunk, torch.Tensor):
            chunk = chunk.detach().cpu().numpy()
        array = np.asarray(chunk)
        if array.ndim < 1:
            raise ValueError(f"normalizer.fit: {key!r} must have a feature axis, got a scalar")
        if (
            array.dtype == np.bool_
            or not np.issubdtype(array.dtype, np.number)
            or (np.issubdtype(array.dtype, np.complexfloating))
        ):
            raise ValueError(
                f"normalizer.fit: {key!r} must be real numbers, got dtype {array.dtype}"
            )
        rows = array.reshape(-1, array.shape[-1])
        if x_min is not None and rows.shape[1] != x_min.shape[0]:
            raise ValueError(f"normalizer.fit: chunks of {key!r} have different feature sizes")
        for start in range(0, rows.shape[0], 2**16):
            block = rows[start : start + 2**16].astype(np.float64)
            if not np.all(np.isfinite(block)):
                raise ValueError(f"normalizer.fit: {key!r} contains NaN or infinite values")
            b_min, b_max = block.min(axis=0), block.max(axis=0)
            b_sum, b_sq = block.sum(axis=0), np.square(block).sum(axis=0)
            if x_min is None:
                x_min, x_max, total, total_sq = b_min, b_max, b_sum, b_sq
            else:
                x_min, x_max = np.minimum(x_min, b_min), np.maximum(x_max, b_max)
                total, total_sq = total + b_sum, total_sq + b_sq
            count += block.shape[0]
    if count == 0:
        raise ValueError(f"normalizer.fit: {key!r} is empty")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return x_min, x_max, mean, std


class LinearNormalizer(nn.Module):
    """Per-key, per-feature affine map to [output_min, output_max] (default [-1, 1])."""

    def __init__(self) -> None:
        super().__init__()

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        data: Mapping[str, np.ndarray | torch.Tensor],
        mode: NormalizerMode | Mapping[str, NormalizerMode] = "limits",
        output_min: float = -1.0,
        output_max: float = 1.0,
        range_eps: float = 1e-4,
    ) -> LinearNormalizer:
        """Fit (or refit) the statistics of every key in `data`; other keys are kept.

        data: key -> array of shape (..., D), or a list of such arrays (e.g. one per episode);
            statistics are taken over all leading axes, per feature of the last axis (e.g.
            actions (T, Da), point clouds (T, P, 3)).
        mode: one mode for all keys or a mapping key -> mode ('limits' or 'identity'); keys
            missing from the mapping use 'limits'.
        range_eps: features whose max - min is below this are degenerate (see module doc).
        Returns self.
        """
        if output_max <= output_min:
            raise ValueError(
                f"normalizer.fit: output_max={output_max} must exceed output_min={output_min}"
            )
        for key, value in data.items():
            key_mode = mode if isinstance(mode, str) else mode.get(key, "limits")
            if key_mode not in MODES:
                raise ValueError(
                    f"normalizer.fit: mode for {key!r} must be one of {MODES}, got {key_mode!r}"
                )
            x_min, x_max, mean, std = _column_stats(key, value)
            if key_mode == "limits":
                # Same arithmetic as Diffusion Policy's _fit(mode='limits').
                x_range = x_max - x_min
                degenerate = x_range < range_eps
                x_range[degenerate] = output_max - output_min
                scale = (output_max - output_min) / x_range
                offset = output_min - scale * x_min
                offset[degenerate] = (output_max + output_min) / 2 - x_min[degenerate]
            else:
                scale, offset = np.ones_like(x_min), np.zeros_like(x_min)
            stats = {
                "scale": scale,
                "offset": offset,
                "min": x_min,
                "max": x_max,
                "mean": mean,
                "std": std,
            }
            self._set_field(
                key,
                {k: torch.as_tensor(v, dtype=torch.float32) for k, v in stats.items()},
                key_mode,
            )
        return self

    def _set_field(self, key: str, stats: Mapping[str, torch.Tensor], mode: str) -> None:
        if not key.isidentifier() or (key not in self._modules and hasattr(self, key)):
            raise ValueError(
                f"normalizer key {key!r} must be a Python identifier that is not "
                f"an nn.Module attribute"
            )
        dim = int(stats["scale"].shape[0])
        field = _FieldStats(dim, mode)
        for name in STAT_NAMES:
            value = stats[name].detach().to(torch.float32).reshape(-1)
            if value.shape[0] != dim:
                raise ValueError(
                    f"normalizer {key}.{name} has {value.shape[0]} features, {key}.scale has {dim}"
                )
            getattr(field, name).copy_(value)
        device = next((b.device for b in self.buffers()), None)
        self.add_module(key, field if device is None else field.to(device))

    # -- queries ---------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Names of the fitted keys (e.g. ['action', 'agent_pos'])."""
        return list(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def mode(self, key: str) -> str:
        """'limits' or 'identity' (informative; the transform is defined by scale/offset)."""
        return self._field(key).mode

    def stats(self, key: str) -> dict[str, torch.Tensor]:
        """Return the (D,) float32 statistics of `key`: scale, offset, min, max, mean, std."""
        field = self._field(key)
        return {name: getattr(field, name) for name in STAT_NAMES}

    def _field(self, key: str) -> _FieldStats:
        field = self._modules.get(key)
        if field is None:
            raise KeyError(
                f"normalizer has no key {key!r}; it has {self.keys()} "
                f"(fit it on the dataset or load it from the checkpoint)"
            )
        return field  # type: ignore[return-value]

    # -- transforms ------------------------------------------------------------------------------

    def _affine(self, key: str, x: Any) -> tuple[Any, Any, Any]:
        field = self._field(key)
        if x.shape[-1] != field.dim:
            raise ValueError(
                f"normalizer {key!r} has {field.dim} features but the input has "
                f"shape {tuple(x.shape)} (last axis must be {field.dim})"
            )
        if isinstance(x, np.ndarray):
            dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
            return (
                x.astype(dtype, copy=False),
                field.scale.cpu().numpy().astype(dtype),
                field.offset.cpu().numpy().astype(dtype),
            )
        dtype = x.dtype if x.is_floating_point() else torch.float32
        return (x.to(dtype), field.scale.to(x.device, dtype), field.offset.to(x.device, dtype))

    def normalize(self, key: str, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """(..., D) raw values -> (..., D) normalised values (same type, device, float dtype)."""
        x, scale, offset = self._affine(key, x)
        return x * scale + offset

    def unnormalize(self, key: str, y: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """(..., D) normalised values -> (..., D) raw values; inverse of `normalize`."""
        y, scale, offset = self._affine(key, y)
        return (y - offset) / scale

    def normalize_dict(self, data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalise every entry whose key is fitted; other entries pass through unchanged."""
        return {k: self.normalize(k, v) if k in self else v for k, v in data.items()}

    # -- (de)serialisation -----------------------------------------------------------------------

    def _load_from_state_dict(
        self,
        state_dict: dict[str, torch.Tensor],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Rebuild the fields from the stored keys before torch copies the buffers, so a fresh
        # (unfitted) normaliser loads a fitted one directly or through a parent module.
        grouped: dict[str, dict[str, torch.Tensor]] = {}
        for full_key, value in state_dict.items():
            if not full_key.startswith(prefix):
                continue
            parts = full_key[len(prefix) :].split(".")
            if len(parts) != 2 or parts[1] not in STAT_NAMES:
                continue  # torch reports it as unexpected
            grouped.setdefault(parts[0], {})[parts[1]] = value
        if grouped:  # a state dict with normaliser entries replaces all keys
            for key in list(self._modules):
                if key not in grouped:
                    del self._modules[key]
        for key, stats in grouped.items():
            missing = [n for n in STAT_NAMES if n not in stats]
            if missing:
                error_msgs.append(f"normalizer {key!r} lacks {missing} in the state dict")
                continue
            identity = bool(torch.all(stats["scale"] == 1) and torch.all(stats["offset"] == 0))
            try:
                self._set_field(key, stats, "identity" if identity else "limits")
            except ValueError as err:
                error_msgs.append(str(err))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def to_json(self) -> dict[str, Any]:
        """Human-readable statistics: {key: {'mode': str, 'scale': [..], 'offset': [..], ...}}."""
        out: dict[str, Any] = {}
        for key in self.keys():
            out[key] = {"mode": self.mode(key)}
            out[key].update({n: t.cpu().tolist() for n, t in self.stats(key).items()})
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str) -> LinearNormalizer:
        """Inverse of `to_json` (accepts the dict or its JSON text)."""
        if isinstance(data, str):
            data = json.loads(data)
        normalizer = cls()
        for key, entry in data.items():
            missing = [n for n in STAT_NAMES if n not in entry]
            if missing:
                raise ValueError(f"normalizer JSON for {key!r} lacks {missing}")
            stats = {n: torch.tensor(entry[n], dtype=torch.float32) for n in STAT_NAMES}
            normalizer._set_field(key, stats, entry.get("mode", "limits"))
        return normalizer

    def extra_repr(self) -> str:
        return ", ".join(f"{k}: {self._field(k).dim} ({self.mode(k)})" for k in self.keys())
