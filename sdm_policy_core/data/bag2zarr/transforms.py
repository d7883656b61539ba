# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The transform of every cloud into the dataset's frame: fixed, or looked up in the bag's tf.

A fixed `point_cloud.transform`, or, with `point_cloud.target_frame`, the bag's /tf_static
and /tf looked up at each cloud's header stamp (`data.transforms.TransformBuffer`: static
links hold at every time, dynamic links are interpolated; a chain missing or a moving link
with no sample within `tf_tolerance_s` of the stamp stops the conversion with the gap).

    tf = CloudTransforms(bag, cfg.point_cloud, reorder_ns)  # BagError: the bag has no tf topic
    tf.read_static(bag, issues)                    # /tf_static, before the clouds
    tf.add(bag, topic, msgtype, raw, issues)       # each /tf message, as the bag is read
    tf.watermark()                                 # lookups up to this stamp are final
    matrices = tf.lookup([(raw, frame, stamp), ...])   # (4, 4) or None per cloud

/tf is read in the same pass as the clouds, not before them: the alignment waits until /tf
has passed a tick by the reorder window (`watermark`), so each cloud meets the same samples
as if /tf had been read in full first, and the samples more than TF_CACHE_S behind the clouds
looked up are forgotten (tf2's buffer keeps 10 s too): memory stays flat however long the bag.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from sdm_policy_core.conversions import ConversionError
from sdm_policy_core.data.bag2zarr.config import NS, TF_TYPE, PointCloudConfig
from sdm_policy_core.data.bag_reading import BagError, BagReader
from sdm_policy_core.data.transforms import TransformBuffer, TransformError

# A buffered cloud: (raw bytes, frame_id, header stamp ns).
Cloud = tuple[bytes, str, int]
TF_CACHE_S = 10.0  # dynamic samples kept behind the oldest cloud looked up (tf2's cache time)


class CloudTransforms:
    """Transforms of one bag's clouds into `point_cloud.target_frame` (or the fixed one)."""

    def __init__(self, bag: BagReader, cfg: PointCloudConfig | None, reorder_ns: int) -> None:
        self.cfg, self.reorder_ns = cfg, reorder_ns
        self.path = bag.path
        self.fixed = None if cfg is None or cfg.transform is None else cfg.transform.matrix()
        self.topics: list[tuple[str, bool]] = []  # (bag topic, static)
        if cfg is not None and cfg.target_frame:
            self.topics = self._resolve_topics(bag, cfg)
        self.dynamic_topics = [topic for topic, static in self.topics if not static]
        self.buffer: TransformBuffer | None = None
        self.newest: dict[str, int] = {}  # newest transform stamp per dynamic topic (ns)
        self.finished = False  # every /tf message is read

    @staticmethod
    def _resolve_topics(bag: BagReader, cfg: PointCloudConfig) -> list[tuple[str, bool]]:
        """Return the configured tf topics the bag has; BagError when it has none of them."""
        found = []
        for topic, static in cfg.tf_topics():
            name = bag.find(topic)
            if name is not None:
                role = "point_cloud.tf_static_topic" if static else "point_cloud.tf_topic"
                found.append((bag.resolve(name, role, [TF_TYPE]), static))
        if not found:
            wanted = " or ".join(topic for topic, _ in cfg.tf_topics())
            raise BagError(
                f"bag {bag.path} has no {wanted} topic for point_cloud.target_frame "
                f"{cfg.target_frame!r}; its topics are: {bag.listing() or 'none'} (set "
                f"point_cloud.tf_topic / tf_static_topic, or a fixed point_cloud.transform)"
            )
        return found

    def read_static(self, bag: BagReader, issues: Counter) -> None:
        """Read the static tf topic into the buffer (nothing without target_frame)."""
        if not self.topics:
            return
        bag.ensure_types([TF_TYPE])
        self.buffer = TransformBuffer()
        static = [topic for topic, is_static in self.topics if is_static]
        for topic, msgtype, _, raw in bag.messages(static) if static else ():
            try:
                self.buffer.add_message(bag.deserialize(raw, msgtype), True, topic)
            except ConversionError as err:
                issues[f"{topic}: {str(err)[:120]}"] += 1

    def add(self, bag: BagReader, topic: str, msgtype: str, raw: bytes, issues: Counter) -> None:
        """One message of a dynamic tf topic (read alongside the clouds)."""
        try:
            msg = bag.deserialize(raw, msgtype)
        except ConversionError as err:
            issues[f"{topic}: {str(err)[:120]}"] += 1
            return
        stamps = [
            int(tf.header.stamp.sec) * NS + int(tf.header.stamp.nanosec) for tf in msg.transforms
        ]
        if stamps:
            self.newest[topic] = max(self.newest.get(topic, stamps[0]), *stamps)
        try:
            self.buffer.add_message(msg, False, topic)
        except ConversionError as err:
            issues[f"{topic}: {str(err)[:120]}"] += 1

    def watermark(self) -> float:
        """Return the stamp (ns) up to which clouds can be looked up.

        Every dynamic tf topic has passed it by the reorder window (a later /tf message is not
        expected to land before it).
        """
        if self.finished or not self.dynamic_topics:
            return float("inf")
        if len(self.newest) < len(self.dynamic_topics):
            return float("-inf")
        return min(self.newest.values()) - self.reorder_ns

    def lookup(self, clouds: list[Cloud]) -> list[np.ndarray | None]:
        """Return the 4x4 transform of every cloud into the dataset's frame.

        The fixed one, or the bag's at each cloud's stamp; None without either.
        """
        if self.fixed is not None:
            return [self.fixed] * len(clouds)
        if self.buffer is None:
            return [None] * len(clouds)
        cfg = self.cfg
        out: list[np.ndarray | None] = [None] * len(clouds)
        by_frame: dict[str, list[int]] = {}
        for i, (_, frame, _) in enumerate(clouds):
            by_frame.setdefault(frame, []).append(i)
        tolerance = round(cfg.tf_tolerance_s * NS)
        for frame, indices in by_frame.items():
            stamps = [clouds[i][2] for i in indices]
            try:
                matrices = self.buffer.lookup_many(cfg.target_frame, frame, stamps, tolerance)
            except TransformError as err:
                raise BagError(
                    f"bag {self.path}: no transform from the cloud's frame {frame!r} to "
                    f"{cfg.target_frame!r} in {', '.join(t for t, _ in self.topics)}: {err} "
                    f"(point_cloud.tf_tolerance_s is {cfg.tf_tolerance_s:g})"
                ) from None
            for i, matrix in zip(indices, matrices, strict=True):
                out[i] = matrix
        if self.dynamic_topics and clouds:
            self.buffer.forget_before(min(c[2] for c in clouds) - round(TF_CACHE_S * NS))
        return out
