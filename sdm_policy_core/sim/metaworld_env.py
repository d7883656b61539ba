# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Every MetaWorld v3 task on MuJoCo, observed as DP3 observes it: a point cloud + robot state.

    env = MetaWorldEnv("button-press-v3", num_points=512, seed=0)
    obs = env.reset(seed=3)             # seed -> object / goal placement, deterministically
    obs["point_cloud"]                  # (512, 3) float32, world frame (m), cropped, FPS'd
    obs["agent_pos"]                    # (9,) float32: end-effector xyz + right/left finger xyz
    obs, reward, success, done, info = env.step(action)   # action (4,) in [-1, 1]

Observation (`observe()` / `reset()` / `step(..., observe=True)`):
- `point_cloud` (P, 3) float32 [m] (or (P, 6) with rgb in [0, 1] when `cloud_channels=6`):
  the depth image of one camera (default `corner2` moved to DP3's pose (0.6, 0.295, 0.8)),
  back-projected through the camera model (intrinsics from MuJoCo's `fovy`, depth in metres from
  the depth buffer and the model's near/far planes), in the **world frame** (z up, table top at
  z = 0), cropped to the workspace box `crop_low`..`crop_high` (the table plane, the floor and
  the retaining walls are cut away, as DP3 does) and farthest-point sampled to exactly P points.
- `agent_pos` (9,) float32 [m]: the hand (end-effector body) position, then the right and left
  finger tips (`rightEndEffector`, `leftEndEffector` sites): DP3's robot state for MetaWorld, so
  datasets written by DP3's scripts and ours share `state`. The finger distance encodes the
  gripper opening.
- `full_state` (39,) float32: MetaWorld's state vector (hand, gripper, object poses, previous
  frame, goal), what the scripted experts act on; DP3 stores it as `full_state`.
- `depth` (H, W) float32 [m] of the cloud's camera (`depth_size`); `image` (S, S, 3) uint8 RGB
  when `image_size` > 0, rendered without MSAA, shadows and reflections (~8 ms instead of ~80).
Images are rendered upright: cameras whose up axis points down (MetaWorld's `corner2`) are rolled
by 180 degrees about their optical axis, which leaves the world-frame cloud unchanged.

Action (4,) in [-1, 1]: the hand's xyz displacement in units of 1 cm per step (MetaWorld's
`action_scale` 1/100) and the gripper effort (+1 closes). Values are clipped to [-1, 1].

Episodes: `reset(seed)` seeds MetaWorld's random placement of objects and goals, so the same seed
gives the same scene and another seed a different one; an episode ends (`done`) after
`max_episode_steps` steps (200, DP3's horizon for every MetaWorld task; MetaWorld's own is 500).
`success` is MetaWorld's success flag of that step; callers decide whether to stop on it.
"""

from __future__ import annotations

import atexit
import difflib
import weakref
from collections.abc import Sequence
from typing import Any

from sdm_policy_core.sim.gl import configure_gl_backend, gl_hint

configure_gl_backend()  # before the first `import mujoco` anywhere in the process

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from sdm_policy_core.keys import AGENT_POS, DEPTH, FULL_STATE, IMAGE, POINT_CLOUD  # noqa: E402
from sdm_policy_core.pointcloud import depth_to_points, preprocess_cloud  # noqa: E402
from sdm_policy_core.sim.camera import (  # noqa: E402
    Intrinsics,
    camera_to_world,
    intrinsics_from_fovy,
)

DEFAULT_MAX_EPISODE_STEPS = 200  # DP3's episode length for all MetaWorld tasks
DEFAULT_CAMERA = "corner2"
DP3_CAMERA_POS = {"corner2": (0.6, 0.295, 0.8)}  # DP3 moves corner2 closer to the table
# Near/far clipping planes as fractions of the model extent (DP3's values): a tighter depth range
# than MuJoCo's default 0.01 / 50 gives better depth resolution on the table.
DP3_ZNEAR, DP3_ZFAR = 0.1, 1.5
# World-frame workspace box (m): above the table top (z = 0), inside the retaining walls
# (front wall y < 0.22, back wall y > 0.98), wide enough for every task's objects and the arm.
DEFAULT_CROP_LOW = (-0.65, 0.23, 0.005)
DEFAULT_CROP_HIGH = (0.65, 0.97, 0.8)
STATE_DIM = 9
ACTION_DIM = 4
_SUFFIX = "-goal-observable"


_LIVE_ENVS: weakref.WeakSet[MetaWorldEnv] = weakref.WeakSet()


def _close_live_envs() -> None:
    # GL contexts freed by garbage collection during interpreter shutdown raise EGL errors:
    # free them while the GL libraries are still loaded, and before mujoco's own exit handler
    # (registered with its first EGL context) terminates the EGL display.
    for env in list(_LIVE_ENVS):
        env.close()


def _close_live_envs_first_at_exit() -> None:
    """(Re-)register _close_live_envs last, so that it runs first (atexit is LIFO)."""
    atexit.unregister(_close_live_envs)
    atexit.register(_close_live_envs)


_close_live_envs_first_at_exit()


class UnknownTaskError(ValueError):
    """The task name is not a MetaWorld v3 task; the message lists the valid ones."""


class SimulatorError(RuntimeError):
    """The simulator cannot render or produce an observation; the message says how to fix it."""


def task_names() -> tuple[str, ...]:
    """All MetaWorld v3 task names, sorted (e.g. 'button-press-v3')."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(sorted(ALL_V3_ENVIRONMENTS))


def resolve_task(name: str) -> str:
    """Return the canonical task name: 'button-press' and 'button-press-v3' both give the latter.

    Raises UnknownTaskError listing the valid tasks (closest first).
    """
    tasks = task_names()
    name = name.strip()
    for candidate in (name, f"{name}-v3", name.removesuffix(_SUFFIX)):
        if candidate in tasks:
            return candidate
    close = difflib.get_close_matches(name, tasks, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownTaskError(
        f"unknown MetaWorld task {name!r}.{hint} Valid tasks ({len(tasks)}): {', '.join(tasks)}"
    )


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (w, x, y, z) quaternions."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


class MetaWorldEnv:
    """One MetaWorld v3 task with point-cloud observations; see the module docstring.

    task: a MetaWorld v3 task name ('button-press-v3'; the '-v3' suffix may be left out).
    num_points: points per cloud after farthest-point sampling (DP3: 512 or 1024).
    seed: seed of the first `reset()` without a seed (placements then follow one stream).
    image_size: side (px) of the RGB `image` observation; 0 = no image.
    depth_size: side (px) of the depth image the cloud is made from (DP3: 128).
    camera: a camera of the MetaWorld model ('corner2', 'corner', 'topview', ...).
    camera_pos: (3,) world position for that camera (m); None = DP3's pose for corner2, the
        model's own for the others.
    crop_low, crop_high: (3,) world-frame workspace box (m); None = no bound on that side.
    max_episode_steps: episode length; `done` turns True at this step.
    cloud_channels: 3 (xyz) or 6 (xyz + rgb in [0, 1]).
    render_size: side (px) of `render()` frames (videos).
    """

    def __init__(
        self,
        task: str,
        num_points: int = 512,
        seed: int | None = 0,
        image_size: int = 0,
        depth_size: int = 128,
        camera: str = DEFAULT_CAMERA,
        camera_pos: Sequence[float] | None = None,
        crop_low: Sequence[float] | None = DEFAULT_CROP_LOW,
        crop_high: Sequence[float] | None = DEFAULT_CROP_HIGH,
        max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS,
        cloud_channels: int = 3,
        render_size: int = 256,
    ) -> None:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

        self.task = resolve_task(task)
        if num_points < 1:
            raise ValueError(f"num_points must be >= 1, got {num_points}")
        if image_size < 0 or depth_size < 8 or render_size < 8:
            raise ValueError(
                f"image_size must be >= 0 and depth_size, render_size >= 8; got "
                f"{image_size}, {depth_size}, {render_size}"
            )
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        if cloud_channels not in (3, 6):
            raise ValueError(f"cloud_channels must be 3 or 6, got {cloud_channels}")
        self.num_points = int(num_points)
        self.image_size = int(image_size)
        self.depth_size = int(depth_size)
        self.render_size = int(render_size)
        self.max_episode_steps = int(max_episode_steps)
        self.cloud_channels = int(cloud_channels)
        self.crop_low = None if crop_low is None else np.asarray(crop_low, dtype=np.float32)
        self.crop_high = None if crop_high is None else np.asarray(crop_high, dtype=np.float32)

        # The goal-observable variant: the experts read the goal from the state vector.
        self._env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[self.task + _SUFFIX]()
        self._env._freeze_rand_vec = False  # new placement at every reset ...
        self._env.seeded_rand_vec = True  # ... drawn from the env's seeded generator
        self._env.max_path_length = max(self._env.max_path_length, self.max_episode_steps)
        self.model: mujoco.MjModel = self._env.model
        self.data: mujoco.MjData = self._env.data

        names = [self.model.camera(i).name for i in range(self.model.ncam)]
        if camera not in names:
            raise ValueError(f"unknown camera {camera!r}; the MetaWorld model has {names}")
        self.camera = camera
        self._cam_id = names.index(camera)
        if camera_pos is None:
            camera_pos = DP3_CAMERA_POS.get(camera)
        if camera_pos is not None:
            self.model.cam_pos[self._cam_id] = np.asarray(camera_pos, dtype=np.float64)
        self.model.vis.map.znear = DP3_ZNEAR
        self.model.vis.map.zfar = DP3_ZFAR
        self.model.vis.quality.offsamples = 0  # no MSAA: RGB ~10x faster on llvmpipe
        mujoco.mj_forward(self.model, self.data)
        if self.data.cam_xmat[self._cam_id].reshape(3, 3)[2, 1] < 0:  # image would be upside down
            self.model.cam_quat[self._cam_id] = _quat_mul(
                self.model.cam_quat[self._cam_id], np.array([0.0, 0.0, 0.0, 1.0])
            )
            mujoco.mj_forward(self.model, self.data)
        self._renderers: dict[int, mujoco.Renderer] = {}
        self._intrinsics = intrinsics_from_fovy(
            float(self.model.cam_fovy[self._cam_id]), self.depth_size, self.depth_size
        )
        self._state = np.zeros(39)
        self._steps = 0
        self._next_seed = seed if seed is not None else 0
        self._last_seed: int | None = None
        _LIVE_ENVS.add(self)

    # -- properties ------------------------------------------------------------------------------
    @property
    def state_dim(self) -> int:
        return STATE_DIM

    @property
    def action_dim(self) -> int:
        return ACTION_DIM

    @property
    def steps(self) -> int:
        """Steps taken in the current episode."""
        return self._steps

    @property
    def state(self) -> np.ndarray:
        """(39,) float64 MetaWorld state vector of the current step (what experts act on)."""
        return self._state.copy()

    @property
    def placement(self) -> np.ndarray:
        """The random vector that placed the objects and goal of this episode (world, m)."""
        return np.array(self._env._last_rand_vec, dtype=np.float64)

    @property
    def intrinsics(self) -> Intrinsics:
        """Pinhole intrinsics of the depth camera (`depth_size` x `depth_size`)."""
        return self._intrinsics

    @property
    def camera_to_world(self) -> np.ndarray:
        """(4, 4) OpenCV camera frame -> world frame transform of the depth camera."""
        return camera_to_world(self.data.cam_xpos[self._cam_id], self.data.cam_xmat[self._cam_id])

    @property
    def far(self) -> float:
        """Far clipping distance (m): depth at or beyond it is background."""
        return float(self.model.vis.map.zfar * self.model.stat.extent)

    # -- episode ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, observe: bool = True) -> dict[str, np.ndarray]:
        """Start an episode; `seed` fixes the object/goal placement.

        None: continue the stream started by the last seed. Returns the first observation.
        """
        if seed is None and self._last_seed is None:
            seed = self._next_seed
        if seed is not None:
            seed = int(seed)
            if seed < 0:
                raise ValueError(f"seed must be >= 0, got {seed}")
            self._env.seed(seed)
            self._last_seed = seed
        state, _ = self._env.reset()
        self._state = np.asarray(state, dtype=np.float64)
        self._steps = 0
        return self.observe() if observe else self._proprio()

    def step(
        self, action: np.ndarray, observe: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one action (4,) for one control step (5 physics steps of 2.5 ms).

        Returns (observation, reward, success, done, info): `success` is MetaWorld's success
        flag of this step, `done` is True once `max_episode_steps` steps were taken, `info` is
        MetaWorld's info dict. With observe=False nothing is rendered and the observation holds
        `agent_pos` and `full_state` only (for steps whose observation the policy never sees).
        """
        if self._steps >= self.max_episode_steps:
            raise RuntimeError(
                f"episode is over ({self.max_episode_steps} steps); call reset() first"
            )
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {action.shape}")
        if not np.isfinite(action).all():
            raise ValueError(f"action contains NaN or Inf: {action}")
        state, reward, _, _, info = self._env.step(np.clip(action, -1.0, 1.0))
        self._state = np.asarray(state, dtype=np.float64)
        self._steps += 1
        success = bool(info.get("success", 0.0))
        done = self._steps >= self.max_episode_steps
        obs = self.observe() if observe else self._proprio()
        return obs, float(reward), success, done, dict(info)

    # -- observations ----------------------------------------------------------------------------
    def agent_pos(self) -> np.ndarray:
        """(9,) float32: hand xyz, right finger tip xyz, left finger tip xyz (m, world)."""
        return np.concatenate(
            [
                self.data.body("hand").xpos,
                self.data.site("rightEndEffector").xpos,
                self.data.site("leftEndEffector").xpos,
            ]
        ).astype(np.float32)

    def _proprio(self) -> dict[str, np.ndarray]:
        return {AGENT_POS: self.agent_pos(), FULL_STATE: self._state.astype(np.float32)}

    def observe(self) -> dict[str, np.ndarray]:
        """Return the full observation of the current step (renders depth, and RGB if asked)."""
        obs = self._proprio()
        rgb = None
        if self.cloud_channels == 6:
            rgb, depth = self._render(self.depth_size, rgb=True, depth=True)
        else:
            _, depth = self._render(self.depth_size, rgb=False, depth=True)
        obs[DEPTH] = depth
        obs[POINT_CLOUD] = self.cloud_from_depth(depth, rgb)
        if self.image_size:
            obs[IMAGE] = self._render(self.image_size, rgb=True, depth=False)[0]
        return obs

    def world_points(self, depth: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
        """Turn all valid pixels of a depth image (H, W) in metres into (N, 3|6) world points.

        Before cropping and sampling; background (depth at the far plane) is dropped.
        """
        depth = np.where(depth < 0.999 * self.far, depth, 0.0).astype(np.float32)
        intr = self._intrinsics
        if depth.shape != (intr.height, intr.width):
            intr = intrinsics_from_fovy(
                float(self.model.cam_fovy[self._cam_id]), *depth.shape[::-1]
            )
        return depth_to_points(
            depth, intr.fx, intr.fy, intr.cx, intr.cy, self.camera_to_world, rgb=rgb
        )

    def cloud_from_depth(self, depth: np.ndarray, rgb: np.ndarray | None = None) -> np.ndarray:
        """(num_points, cloud_channels) float32: world points -> crop box -> FPS."""
        points = self.world_points(depth, rgb)
        try:
            return preprocess_cloud(
                points,
                self.num_points,
                channels=self.cloud_channels,
                low=self.crop_low,
                high=self.crop_high,
                seed=0,
            )
        except ValueError as err:
            raise SimulatorError(
                f"{self.task}: no point of the {self.camera} camera's view lies in the crop box "
                f"{self.crop_low}..{self.crop_high} ({err})"
            ) from None

    def render(self, size: int | None = None) -> np.ndarray:
        """(S, S, 3) uint8 RGB frame of the camera (for videos); S = `render_size` by default."""
        return self._render(size or self.render_size, rgb=True, depth=False)[0]

    def _renderer(self, size: int) -> mujoco.Renderer:
        renderer = self._renderers.get(size)
        if renderer is None:
            try:
                renderer = mujoco.Renderer(self.model, size, size)
            except Exception as err:  # EGL/OSMesa context creation: no display, no library
                raise SimulatorError(gl_hint(err)) from err
            _close_live_envs_first_at_exit()  # after the exit handler this context brought
            flags = renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            self._renderers[size] = renderer
        return renderer

    def _render(
        self, size: int, rgb: bool, depth: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        renderer = self._renderer(size)
        renderer.update_scene(self.data, camera=self._cam_id)
        image = renderer.render().copy() if rgb else None
        depth_image = None
        if depth:
            renderer.enable_depth_rendering()
            try:
                depth_image = renderer.render().copy()  # metres along the optical axis
            finally:
                renderer.disable_depth_rendering()
        return image, depth_image

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Free the rendering contexts and the simulator."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self._env.close()
        _LIVE_ENVS.discard(self)

    def __enter__(self) -> MetaWorldEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"MetaWorldEnv({self.task!r}, num_points={self.num_points}, camera={self.camera!r}, "
            f"image_size={self.image_size}, max_episode_steps={self.max_episode_steps})"
        )
