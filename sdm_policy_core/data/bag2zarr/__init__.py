# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""rosbag2 bags -> a DP3 / Diffusion Policy zarr dataset, streaming, with no ROS installed.

    cfg = load_bag2zarr_config("config/bag2zarr/real_arm.yaml", ["point_cloud.num_points=512"])
    summary = convert_bags(["demo_000", "demo_001"], "demos.zarr", cfg)
    print(format_summary(summary))

The parts, in the order a message meets them:

    config.py      what to convert: one strict dataclass per stream and part; the loader and
                   `a.b=value` overrides of `sdm train` (`config.load_dataclass`)
    reading.py     a bag's topics -> streams; each message -> its stream's buffer (raw bytes
                   for clouds and images, a vector for state and action), stamped as set.
                   The bag itself is read by `data.bag_reading.BagReader` (sqlite3 / mcap,
                   compressed, bare files, split bags, legacy type names; ROS 1 and empty
                   bags refused)
    alignment.py   the reference ticks and every stream's value at each tick (the rules of
                   `data.bag_alignment`: nearest / previous / next within a tolerance;
                   `missing: drop | hold`), with bounded buffers
    episodes.py    where episodes start (bag, marker topic or field, time gaps) and which are
                   kept (min_length, success_field)
    transforms.py  each cloud's transform: fixed, or /tf_static + /tf at its stamp
                   (`data.transforms.TransformBuffer`, interpolated, within tf_tolerance_s)
    decoding.py    the process pool that decodes clouds (transform, crop, FPS) and images
                   (raw, jpeg / png, compressedDepth) with `message_decoding`
    writing.py     chunks of samples -> the pool -> `data.zarr_writer` (actions from a topic
                   or the next state); episodes kept or discarded whole
    summary.py     what was counted, the summary dict and its printed form
    pipeline.py    `convert_bags`: checks every bag first, then runs the parts per bag into a
                   temp dataset swapped in at the end (nothing written on error)

Memory: messages stream through per-stream buffers pruned behind the ticks; samples are
decoded in chunks of `chunk_size` and appended to zarr chunk by chunk; /tf is read alongside and
only its last 10 s are kept. Nothing scales with the bag's length but the summary's counters.
"""

from sdm_policy_core.data.bag2zarr.config import (
    ActionConfig,
    Bag2ZarrConfig,
    ClockConfig,
    DepthConfig,
    EpisodeConfig,
    ImageConfig,
    PointCloudConfig,
    StateConfig,
    StreamConfig,
    TransformConfig,
    load_bag2zarr_config,
)
from sdm_policy_core.data.bag2zarr.pipeline import convert_bags
from sdm_policy_core.data.bag2zarr.reading import message_to_vector
from sdm_policy_core.data.bag2zarr.summary import format_summary
from sdm_policy_core.data.bag_reading import BagError

__all__ = [
    "ActionConfig",
    "Bag2ZarrConfig",
    "BagError",
    "ClockConfig",
    "DepthConfig",
    "EpisodeConfig",
    "ImageConfig",
    "PointCloudConfig",
    "StateConfig",
    "StreamConfig",
    "TransformConfig",
    "convert_bags",
    "format_summary",
    "load_bag2zarr_config",
    "message_to_vector",
]
