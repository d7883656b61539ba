# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""A tf2-like buffer of static and dynamic transforms, looked up at a stamp (no ROS needed).

    buffer = TransformBuffer()
    buffer.add_message(tf_static_msg, static=True, source="/tf_static")  # tf2_msgs/TFMessage
    buffer.add_message(tf_msg, static=False, source="/tf")
    m = buffer.lookup("base_link", "camera_optical_frame", stamp_ns, tolerance_ns)  # (4, 4)
    ms = buffer.lookup_many("base_link", "camera_optical_frame", stamps_ns, tolerance_ns)

`lookup(target, source, t)` is tf2's `lookupTransform(target, source, t)`: the (4, 4) float64
matrix that maps points expressed in `source` into `target` (REP-105 frame names; a leading '/'
is ignored), as the chain of parent <- child transforms through their closest common ancestor.

Static transforms (as on /tf_static) hold at every time; a later one for the same child replaces
the earlier one. Dynamic transforms (as on /tf) are kept per child as a time series of header
stamps: at stamp t the transform is interpolated between the samples on either side of t
(linear translation, spherical-linear rotation along the shorter arc, scipy's Rotation). Before
the first or after the last sample the end sample is used as it is (no extrapolation). The
nearest sample must lie within `tolerance_ns` of t, otherwise `TransformError` says how far it
is: a stale transform is never silently applied to data taken at another time.

A frame has one parent. A child published both statically and dynamically, or under two parents,
is recorded as a conflict and refused when a lookup's chain passes through it.

Memory: 64 bytes per dynamic transform sample (stamp + translation + quaternion);
`forget_before(t)` drops the samples no lookup at or after t needs.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from sdm_policy_core.conversions import ConversionError, pose_to_matrix, pose_to_vector

NS = 1_000_000_000


class TransformError(ValueError):
    """A lookup cannot be answered: no chain between the frames, or no sample near the stamp.

    No chain between the frames, or no transform sample near the stamp. The message names the
    frames, the stamp and what the buffer holds.
    """


@dataclass
class _Series:
    """The samples of one dynamic parent <- child transform (appended, sorted on demand)."""

    parent: str
    source: str
    stamps: array = field(default_factory=lambda: array("q"))
    values: array = field(default_factory=lambda: array("d"))  # x y z qx qy qz qw per sample
    _sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def append(self, stamp: int, vector: np.ndarray) -> None:
        """vector: (7,) [x, y, z, qw, qx, qy, qz] as `pose_to_vector` returns it."""
        self.stamps.append(stamp)
        self.values.extend((*vector[:3], *vector[4:], vector[3]))
        self._sorted = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (stamps (N,) int64 ns, translations (N, 3), quaternions (N, 4) xyzw).

        Sorted by stamp; of samples with equal stamps the first is kept (as tf2 does).
        """
        if self._sorted is None:
            stamps = np.frombuffer(self.stamps, np.int64)
            values = np.frombuffer(self.values, np.float64).reshape(-1, 7)
            unique, first = np.unique(stamps, return_index=True)
            self._sorted = (unique, values[first, :3], values[first, 3:])
        return self._sorted

    def __len__(self) -> int:
        return len(self.stamps)

    def forget_before(self, stamp: int) -> None:
        """Drop the samples before the last one at or before `stamp`.

        That one stays: a lookup at `stamp` or later interpolates from it.
        """
        times, translations, quaternions = self.arrays()
        keep = int(np.searchsorted(times, stamp, side="right")) - 1
        if keep <= 0:
            return
        times, translations, quaternions = times[keep:], translations[keep:], quaternions[keep:]
        self.stamps = array("q", times.tobytes())
        self.values = array("d", np.concatenate([translations, quaternions], 1).tobytes())
        self._sorted = (times, translations, quaternions)


def _seconds(ns: int | np.integer) -> str:
    return f"{int(ns) / NS:.3f} s"


class TransformBuffer:
    """Static and dynamic transforms from tf2_msgs/TFMessage messages (see module docstring)."""

    def __init__(self) -> None:
        self._static: dict[str, tuple[str, np.ndarray, str]] = {}  # child -> (parent, T, source)
        self._dynamic: dict[str, _Series] = {}
        self._conflicts: dict[str, str] = {}  # frame -> why its parent is ambiguous

    # -- filling ---------------------------------------------------------------------------------

    def add_message(self, msg: Any, static: bool, source: str = "") -> None:
        """Add every geometry_msgs/TransformStamped of a tf2_msgs/TFMessage.

        The message is an rclpy or rosbags object. `source` (e.g. the topic) is named in error
        messages. ConversionError for a transform with NaN/Inf or a zero quaternion (the
        message's others are still added).
        """
        bad = None
        for tf in msg.transforms:
            try:
                self.add(tf, static, source)
            except ConversionError as err:
                bad = bad or err
        if bad is not None:
            raise bad

    def add(self, tf: Any, static: bool, source: str = "") -> None:
        """Add one geometry_msgs/TransformStamped.

        parent = header.frame_id, child = child_frame_id, at header.stamp.
        """
        parent = str(tf.header.frame_id).lstrip("/")
        child = str(tf.child_frame_id).lstrip("/")
        if static:
            matrix = pose_to_matrix(tf)
            self._check_parent(child, parent, source, static=True)
            self._static[child] = (parent, matrix, source)
            return
        vector = pose_to_vector(tf)
        stamp = int(tf.header.stamp.sec) * NS + int(tf.header.stamp.nanosec)
        self._check_parent(child, parent, source, static=False)
        series = self._dynamic.get(child)
        if series is None:
            series = self._dynamic[child] = _Series(parent, source)
        series.append(stamp, vector)

    def _check_parent(self, child: str, parent: str, source: str, static: bool) -> None:
        """Record a conflict when `child` gets a second parent or both kinds of transform."""
        where = source or "?"
        if static and child in self._dynamic:
            other = self._dynamic[child].source or "?"
            why = (
                f"{child!r} is published both dynamically (in {other}) and statically (in {where})"
            )
        elif not static and child in self._static:
            other = self._static[child][2] or "?"
            why = (
                f"{child!r} is published both statically (in {other}) and dynamically (in {where})"
            )
        else:
            known = self._static[child][0] if static and child in self._static else None
            if not static and child in self._dynamic:
                known = self._dynamic[child].parent
            if known is None or known == parent:
                return
            why = f"{child!r} has two parents, {known!r} and {parent!r} (in {where})"
        self._conflicts.setdefault(child, why)

    # -- queries ---------------------------------------------------------------------------------

    def frames(self) -> list[str]:
        """Every frame named as a parent or a child."""
        parents = [p for p, _, _ in self._static.values()]
        parents += [s.parent for s in self._dynamic.values()]
        return sorted(set(self._static) | set(self._dynamic) | set(parents))

    def __len__(self) -> int:
        """Return the number of transforms held (static ones + dynamic samples)."""
        return len(self._static) + sum(len(s) for s in self._dynamic.values())

    def forget_before(self, stamp_ns: int) -> None:
        """Forget dynamic samples no lookup at or after stamp_ns needs.

        As tf2's buffer forgets what is older than its cache time: per link, all before its
        last sample at or before stamp_ns. A later lookup before stamp_ns may then find no
        sample near its stamp.
        """
        for series in self._dynamic.values():
            series.forget_before(int(stamp_ns))

    def _parent(self, frame: str) -> str | None:
        if frame in self._dynamic:
            return self._dynamic[frame].parent
        if frame in self._static:
            return self._static[frame][0]
        return None

    def _up(self, frame: str) -> list[str]:
        """[frame, parent, grandparent, ...] up to the root (a cycle stops the walk)."""
        chain, seen = [frame], {frame}
        parent = self._parent(frame)
        while parent is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self._parent(parent)
        return chain

    def _edge(self, child: str, stamps: np.ndarray, tolerance_ns: int) -> np.ndarray:
        """T_parent_child: (4, 4) for a static edge, (N, 4, 4) for a dynamic one at `stamps`."""
        series = self._dynamic.get(child)
        if series is None:
            return self._static[child][1]
        times, translations, quaternions = series.arrays()
        n = len(times)
        after = np.searchsorted(times, stamps, side="left")  # first sample at or after t
        hi = np.minimum(after, n - 1)
        lo = np.maximum(after - 1, 0)
        exact = (after < n) & (times[hi] == stamps)
        lo = np.where(exact, hi, lo)
        nearest = np.minimum(np.abs(stamps - times[lo]), np.abs(times[hi] - stamps))
        far = nearest > tolerance_ns
        if far.any():
            i = int(np.argmax(far))
            t = int(stamps[i])
            before = [int(times[lo[i]])] if times[lo[i]] <= t else []
            later = [int(times[hi[i]])] if times[hi[i]] >= t else []
            around = ", ".join(
                f"{label} {_seconds(s)} ({(s - t) / NS:+.3f} s)"
                for label, ss in (("previous", before), ("next", later))
                for s in ss
            )
            raise TransformError(
                f"{series.parent!r} <- {child!r} (from {series.source or 'dynamic transforms'}) "
                f"has no sample within {tolerance_ns / NS:g} s of the stamp {_seconds(t)}: "
                f"nearest {around}; its {n} samples span {_seconds(times[0])} to "
                f"{_seconds(times[-1])}"
            )
        span = (times[hi] - times[lo]).astype(np.float64)
        alpha = np.where(span > 0, (stamps - times[lo]) / np.where(span > 0, span, 1.0), 0.0)
        alpha = np.clip(alpha, 0.0, 1.0)
        start = Rotation.from_quat(quaternions[lo])
        step = (start.inv() * Rotation.from_quat(quaternions[hi])).as_rotvec()
        rotation = start * Rotation.from_rotvec(alpha[:, None] * step)
        out = np.zeros((len(stamps), 4, 4))
        out[:, :3, :3] = rotation.as_matrix()
        out[:, :3, 3] = (1 - alpha)[:, None] * translations[lo] + alpha[:, None] * translations[hi]
        out[:, 3, 3] = 1.0
        return out

    def _to_ancestor(self, chain: list[str], stamps: np.ndarray, tolerance_ns: int) -> np.ndarray:
        """T_ancestor_frame for chain = [frame, ..., ancestor]: (4, 4) or (N, 4, 4)."""
        matrix = np.eye(4)
        for child in chain[:-1]:
            matrix = self._edge(child, stamps, tolerance_ns) @ matrix
        return matrix

    def lookup_many(
        self,
        target: str,
        source: str,
        stamps_ns: Sequence[int] | np.ndarray,
        tolerance_ns: int = 0,
    ) -> np.ndarray:
        """Look up (N, 4, 4) float64 transforms: points in `source` at stamps_ns[i] -> `target`.

        TransformError when the frames are not connected or a dynamic link has no sample
        within tolerance_ns of a stamp.
        """
        stamps = np.asarray(stamps_ns, dtype=np.int64).reshape(-1)
        target, source = target.lstrip("/"), source.lstrip("/")
        up_source, up_target = self._up(source), self._up(target)
        common = next((f for f in up_target if f in up_source), None)
        if common is not None:  # the links used: every frame below the common ancestor
            up_source = up_source[: up_source.index(common) + 1]
            up_target = up_target[: up_target.index(common) + 1]
        for frame in up_source[:-1] + up_target[:-1] if common else up_source + up_target:
            if frame in self._conflicts:
                raise TransformError(
                    f"cannot look up {target!r} <- {source!r}: {self._conflicts[frame]}"
                )
        if common is None:
            frames = self.frames()
            raise TransformError(
                f"{source!r} and {target!r} are not connected: {source!r} reaches "
                f"{' -> '.join(up_source)}, {target!r} reaches {' -> '.join(up_target)}; "
                f"frames known: {frames if frames else 'none'}"
            )
        t_common_source = self._to_ancestor(up_source, stamps, tolerance_ns)
        t_common_target = self._to_ancestor(up_target, stamps, tolerance_ns)
        result = np.linalg.inv(t_common_target) @ t_common_source
        if result.ndim == 2:  # every link static: one matrix for all stamps
            return np.repeat(result[None], len(stamps), axis=0)
        return result

    def lookup(self, target: str, source: str, stamp_ns: int, tolerance_ns: int = 0) -> np.ndarray:
        """(4, 4) float64: points in `source` at stamp_ns -> `target` (see lookup_many)."""
        return self.lookup_many(target, source, [stamp_ns], tolerance_ns)[0]


__all__ = ["TransformBuffer", "TransformError"]
