# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Append episodes to a zarr dataset chunk by chunk, with memory bounded by one zarr chunk.

`ReplayBuffer` holds a whole dataset in memory; converters of long recordings (bag2zarr) use
this writer instead. It writes the same layout (ARCHITECTURE.md, dataset contract) with the
same chunking and compressor as `ReplayBuffer.save`:

    writer = StreamingDatasetWriter(directory)           # a new dataset, or an existing one
    writer.append({"point_cloud": pc, "state": q, "action": a})  # (k, ...) steps, any k
    writer.end_episode()        # or writer.discard_episode() to drop what was appended since
    writer.close()              # writes meta/episode_ends

The writer works in place: callers write into a temp copy and swap it in atomically
(`sdm_policy_core.atomic.atomic_directory`), so an existing dataset is never damaged.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import zarr

from sdm_policy_core.data.replay_buffer import (
    DatasetError,
    default_chunks,
    default_compressor,
    validate_episode_ends,
)


class StreamingDatasetWriter:
    """Appends (k, ...) blocks of steps to `data/<key>` arrays of the zarr group at `directory`.

    Steps are staged in memory until they fill whole zarr chunks (at most one chunk per key is
    held), so every chunk is compressed and written once. An existing dataset at `directory`
    is opened for appending: new steps must have its keys, per-step shapes and dtypes.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        existing = (self.directory / ".zgroup").exists() or (self.directory / "zarr.json").exists()
        if existing:
            try:
                self.root = zarr.open_group(str(self.directory), mode="r+")
            except (ValueError, KeyError, FileNotFoundError) as err:
                raise DatasetError(f"cannot open dataset {self.directory}: {err}") from None
            for group in ("data", "meta"):
                if group not in self.root:
                    raise DatasetError(
                        f"dataset {self.directory} has no '{group}' group; expected the "
                        f"DP3 / Diffusion Policy layout data/<key> + meta/episode_ends"
                    )
            self.data = self.root["data"]
            self.meta = self.root["meta"]
            self.arrays: dict[str, zarr.Array] = {k: self.data[k] for k in self.data.array_keys()}
            lengths = {k: a.shape[0] for k, a in self.arrays.items()}
            if len(set(lengths.values())) > 1:
                raise DatasetError(
                    f"dataset {self.directory}: data arrays have different lengths {lengths}"
                )
            n_steps = next(iter(lengths.values()), 0)
            if "episode_ends" not in self.meta.array_keys():
                raise DatasetError(f"dataset {self.directory} has no meta/episode_ends")
            ends = validate_episode_ends(
                self.meta["episode_ends"][...],
                n_steps,
                where=f"{self.directory}/meta/episode_ends",
            )
            self.episode_ends: list[int] = ends.tolist()
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self.root = zarr.open_group(str(self.directory), mode="w", zarr_format=2)
            self.data = self.root.create_group("data")
            self.meta = self.root.create_group("meta")
            self.arrays = {}
            n_steps = 0
            self.episode_ends = []
        self.existing_steps = n_steps
        self.existing_episodes = len(self.episode_ends)
        self._n_steps = n_steps  # all steps appended (on disk + staged)
        self._written: dict[str, int] = {k: n_steps for k in self.arrays}  # on disk, per key
        self._staged: dict[str, list[np.ndarray]] = {}
        self._episode_start = n_steps

    # -- state -----------------------------------------------------------------------------------

    @property
    def n_steps(self) -> int:
        """Steps appended so far (written + staged), including an open episode."""
        return self._n_steps

    @property
    def episode_length(self) -> int:
        """Steps appended to the open episode."""
        return self._n_steps - self._episode_start

    def shapes(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Per-step shape and dtype of every key.

        Empty before the first append of a new dataset.
        """
        return {k: (tuple(a.shape[1:]), a.dtype) for k, a in self.arrays.items()}

    # -- writing ---------------------------------------------------------------------------------

    def append(self, block: Mapping[str, np.ndarray]) -> None:
        """Append k >= 0 steps: {key: (k, ...) array}, the same k and keys every time."""
        block = {k: np.asarray(v) for k, v in block.items()}
        lengths = {k: v.shape[0] if v.ndim else None for k, v in block.items()}
        if not block or None in lengths.values() or len(set(lengths.values())) != 1:
            raise DatasetError(f"append: arrays need the same number of steps, got {lengths}")
        count = next(iter(lengths.values()))
        if not self.arrays:
            for key, value in block.items():
                # the chunking of ReplayBuffer.save for a long dataset: 100 steps, <= 8 MiB
                chunks = default_chunks((2**40, *value.shape[1:]), value.itemsize)
                self.arrays[key] = self.data.create_array(
                    key,
                    shape=(0, *value.shape[1:]),
                    dtype=value.dtype,
                    chunks=chunks,
                    compressors=default_compressor(),
                )
                self._written[key] = 0
        if set(block) != set(self.arrays):
            raise DatasetError(
                f"steps have keys {sorted(block)} but the dataset has {sorted(self.arrays)}"
            )
        for key, value in block.items():
            array = self.arrays[key]
            if value.shape[1:] != array.shape[1:]:
                raise DatasetError(
                    f"data/{key}: steps of shape {value.shape[1:]} do not fit the dataset's "
                    f"{array.shape[1:]}"
                )
        if count == 0:
            return
        for key, value in block.items():
            self._staged.setdefault(key, []).append(value.astype(self.arrays[key].dtype))
        self._n_steps += count
        for key in block:
            self._flush(key, final=False)

    def _flush(self, key: str, final: bool) -> None:
        """Write the staged steps of `key` up to its last whole chunk (all when `final`)."""
        array, written = self.arrays[key], self._written[key]
        end = self._n_steps if final else (self._n_steps // array.chunks[0]) * array.chunks[0]
        if end <= written:
            return
        parts = self._staged.get(key, [])
        staged = np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]
        take = end - written
        array.resize((end, *array.shape[1:]))
        array[written:end] = staged[:take]
        self._staged[key] = [staged[take:]] if take < len(staged) else []
        self._written[key] = end

    def end_episode(self) -> int:
        """Close the open episode (if it has steps); returns its length."""
        length = self.episode_length
        if length > 0:
            self.episode_ends.append(self._n_steps)
            self._episode_start = self._n_steps
        return length

    def discard_episode(self) -> int:
        """Drop every step appended since the last `end_episode`; returns how many."""
        length = self.episode_length
        start = self._episode_start
        for key, array in self.arrays.items():
            written = self._written[key]
            if start >= written:  # the episode is still staged: cut the staged steps
                parts = self._staged.get(key, [])
                staged = np.concatenate(parts, axis=0) if parts else None
                keep = start - written
                self._staged[key] = [staged[:keep]] if keep and staged is not None else []
            else:  # part of it is on disk: shrink the array back to the episode start
                array.resize((start, *array.shape[1:]))
                self._written[key] = start
                self._staged[key] = []
        self._n_steps = start
        return length

    def close(self) -> None:
        """Write the staged steps and meta/episode_ends; an open episode is closed first."""
        self.end_episode()
        for key in self.arrays:
            self._flush(key, final=True)
        ends = np.asarray(self.episode_ends, dtype=np.int64)
        validate_episode_ends(ends, self._n_steps, where="meta/episode_ends")
        if "episode_ends" in self.meta.array_keys():
            del self.meta["episode_ends"]
        array = self.meta.create_array(
            "episode_ends",
            shape=ends.shape,
            dtype=np.int64,
            chunks=(max(1, ends.shape[0]),),
            compressors=default_compressor(),
        )
        if ends.size:
            array[...] = ends
