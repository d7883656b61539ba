# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""In-memory replay buffer of demonstration episodes, read from / written to zarr (format 2).

The on-disk layout is Diffusion Policy's / DP3's (ARCHITECTURE.md, dataset contract):

    DATA.zarr/
      data/point_cloud   (T, P, 3|6) float32   xyz in m (+ rgb)
      data/state         (T, Ds)     float32   robot state; called `agent_pos` in observations
      data/action        (T, Da)     float32
      data/img           (T, H, W, 3) uint8    optional
      data/depth         (T, H, W)   float32   optional
      meta/episode_ends  (E,)        int64     cumulative: episode i is [ends[i-1], ends[i])

Every `data/*` array is concatenated over the time steps of all episodes. Arrays are written
with zarr_format=2, time chunks of up to 100 steps (as DP3's scripts) and Blosc zstd level 3,
so DP3 / Diffusion Policy read what we write and we read what they write.

    buffer = ReplayBuffer.create_empty()
    buffer.add_episode({"point_cloud": pc, "state": q, "action": a})   # each (T_ep, ...)
    buffer.save("demos.zarr")
    buffer = ReplayBuffer.load("demos.zarr", keys=["point_cloud", "state", "action"])
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr

from sdm_policy_core.atomic import atomic_directory

DEFAULT_CHUNK_STEPS = 100  # time steps per chunk (DP3's data-generation scripts)
MAX_CHUNK_BYTES = 8 * 2**20  # large frames (e.g. 480x640 images) get fewer steps per chunk


class DatasetError(ValueError):
    """A dataset is missing, malformed or inconsistent; the message says what and where."""


def default_compressor() -> numcodecs.Blosc:
    """Blosc zstd, level 3, byte shuffle: the compressor of DP3's datasets."""
    return numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.SHUFFLE)


def default_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """Choose (steps, *frame_shape) chunks: 100 steps, fewer when one would exceed 8 MiB."""
    frame_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * itemsize)
    steps = max(1, min(DEFAULT_CHUNK_STEPS, MAX_CHUNK_BYTES // frame_bytes))
    return (max(1, min(steps, shape[0])) if shape[0] else steps, *shape[1:])


def validate_episode_ends(
    episode_ends: Any, n_steps: int | None = None, where: str = "meta/episode_ends"
) -> np.ndarray:
    """Check cumulative episode ends and return them as (E,) int64.

    They must be a 1-D integer array, strictly increasing (no empty episodes), start above 0
    and, when `n_steps` is given, end exactly at the number of time steps T of the data arrays.
    """
    ends = np.asarray(episode_ends)
    if ends.ndim != 1:
        raise DatasetError(
            f"{where} must be 1-D (one cumulative end per episode), got shape {ends.shape}"
        )
    integral = np.issubdtype(ends.dtype, np.integer) or (
        np.issubdtype(ends.dtype, np.floating) and bool(np.all(np.mod(ends, 1) == 0))
    )
    if ends.size and not integral:
        raise DatasetError(f"{where} must hold integers, got dtype {ends.dtype}")
    ends = ends.astype(np.int64)
    if ends.size:
        if ends[0] <= 0:
            raise DatasetError(
                f"{where}[0] = {ends[0]}: the first episode must have at least "
                f"one step (episode_ends are cumulative end indices)"
            )
        steps = np.diff(ends)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise DatasetError(
                f"{where} must be strictly increasing (cumulative, no empty "
                f"episodes), but {where}[{i - 1}] = {ends[i - 1]} and "
                f"{where}[{i}] = {ends[i]}"
            )
    last = int(ends[-1]) if ends.size else 0
    if n_steps is not None and last != n_steps:
        raise DatasetError(
            f"{where} ends at {last} but the data arrays have {n_steps} time "
            f"steps; the last episode end must equal the number of steps"
        )
    return ends


class ReplayBuffer:
    """Episodes of named arrays, concatenated over time, held in memory as numpy arrays.

    `buffer[key]` is the (T, ...) array of all steps; `buffer.episode_ends` the (E,) int64
    cumulative ends. Appending is amortised O(1) per step (capacity doubles).
    """

    def __init__(
        self,
        data: Mapping[str, np.ndarray] | None = None,
        episode_ends: Iterable[int] | np.ndarray | None = None,
        meta: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Wrap existing arrays (all with the same first axis T) and their episode ends."""
        data = {k: np.asarray(v) for k, v in (data or {}).items()}
        lengths = {k: v.shape[0] if v.ndim else None for k, v in data.items()}
        if any(n is None for n in lengths.values()):
            raise DatasetError(
                f"data arrays need a time axis; got shapes "
                f"{ {k: v.shape for k, v in data.items()} }"
            )
        if len(set(lengths.values())) > 1:
            raise DatasetError(
                f"data arrays must have the same number of time steps, got {lengths}"
            )
        n_steps = next(iter(lengths.values())) if lengths else 0
        ends = validate_episode_ends(
            [] if episode_ends is None else episode_ends, n_steps if data else None
        )
        if not data and ends.size:
            raise DatasetError("episode_ends given without any data arrays")
        self._store: dict[str, np.ndarray] = data
        self._n_steps = int(n_steps)
        self._episode_ends: list[int] = ends.tolist()
        self.meta: dict[str, np.ndarray] = {
            k: np.asarray(v) for k, v in (meta or {}).items() if k != "episode_ends"
        }

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def create_empty(cls) -> ReplayBuffer:
        """Create a buffer with no keys and no episodes; the first `add_episode` sets the keys."""
        return cls()

    @classmethod
    def load(cls, path: str | Path, keys: Iterable[str] | None = None) -> ReplayBuffer:
        """Read a zarr dataset (directory, or a .zip of one) into memory.

        keys: the `data/` arrays to load (default: all). Only these are read from disk, so
            training on point clouds does not load the images.
        Raises DatasetError when the path is missing or not a zarr group, a key is missing (the
        message lists the keys present) or episode_ends are inconsistent with the data.
        """
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"dataset {path} does not exist")
        try:
            root = _open_group(path)
            for group in ("data", "meta"):
                if group not in root or not isinstance(root[group], zarr.Group):
                    raise DatasetError(
                        f"dataset {path} has no '{group}' group (it has "
                        f"{sorted(root.keys())}); expected the Diffusion Policy / "
                        f"DP3 layout data/<key> + meta/episode_ends"
                    )
            data_group, meta_group = root["data"], root["meta"]
            available = sorted(data_group.array_keys())
            wanted = available if keys is None else list(keys)
            missing = [k for k in wanted if k not in available]
            if missing:
                raise DatasetError(
                    f"dataset {path} has no data/{missing[0]}"
                    f"{' (nor ' + str(missing[1:]) + ')' if missing[1:] else ''}; "
                    f"it has data/{available}"
                )
            if "episode_ends" not in meta_group.array_keys():
                raise DatasetError(f"dataset {path} has no meta/episode_ends")
            data = {k: _read_array(data_group, k, path, "data") for k in wanted}
            meta = {k: _read_array(meta_group, k, path, "meta") for k in meta_group.array_keys()}
        except DatasetError:
            raise
        except Exception as err:  # zarr / numcodecs / JSON errors of a damaged store
            raise DatasetError(
                f"dataset {path} is corrupt or unreadable ({type(err).__name__}: {err}); "
                f"re-create it or restore it from a copy"
            ) from None
        lengths = {k: v.shape[0] if v.ndim else 0 for k, v in data.items()}
        if len(set(lengths.values())) > 1:
            raise DatasetError(
                f"dataset {path}: data arrays have different numbers of time steps {lengths}"
            )
        n_steps = next(iter(lengths.values())) if lengths else None
        if n_steps is None and available:
            n_steps = int(data_group[available[0]].shape[0])
        ends = validate_episode_ends(
            meta.pop("episode_ends"), n_steps, where=f"{path}/meta/episode_ends"
        )
        buffer = cls(meta=meta)
        buffer._store = data
        buffer._n_steps = int(n_steps or 0)
        buffer._episode_ends = ends.tolist()
        return buffer

    # -- queries ---------------------------------------------------------------------------------

    @property
    def episode_ends(self) -> np.ndarray:
        """(E,) int64 cumulative end index of every episode."""
        return np.asarray(self._episode_ends, dtype=np.int64)

    @property
    def n_episodes(self) -> int:
        return len(self._episode_ends)

    @property
    def n_steps(self) -> int:
        return self._n_steps

    def keys(self) -> list[str]:
        return list(self._store)

    def __contains__(self, key: object) -> bool:
        return key in self._store

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __getitem__(self, key: str) -> np.ndarray:
        """(T, ...) array of all time steps of `key` (a view; do not resize it)."""
        if key not in self._store:
            raise KeyError(f"replay buffer has no key {key!r}; it has {self.keys()}")
        return self._store[key][: self._n_steps]

    def episode_slice(self, index: int) -> slice:
        """Time steps [start, end) of episode `index` (negative indices count from the end)."""
        ends = self._episode_ends
        if not -len(ends) <= index < len(ends):
            raise IndexError(f"episode {index} out of range for {len(ends)} episodes")
        index %= len(ends)
        return slice(ends[index - 1] if index > 0 else 0, ends[index])

    def get_episode(self, index: int) -> dict[str, np.ndarray]:
        """{key: (T_ep, ...) array} of one episode (views into the buffer)."""
        s = self.episode_slice(index)
        return {k: self[k][s] for k in self.keys()}

    def __repr__(self) -> str:
        shapes = {k: (tuple(self[k].shape), str(self[k].dtype)) for k in self.keys()}
        return f"ReplayBuffer(episodes={self.n_episodes}, steps={self.n_steps}, data={shapes})"

    # -- writing ---------------------------------------------------------------------------------

    def add_episode(self, episode: Mapping[str, Any]) -> None:
        """Append one episode: {key: (T_ep, ...) array}, T_ep >= 1 and equal for all keys.

        The first episode defines the keys, per-step shapes and dtypes; later episodes must
        match them (values are cast to the stored dtype).
        """
        arrays = {k: np.asarray(v) for k, v in episode.items()}
        if not arrays:
            raise DatasetError("add_episode needs at least one array")
        lengths = {k: v.shape[0] if v.ndim else 0 for k, v in arrays.items()}
        if len(set(lengths.values())) > 1 or min(lengths.values()) < 1:
            raise DatasetError(
                f"add_episode: every array needs the same number (>= 1) of time "
                f"steps on axis 0, got {lengths}"
            )
        if self._store and set(arrays) != set(self._store):
            raise DatasetError(
                f"add_episode: keys {sorted(arrays)} differ from the buffer's "
                f"{sorted(self._store)}"
            )
        for key, value in arrays.items():
            if key in self._store and value.shape[1:] != self._store[key].shape[1:]:
                raise DatasetError(
                    f"add_episode: {key!r} has per-step shape {value.shape[1:]}, "
                    f"the buffer has {self._store[key].shape[1:]}"
                )
        n_new = next(iter(lengths.values()))
        n_total = self._n_steps + n_new
        for key, value in arrays.items():
            store = self._store.get(key)
            if store is None:
                store = np.empty((max(n_total, 16), *value.shape[1:]), dtype=value.dtype)
            elif store.shape[0] < n_total:
                grown = np.empty(
                    (max(n_total, 2 * store.shape[0]), *store.shape[1:]), dtype=store.dtype
                )
                grown[: self._n_steps] = store[: self._n_steps]
                store = grown
            store[self._n_steps : n_total] = value
            self._store[key] = store
        self._n_steps = n_total
        self._episode_ends.append(n_total)

    def save(
        self,
        path: str | Path,
        overwrite: bool = False,
        chunks: Mapping[str, tuple[int, ...]] | None = None,
        compressor: Any | None = None,
    ) -> Path:
        """Write the buffer as a zarr (format 2) directory, atomically; returns the path.

        The dataset is written into a temp sibling directory and renamed into place, so a
        failure never leaves a partial dataset and never damages an existing one.
        overwrite: replace an existing dataset at `path` (a zarr directory only).
        chunks: per-key chunk shapes (default: `default_chunks`).
        compressor: a numcodecs codec (default: Blosc zstd level 3, as DP3).
        """
        path = Path(path)
        if path.exists():
            if not overwrite:
                raise DatasetError(f"{path} exists; pass overwrite=True to replace it")
            if not path.is_dir() or not (
                (path / ".zgroup").exists() or (path / "zarr.json").exists()
            ):
                raise DatasetError(
                    f"{path} exists and is not a zarr dataset; refusing to replace it"
                )
        compressor = default_compressor() if compressor is None else compressor
        chunks = dict(chunks or {})
        with atomic_directory(path) as tmp:
            root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
            data_group = root.create_group("data")
            meta_group = root.create_group("meta")
            for key in self.keys():
                value = np.ascontiguousarray(self[key])
                _write_array(
                    data_group,
                    key,
                    value,
                    chunks.get(key, default_chunks(value.shape, value.itemsize)),
                    compressor,
                )
            ends = self.episode_ends
            _write_array(meta_group, "episode_ends", ends, (max(1, ends.shape[0]),), compressor)
            for key, value in self.meta.items():
                value = np.ascontiguousarray(value)
                _write_array(meta_group, key, value, value.shape or (1,), compressor)
        return path


def data_keys(path: str | Path) -> list[str]:
    """List the sorted `data/` array names of a zarr dataset, without reading any array.

    Raises DatasetError as `ReplayBuffer.load` does (missing path, not a zarr group, no data/).
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset {path} does not exist")
    try:
        root = _open_group(path)
        if "data" not in root or not isinstance(root["data"], zarr.Group):
            raise DatasetError(
                f"dataset {path} has no 'data' group (it has {sorted(root.keys())}); expected "
                f"the Diffusion Policy / DP3 layout data/<key> + meta/episode_ends"
            )
        return sorted(root["data"].array_keys())
    except DatasetError:
        raise
    except Exception as err:  # zarr / JSON errors of a damaged store
        raise DatasetError(
            f"dataset {path} is corrupt or unreadable ({type(err).__name__}: {err}); "
            f"re-create it or restore it from a copy"
        ) from None


def _write_array(
    group: zarr.Group, name: str, value: np.ndarray, chunks: tuple[int, ...], compressor: Any
) -> None:
    chunks = tuple(max(1, int(c)) for c in chunks) if value.ndim else ()
    array = group.create_array(
        name, shape=value.shape, dtype=value.dtype, chunks=chunks, compressors=compressor
    )
    if value.size:
        array[...] = value


def _read_array(group: zarr.Group, key: str, path: Path, where: str) -> np.ndarray:
    """Read one array, turning a damaged chunk or header into a DatasetError that names it."""
    try:
        return group[key][...]
    except Exception as err:  # blosc / zarr / JSON errors from deep inside the store
        raise DatasetError(
            f"dataset {path}: {where}/{key} is corrupt or unreadable ({type(err).__name__}: "
            f"{err}); re-create the dataset or restore it from a copy"
        ) from None


def _open_group(path: Path) -> zarr.Group:
    try:
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise DatasetError(
                    f"dataset {path} is a file but not a zipped zarr store; "
                    f"expected a .zarr directory"
                )
            store = zarr.storage.ZipStore(str(path), mode="r")
            return zarr.open_group(store, mode="r")
        return zarr.open_group(str(path), mode="r")
    except DatasetError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise DatasetError(
            f"dataset {path} is not a zarr group ({err}); expected a .zarr "
            f"directory with data/ and meta/episode_ends"
        ) from None
