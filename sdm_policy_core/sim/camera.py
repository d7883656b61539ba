# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Pinhole camera model of a MuJoCo camera, in the OpenCV convention used by `pointcloud`.

MuJoCo cameras look along their local -z with +y up (OpenGL); `pointcloud.depth_to_points`
back-projects in the OpenCV convention (x right, y down, z forward). The two frames differ by a
rotation of 180 degrees about x: R_cv = R_gl @ diag(1, -1, -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GL_TO_CV = np.diag([1.0, -1.0, -1.0])  # OpenGL camera axes -> OpenCV camera axes


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for an image of `width` x `height`."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def matrix(self) -> np.ndarray:
        """(3, 3) K matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> Intrinsics:
    """Intrinsics of a MuJoCo camera with vertical field of view `fovy_deg` (degrees).

    MuJoCo renders square pixels, so fx = fy = (height / 2) / tan(fovy / 2); the principal point
    is the image centre in pixel-index coordinates ((W - 1) / 2, (H - 1) / 2), pixel centres at
    integer indices as `depth_to_points` assumes.
    """
    if not 0.0 < fovy_deg < 180.0:
        raise ValueError(f"fovy must be in (0, 180) degrees, got {fovy_deg}")
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return Intrinsics(float(f), float(f), (width - 1) / 2.0, (height - 1) / 2.0, width, height)


def camera_to_world(cam_xpos: np.ndarray, cam_xmat: np.ndarray) -> np.ndarray:
    """(4, 4) transform from the OpenCV camera frame to the world frame.

    cam_xpos: (3,) camera position in the world (m), MuJoCo `data.cam_xpos[i]`.
    cam_xmat: (9,) or (3, 3) camera orientation (OpenGL axes as columns), `data.cam_xmat[i]`.
    """
    transform = np.eye(4)
    transform[:3, :3] = np.asarray(cam_xmat, dtype=np.float64).reshape(3, 3) @ GL_TO_CV
    transform[:3, 3] = np.asarray(cam_xpos, dtype=np.float64)
    return transform


def project(points: np.ndarray, intr: Intrinsics, cam_to_world: np.ndarray) -> np.ndarray:
    """Project (N, 3) world points -> (N, 3) of (u, v, depth).

    Pixel coordinates and depth (m) along the optical axis. The inverse of
    `pointcloud.depth_to_points` for points in front of the camera.
    """
    world_to_cam = np.linalg.inv(cam_to_world)
    xyz = np.asarray(points, dtype=np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = xyz[:, 2]
    u = intr.fx * xyz[:, 0] / z + intr.cx
    v = intr.fy * xyz[:, 1] / z + intr.cy
    return np.stack([u, v, z], axis=1)
