# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Choose MuJoCo's off-screen OpenGL backend before `mujoco` is first imported.

MuJoCo binds its GL backend from the MUJOCO_GL environment variable when the module is imported,
so the choice has to be made before. When MUJOCO_GL is unset we pick EGL (hardware or Mesa's
llvmpipe; headless, fast) when libEGL is installed, else OSMesa (pure software; Debian
`libosmesa6`) when libOSMesa is, and set PYOPENGL_PLATFORM to match. A value the user set is never
overridden. `sdm doctor` probes which backend actually renders on a machine.

Mesa's llvmpipe (software EGL) renders with helper threads by default; for the 128 px images of
a policy they gain nothing and, idle-spinning beside torch's threads on a small CPU, they add
latency spikes to the policy calls of a closed loop. LP_NUM_THREADS defaults to 0 here (render in
the calling thread); set it to override.
"""

from __future__ import annotations

import ctypes.util
import os
import sys

BACKENDS = ("egl", "osmesa")


def choose_backend() -> str | None:
    """Pick the backend to use when MUJOCO_GL is unset: 'egl', 'osmesa', or None (MuJoCo's)."""
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return None


def configure_gl_backend() -> str:
    """Set MUJOCO_GL (and PYOPENGL_PLATFORM) if unset; returns the backend in force.

    Has no effect once `mujoco` is imported (its backend is fixed then); the backend in force is
    still returned so that error messages can name it.
    """
    os.environ.setdefault("LP_NUM_THREADS", "0")  # read when the first GL context is made
    current = os.environ.get("MUJOCO_GL", "").strip().lower()
    if current or "mujoco" in sys.modules:
        return current or "default"
    backend = choose_backend()
    if backend is None:
        return "default"
    os.environ["MUJOCO_GL"] = backend
    os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


def gl_hint(err: BaseException) -> str:
    """Write a fix-it message for a failed off-screen rendering context."""
    backend = os.environ.get("MUJOCO_GL", "unset")
    other = "osmesa" if backend == "egl" else "egl"
    return (
        f"MuJoCo off-screen rendering failed with MUJOCO_GL={backend} ({type(err).__name__}: "
        f"{err}). Install the Debian packages libegl1 libgl1 (EGL) or libosmesa6 (OSMesa), or "
        f"run with MUJOCO_GL={other} PYOPENGL_PLATFORM={other}; `sdm doctor` shows which works."
    )
