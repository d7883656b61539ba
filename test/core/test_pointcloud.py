# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Point-cloud processing: transforms, crops, FPS counts, depth back-projection."""

from __future__ import annotations

import numpy as np
import pytest

from sdm_policy_core.pointcloud import (
    crop_box,
    depth_to_points,
    farthest_point_sample,
    preprocess_cloud,
    transform_points,
)


def test_depth_of_a_flat_wall_lands_at_its_world_position():
    # A wall 2 m in front of a camera that sits at (1, 0, 0.5) looking along world +x.
    depth = np.full((48, 64), 2.0, dtype=np.float32)
    depth[0, 0] = 0.0  # a hole
    cam_to_world = np.array([[0, 0, 1, 1.0], [-1, 0, 0, 0.0], [0, -1, 0, 0.5], [0, 0, 0, 1]])
    pts = depth_to_points(depth, fx=50, fy=50, cx=31.5, cy=23.5, camera_to_world=cam_to_world)
    assert pts.shape == (48 * 64 - 1, 3)
    np.testing.assert_allclose(pts[:, 0], 3.0, atol=1e-5)  # all on the plane x = 1 + 2
    centre = pts[np.argmin(np.abs(pts[:, 1]) + np.abs(pts[:, 2] - 0.5))]
    np.testing.assert_allclose(centre, [3.0, 0.02, 0.52], atol=0.03)
    # Image left (u < cx) is world +y; image up (v < cy) is world +z.
    assert pts[np.argmin(pts[:, 1])][1] < 0 < pts[np.argmax(pts[:, 1])][1]


def test_fps_returns_exact_count_spread_out_and_deterministic():
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 0.01, (5000, 3)).astype(np.float32)
    far = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0]], dtype=np.float32)
    cloud = np.concatenate([dense, far])
    out = farthest_point_sample(cloud, 64)
    assert out.shape == (64, 3)
    for p in far:  # FPS keeps the extremes a random subsample would almost surely miss
        assert np.any(np.all(out == p, axis=1))
    np.testing.assert_array_equal(out, farthest_point_sample(cloud, 64))
    small = farthest_point_sample(far, 8)  # fewer points than asked: all kept, then repeats
    assert small.shape == (8, 3) and {tuple(p) for p in small} == {tuple(p) for p in far}
    with pytest.raises(ValueError, match="empty cloud"):
        farthest_point_sample(np.zeros((0, 3), np.float32), 8)


def test_preprocess_drops_nan_transforms_crops_and_samples():
    rng = np.random.default_rng(1)
    cloud = rng.uniform(-1, 1, (2000, 6)).astype(np.float32)
    cloud[:100, 0] = np.nan
    shift = np.eye(4)
    shift[:3, 3] = [10, 0, 0]
    out = preprocess_cloud(
        cloud, 256, channels=3, transform=shift, low=[9.5, -1, -1], high=[11, 1, 1]
    )
    assert out.shape == (256, 3) and np.isfinite(out).all()
    assert out[:, 0].min() >= 9.5 and out[:, 0].max() <= 11
    with pytest.raises(ValueError, match="no points left"):
        preprocess_cloud(cloud, 256, low=[5, 5, 5], high=[6, 6, 6])
    kept = crop_box(cloud[100:], None, None)
    assert len(kept) == 1900
    moved = transform_points(cloud[100:, :], shift)
    np.testing.assert_allclose(moved[:, 3:], cloud[100:, 3:])  # colour untouched
