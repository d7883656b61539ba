"""PolicyController: when the robot is commanded, with what, and when it is not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sdm_policy_core import control
from sdm_policy_core.config import ConfigError, DeploymentConfig
from sdm_policy_core.robot import CameraMount, RobotProfile
from sdm_policy_core.runtime import PolicyRuntime

JOINTS = ("j1", "j2", "j3", "j4")
PROFILE = RobotProfile(
    name="test_arm",
    state_names=JOINTS,
    action_names=JOINTS,
    action_kind="joint_position",
    output="joint_trajectory",
    lower=(-0.3,) * 4,
    upper=(0.3,) * 4,
    max_step=0.02,
)


def _cloud(rng):
    return rng.uniform(-0.5, 0.5, (200, 3)).astype(np.float32)


@pytest.fixture
def make(sdm_ckpt):
    def factory(profile=PROFILE, **cfg):
        runtime = PolicyRuntime(sdm_ckpt, threads=1, seed=0)
        return control.PolicyController(runtime, profile, DeploymentConfig(**cfg))

    return factory


def _feed(ctrl, rng, t, state=None):
    ctrl.update_cloud(_cloud(rng), t)
    ctrl.update_state(np.zeros(4, np.float32) if state is None else state, t)


def test_nothing_before_enable_then_receding_horizon_with_limits(make):
    ctrl, rng = make(), np.random.default_rng(0)
    assert ctrl.tick(0.0).state == control.DISABLED
    ctrl.set_enabled(True)
    assert ctrl.tick(0.0).state == control.WAITING_FOR_DATA
    previous = np.zeros(4)
    inferred = []
    for k in range(12):
        t = 1.0 + 0.1 * k
        _feed(ctrl, rng, t)
        result = ctrl.tick(t + 0.01)
        assert result.state == control.RUNNING and result.command is not None
        inferred.append(result.chunk is not None)
        # Within the joint limits and at most max_step from the previous target.
        assert np.all(np.abs(result.command) <= 0.3 + 1e-9)
        assert np.all(np.abs(result.command - previous) <= 0.02 + 1e-9)
        previous = result.command
    assert inferred == [True, False, False, False] * 3  # re-plan every n_action_steps = 4


def test_stale_observations_drop_the_plan_and_fresh_ones_resume(make):
    ctrl, rng = make(stale_age_s=0.2), np.random.default_rng(1)
    ctrl.set_enabled(True)
    _feed(ctrl, rng, 1.0)
    assert ctrl.tick(1.05).command is not None
    stale = ctrl.tick(1.5)  # sensor silent for 0.5 s > 0.2 s
    assert stale.state == control.HOLDING and stale.command is None and stale.skipped
    assert ctrl.counters.skipped_ticks == 1
    assert ctrl.tick(0.5).state == control.HOLDING  # stamps 0.5 s in the future: clock skew
    _feed(ctrl, rng, 2.0)
    resumed = ctrl.tick(2.01)
    assert resumed.command is not None and resumed.chunk is not None  # a fresh plan


def test_invalid_cloud_after_crop_is_rejected(make):
    profile = dataclasses.replace(PROFILE, crop_low=(5.0, 5.0, 5.0), crop_high=(6.0, 6.0, 6.0))
    ctrl, rng = make(profile), np.random.default_rng(2)
    ctrl.set_enabled(True)
    _feed(ctrl, rng, 1.0)
    result = ctrl.tick(1.0)
    assert result.command is None and result.state == control.HOLDING
    assert ctrl.counters.rejected_point_clouds == 1


def test_temporal_ensembling_replans_every_tick_and_trajectory_mode_every_chunk(make):
    rng = np.random.default_rng(3)
    ens = make(temporal_ensembling=True)
    ens.set_enabled(True)
    for k in range(5):
        _feed(ens, rng, 1 + 0.1 * k)
        assert ens.tick(1 + 0.1 * k).chunk is not None
    traj = make(execution="trajectory")
    traj.set_enabled(True)
    results = []
    for k in range(8):
        _feed(traj, rng, 1 + 0.1 * k)
        results.append(traj.tick(1 + 0.1 * k))
    assert [r.trajectory is not None for r in results] == [True, False, False, False] * 2
    assert results[0].trajectory.shape == (4, 4)
    steps = np.diff(np.vstack([np.zeros(4), results[0].trajectory]), axis=0)
    assert np.all(np.abs(steps) <= 0.02 + 1e-9)


def test_a_checkpoint_that_does_not_fit_the_robot_is_refused(make):
    seven = RobotProfile(
        name="seven",
        state_names=tuple(f"a{i}" for i in range(7)),
        action_names=tuple(f"a{i}" for i in range(7)),
        lower=(-1,) * 7,
        upper=(1,) * 7,
    )
    with pytest.raises(ConfigError, match=r"state_dim 4 != 7.*action_dim 4 != 7"):
        make(seven)


def test_image_policy_acts_on_camera_frames_of_any_size(image_ckpt):
    runtime = PolicyRuntime(image_ckpt, threads=1, seed=0, sampler="ddim", steps=2)
    ctrl = control.PolicyController(runtime, PROFILE, DeploymentConfig())
    ctrl.set_enabled(True)
    ctrl.update_state(np.zeros(4, np.float32), 1.0)
    assert ctrl.tick(1.0).state == control.WAITING_FOR_DATA  # no frame yet
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    ctrl.update_image(frame, 1.0)  # a camera's size, resized to the checkpoint's 40x40
    result = ctrl.tick(1.01)
    assert result.state == control.RUNNING and result.command.shape == (4,)
    ctrl.update_image(np.zeros((40, 40), np.uint8), 1.1)  # not RGB
    assert ctrl.tick(1.11).state == control.HOLDING
    assert ctrl.counters.rejected_images == 1


def test_a_cloud_is_placed_by_its_own_transform_then_cropped(make):
    """tf gives each cloud its own pose (a wrist camera moves): the crop box of the base frame
    must see the transformed points, not the sensor-frame ones."""
    profile = dataclasses.replace(PROFILE, crop_low=(0.9, 0.9, 0.9), crop_high=(1.1, 1.1, 1.1))
    ctrl, rng = make(profile), np.random.default_rng(3)
    ctrl.set_enabled(True)
    near_sensor = rng.uniform(-0.05, 0.05, (200, 3)).astype(np.float32)
    to_base = np.eye(4)
    to_base[:3, 3] = 1.0  # the sensor sits at (1, 1, 1) in the base frame
    ctrl.update_state(np.zeros(4, np.float32), 1.0)
    ctrl.update_cloud(near_sensor, 1.0)  # the profile's mount (identity here): all cropped
    assert ctrl.tick(1.01).command is None and ctrl.counters.rejected_point_clouds == 1
    ctrl.update_cloud(near_sensor, 1.1, to_base)
    ctrl.update_state(np.zeros(4, np.float32), 1.1)
    assert ctrl.tick(1.11).command is not None


def test_profile_places_only_the_frames_it_knows():
    mount = {"frame_id": "cam_optical", "translation": (1.0, 0.0, 0.5)}
    profile = dataclasses.replace(PROFILE, camera=CameraMount(**mount))
    assert np.allclose(profile.cloud_to_base("cam_optical")[:3, 3], [1.0, 0.0, 0.5])
    assert np.allclose(profile.cloud_to_base(profile.base_frame), np.eye(4))
    for frame in ("lidar", ""):
        with pytest.raises(ValueError, match=r"set camera\.frame_id"):
            profile.cloud_to_base(frame)
