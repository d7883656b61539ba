# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""MetaWorldEnv: world-frame clouds, deterministic placements, experts, bad input."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from sdm_policy_core.pointcloud import depth_to_points
from sdm_policy_core.sim import (
    DEFAULT_CROP_HIGH,
    DEFAULT_CROP_LOW,
    MetaWorldEnv,
    ScriptedExpert,
    UnknownTaskError,
    episode_seed,
    resolve_task,
    task_names,
)
from sdm_policy_core.sim.camera import camera_to_world, intrinsics_from_fovy, project


@pytest.fixture(scope="module")
def env():
    with MetaWorldEnv("button-press-v3", num_points=256, seed=0) as env:
        yield env


def test_every_v3_task_is_known_and_unknown_ones_list_them():
    tasks = task_names()
    assert len(tasks) == 50 and all(t.endswith("-v3") for t in tasks)
    assert resolve_task("button-press") == "button-press-v3"
    assert resolve_task("drawer-open-v3") == "drawer-open-v3"
    with pytest.raises(UnknownTaskError) as err:
        MetaWorldEnv("button-pres-v2")
    message = str(err.value)
    assert "button-pres-v2" in message and "Did you mean button-press-v3" in message
    assert all(t in message for t in tasks)


def test_camera_model_matches_mujoco_conventions():
    intr = intrinsics_from_fovy(90.0, 64, 48)
    assert intr.fx == pytest.approx(24.0) and intr.fy == pytest.approx(24.0)
    assert (intr.cx, intr.cy) == (31.5, 23.5)
    # A MuJoCo camera at (0, 0, 2) with identity orientation looks down the world -z axis,
    # image up = world +y: a point 2 m ahead on its axis is the world origin.
    T = camera_to_world(np.array([0.0, 0.0, 2.0]), np.eye(3))
    depth = np.full((48, 64), 2.0, dtype=np.float32)
    pts = depth_to_points(depth, intr.fx, intr.fy, intr.cx, intr.cy, T)
    np.testing.assert_allclose(pts[:, 2], 0.0, atol=1e-6)  # the plane z = 0
    top_row = pts.reshape(48, 64, 3)[0]
    assert (top_row[:, 1] > 0).all()  # image top is world +y
    uvz = project(pts[:5], intr, T)
    np.testing.assert_allclose(uvz[:, 2], 2.0, atol=1e-5)
    np.testing.assert_allclose(uvz[:, 0], np.arange(5), atol=1e-4)


def test_cloud_of_a_known_scene_lands_in_the_world_frame(env):
    obs = env.reset(seed=1)
    button = env.state[4:7]  # MetaWorld's button position (its front face), world frame
    points = env.world_points(obs["depth"])  # every pixel, before crop and FPS
    # The table top is the plane z = 0.
    table = points[np.abs(points[:, 2]) < 0.01]
    assert len(table) > 1000
    assert np.median(np.abs(table[:, 2])) < 1e-3
    # The button surface is seen where MetaWorld says the button is.
    assert np.linalg.norm(points - button, axis=1).min() < 0.01
    # Projecting the button through the camera model hits a pixel whose depth is the button's.
    u, v, z = project(button[None], env.intrinsics, env.camera_to_world)[0]
    depth_there = obs["depth"][round(v), round(u)]
    assert depth_there == pytest.approx(z, abs=0.02)
    # The policy's cloud: P points, inside the crop box, and the fingers are in it.
    cloud = obs["point_cloud"]
    assert cloud.shape == (256, 3) and cloud.dtype == np.float32
    assert (cloud >= np.float32(DEFAULT_CROP_LOW)).all()
    assert (cloud <= np.float32(DEFAULT_CROP_HIGH)).all()
    for finger in obs["agent_pos"].reshape(3, 3)[1:]:
        assert np.linalg.norm(cloud - finger, axis=1).min() < 0.03
    # agent_pos: the hand as MetaWorld reports it, then the two finger tips.
    np.testing.assert_allclose(obs["agent_pos"][:3], obs["full_state"][:3], atol=1e-5)
    assert obs["agent_pos"].shape == (9,) and obs["agent_pos"].dtype == np.float32


def test_reset_seed_fixes_the_placement(env):
    first = env.reset(seed=7)
    placement = env.placement
    again = env.reset(seed=7)
    np.testing.assert_array_equal(env.placement, placement)
    np.testing.assert_array_equal(again["point_cloud"], first["point_cloud"])
    np.testing.assert_array_equal(again["full_state"], first["full_state"])
    env.reset(seed=8)
    assert np.abs(env.placement - placement).max() > 1e-3
    assert episode_seed(0, 0, 0) != episode_seed(0, 0, 1) != episode_seed(0, 1, 1)


def test_a_scripted_button_press_episode_succeeds(env):
    expert = ScriptedExpert("button-press-v3")
    env.reset(seed=3)
    success = False
    while not success:
        obs, reward, success, done, info = env.step(expert.act(env))
        assert np.isfinite(obs["point_cloud"]).all() and isinstance(reward, float)
        assert not done, "the expert should press the button within 200 steps"
    assert info["success"] and env.steps < 120


def test_steps_validate_actions_and_end_the_episode():
    with MetaWorldEnv("reach-v3", num_points=64, image_size=32, max_episode_steps=3) as env:
        obs = env.reset(seed=0)
        assert obs["image"].shape == (32, 32, 3) and obs["image"].dtype == np.uint8
        assert obs["image"].std() > 5  # a picture, not a blank frame
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(3))
        with pytest.raises(ValueError, match="NaN"):
            env.step(np.array([0, 0, np.nan, 0]))
        dones = [env.step(np.zeros(4), observe=False)[3] for _ in range(3)]
        assert dones == [False, False, True]
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros(4))
        assert env.render(48).shape == (48, 48, 3)


def test_gl_backend_prefers_egl_then_osmesa_and_respects_the_user(monkeypatch):
    from sdm_policy_core.sim import gl

    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.delitem(sys.modules, "mujoco")  # as if not imported yet
    libs = {"OSMesa": "libOSMesa.so.8"}
    monkeypatch.setattr(gl.ctypes.util, "find_library", libs.get)
    assert gl.configure_gl_backend() == "osmesa"
    assert os.environ["MUJOCO_GL"] == os.environ["PYOPENGL_PLATFORM"] == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    libs["EGL"] = "libEGL.so.1"
    assert gl.configure_gl_backend() == "egl"
    monkeypatch.setenv("MUJOCO_GL", "glfw")
    assert gl.configure_gl_backend() == "glfw"
    monkeypatch.setenv("MUJOCO_GL", "egl")
    assert "MUJOCO_GL=osmesa" in gl.gl_hint(RuntimeError("no display"))


def test_a_script_that_never_closes_its_env_exits_cleanly():
    # Users' scripts forget env.close(); the GL context must still be freed before the EGL
    # display goes away, or every such script ends with EGLError tracebacks.
    import subprocess

    code = (
        "from sdm_policy_core.sim import MetaWorldEnv\n"
        "env = MetaWorldEnv('reach-v3', num_points=32)\n"
        "env.reset(seed=0)\n"
        "print(env.render(32).shape)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "(32, 32, 3)" in proc.stdout, proc.stderr
    assert "Error" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
