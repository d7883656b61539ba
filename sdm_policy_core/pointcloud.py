# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Point-cloud processing shared by the simulator, the bag converter and the policy node.

Conventions: clouds are (N, 3) xyz or (N, 6) xyz + rgb float32 arrays, xyz in metres, rgb in
[0, 1]; transforms are 4x4 homogeneous matrices mapping the cloud's frame to the target frame.
"""

from __future__ import annotations

import numpy as np

try:  # fpsample: farthest-point sampling in C++ (~20x a numpy loop)
    import fpsample
except ImportError:  # pragma: no cover - fpsample is in requirements/core.txt
    fpsample = None


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to the xyz of (N, 3|6) points; other channels are kept."""
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f"transform must be 4x4, got {transform.shape}")
    out = np.array(points, dtype=np.float32, copy=True)
    xyz = out[:, :3].astype(np.float64)
    out[:, :3] = (xyz @ transform[:3, :3].T + transform[:3, 3]).astype(np.float32)
    return out


def crop_box(points: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> np.ndarray:
    """Points whose xyz lies inside [low, high] (metres, inclusive); None bounds keep all."""
    if low is None and high is None:
        return points
    mask = np.ones(len(points), dtype=bool)
    if low is not None:
        mask &= (points[:, :3] >= np.asarray(low, dtype=np.float32)).all(axis=1)
    if high is not None:
        mask &= (points[:, :3] <= np.asarray(high, dtype=np.float32)).all(axis=1)
    return points[mask]


def drop_non_finite(points: np.ndarray) -> np.ndarray:
    """Remove points with a NaN or Inf in any channel (organized clouds mark holes so)."""
    return points[np.isfinite(points).all(axis=1)]


def farthest_point_sample(points: np.ndarray, n: int, seed: int | None = 0) -> np.ndarray:
    """Exactly `n` points by farthest-point sampling on xyz (DP3's down-sampling).

    With fewer than `n` points, points are repeated (sampled with replacement after taking all)
    so that the policy always gets its fixed point count; an empty cloud is an error.
    `seed` fixes the start point (deterministic output for the same input).
    """
    count = len(points)
    if count == 0:
        raise ValueError("cannot sample points from an empty cloud")
    if n <= 0:
        raise ValueError(f"number of points must be > 0, got {n}")
    if count <= n:
        rng = np.random.default_rng(seed)
        extra = rng.integers(0, count, n - count) if count < n else np.empty(0, dtype=np.int64)
        return points[np.concatenate([np.arange(count), extra])]
    start = int(np.random.default_rng(seed).integers(0, count)) if seed is not None else None
    xyz = np.ascontiguousarray(points[:, :3], dtype=np.float32)
    if fpsample is not None:
        height = 3 if count < 4000 else 5 if count < 40000 else 7
        idx = fpsample.bucket_fps_kdline_sampling(xyz, n, h=height, start_idx=start)
    else:  # pragma: no cover
        idx = _fps_numpy(xyz, n, start or 0)
    return points[np.asarray(idx, dtype=np.int64)]


def _fps_numpy(xyz: np.ndarray, n: int, start: int) -> np.ndarray:
    idx = np.empty(n, dtype=np.int64)
    idx[0] = start
    dist = np.full(len(xyz), np.inf, dtype=np.float32)
    for i in range(1, n):
        dist = np.minimum(dist, ((xyz - xyz[idx[i - 1]]) ** 2).sum(axis=1))
        idx[i] = int(dist.argmax())
    return idx


def depth_to_points(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    camera_to_world: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
) -> np.ndarray:
    """Back-project a depth image (H, W) in metres through a pinhole camera into world points.

    Pinhole camera in the OpenCV convention: x right, y down, z forward; into (N, 3) points —
    (N, 6) with `rgb` (H, W, 3) uint8 — then into the world frame with `camera_to_world`
    (4x4). Pixels with depth <= 0 or non-finite are dropped.
    """
    H, W = depth.shape
    v, u = np.indices((H, W), dtype=np.float32)
    z = depth.astype(np.float32)
    valid = np.isfinite(z) & (z > 0)
    x = (u - cx) / fx * z
    y = (v - cy) / fy * z
    points = np.stack([x[valid], y[valid], z[valid]], axis=1)
    if rgb is not None:
        points = np.concatenate([points, rgb[valid].astype(np.float32) / 255.0], axis=1)
    if camera_to_world is not None:
        points = transform_points(points, camera_to_world)
    return points.astype(np.float32)


def preprocess_cloud(
    points: np.ndarray,
    num_points: int,
    channels: int = 3,
    transform: np.ndarray | None = None,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    seed: int | None = 0,
) -> np.ndarray:
    """Give the policy's view of a raw cloud: finite points -> frame transform -> crop -> FPS.

    Returns (num_points, channels) float32. Raises ValueError when no point is left (an empty
    or fully cropped cloud must never be padded into a fake observation).
    """
    if points.ndim != 2 or points.shape[1] < channels:
        raise ValueError(f"cloud must be (N, >= {channels}), got {points.shape}")
    points = drop_non_finite(points[:, :channels])
    if transform is not None:
        points = transform_points(points, transform)
    points = crop_box(points, low, high)
    if len(points) == 0:
        raise ValueError("no points left after removing NaN/Inf and cropping")
    return farthest_point_sample(points, num_points, seed).astype(np.float32, copy=False)
