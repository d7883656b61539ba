# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""PolicyController: when the robot is commanded, with what, and when it is not."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from sdm_policy_core import control
from sdm_policy_core.config import ConfigError, DeploymentConfig
from sdm_policy_core.robot import CameraMount, RobotProfile
from sdm_policy_core.runtime import PolicyRuntime
from test.core.conftest import arm_profile

PROFILE = arm_profile()


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


def _follow(ctrl, rng, ticks, start=1.0, dt=0.1, lag=1, gain=1.0, position=None):
    """Run `ticks` ticks against a simulated arm.

    Run `ticks` ticks against a simulated arm: each tick it reports its position, the
    controller ticks, and the arm moves `gain` of the way to the target commanded `lag` ticks
    ago (gain 0: a stuck arm). Returns [(measured, result)].
    """
    position = np.zeros(4) if position is None else np.asarray(position, np.float64)
    sent: list[np.ndarray] = []
    out = []
    for k in range(ticks):
        t = start + dt * k
        if len(sent) >= lag:
            position = position + gain * (sent[-lag] - position)
        measured = position.astype(np.float32)
        _feed(ctrl, rng, t, measured)
        result = ctrl.tick(t + 0.01)
        if result.command is not None:
            sent.append(result.command)
        out.append((measured.astype(np.float64), result))
    return out


def test_nothing_before_enable_then_receding_horizon_with_limits(make):
    ctrl, rng = make(), np.random.default_rng(0)
    assert ctrl.tick(0.0).state == control.DISABLED
    ctrl.set_enabled(True)
    assert ctrl.tick(0.0).state == control.WAITING_FOR_DATA
    inferred = []
    for measured, result in _follow(ctrl, rng, 12):
        assert result.state == control.RUNNING and result.command is not None
        inferred.append(result.chunk is not None)
        # Within the joint limits and at most max_step from the measured position.
        assert np.all(np.abs(result.command) <= 0.3 + 1e-9)
        assert np.all(np.abs(result.command - measured) <= 0.02 + 1e-9)
    assert inferred == [True, False, False, False] * 3  # re-plan every n_action_steps = 4


def test_targets_are_bounded_by_the_measured_joints_not_the_previous_target(make):
    """Targets are bounded by the measured joints, not the previous target.

    A slow arm (a tenth of the way per tick, two ticks late) would fall ever farther behind
    targets clamped against the previous target; here every target stays within max_step of
    where the arm is, and the arm still counts as following (no fault).
    """
    ctrl, rng = make(), np.random.default_rng(4)
    ctrl.set_enabled(True)
    steps = _follow(ctrl, rng, 40, lag=2, gain=0.1, position=np.full(4, 0.25))
    for measured, result in steps:
        assert result.command is not None, result.message
        assert np.all(np.abs(result.command - measured) <= 0.02 + 1e-9)
        assert np.all(np.abs(result.command) <= 0.3 + 1e-9)
    assert ctrl.fault is None and ctrl.counters.faults == 0


def test_a_stuck_arm_faults_and_nothing_is_commanded_until_re_enabled(make):
    profile = dataclasses.replace(PROFILE, tracking_tolerance=0.01, tracking_timeout_s=0.5)
    ctrl, rng = make(profile), np.random.default_rng(5)
    ctrl.set_enabled(True)
    # The arm sits at 0.25 rad (the policy wants to go elsewhere) and never moves.
    steps = _follow(ctrl, rng, 12, gain=0.0, position=np.full(4, 0.25))
    states = [r.state for _, r in steps]
    assert control.FAULT in states
    first = states.index(control.FAULT)
    # No target reached for 0.5 s after the first one (tick 0, 0.1 s per tick).
    assert 5 <= first <= 8, states
    assert steps[first][1].halt and "tracking fault" in steps[first][1].message
    assert all(r.command is None and r.state == control.FAULT for _, r in steps[first:])
    assert ctrl.counters.faults == 1
    assert all(np.all(np.abs(r.command - m) <= 0.02 + 1e-9) for m, r in steps[:first])
    ctrl.set_enabled(True)  # re-enabled after the operator checked the arm
    assert ctrl.fault is None
    again = _follow(ctrl, rng, 2, start=3.0, gain=1.0, position=np.full(4, 0.25))
    assert all(r.command is not None for _, r in again)


def test_an_untracked_gripper_that_cannot_close_is_no_fault(make):
    profile = dataclasses.replace(
        PROFILE, untracked=("j4",), tracking_tolerance=0.01, tracking_timeout_s=0.3
    )
    ctrl, rng = make(profile), np.random.default_rng(6)
    ctrl.set_enabled(True)
    position = np.zeros(4)
    for k in range(20):
        t = 1.0 + 0.1 * k
        _feed(ctrl, rng, t, position.astype(np.float32))
        result = ctrl.tick(t + 0.01)
        assert result.command is not None, result.message
        position = np.append(result.command[:3], 0.0)  # j1-j3 follow; j4 blocked at 0
    assert ctrl.fault is None


def test_stale_joint_states_stop_commands_like_stale_clouds(make):
    ctrl, rng = make(stale_age_s=0.2), np.random.default_rng(7)
    ctrl.set_enabled(True)
    _feed(ctrl, rng, 1.0)
    assert ctrl.tick(1.01).command is not None
    ctrl.update_cloud(_cloud(rng), 1.5)  # the camera goes on, the joint states stopped at 1.0
    held = ctrl.tick(1.51)
    assert held.state == control.HOLDING and held.command is None and held.skipped
    assert "joint state 0.510 s old" in held.message and "point cloud" not in held.message
    _feed(ctrl, rng, 1.6)
    resumed = ctrl.tick(1.61)
    assert resumed.command is not None and resumed.chunk is not None  # a fresh plan


def test_seams_are_the_jump_between_chunks_of_executed_actions(make):
    ctrl, rng = make(), np.random.default_rng(8)
    ctrl.set_enabled(True)
    steps = _follow(ctrl, rng, 12)
    chunks = [r.chunk.actions for _, r in steps if r.chunk is not None]
    assert len(chunks) == 3
    # n_action_steps 4 of each chunk are executed: the seam is chunk[k+1][0] - chunk[k][3].
    jumps = [float(np.max(np.abs(b[0] - a[3]))) for a, b in itertools.pairwise(chunks)]
    seams = ctrl.counters.seams
    assert seams.count == 2
    assert seams.last == pytest.approx(jumps[-1]) and seams.max == pytest.approx(max(jumps))
    ens = make(temporal_ensembling=True)
    ens.set_enabled(True)
    _follow(ens, rng, 5)
    assert ens.counters.seams.count == 4  # every tick executes a new chunk's blend


def test_temporal_ensembler_weights_older_chunks_by_their_age():
    ens = control.TemporalEnsembler(decay=np.log(2.0))
    ens.add(np.array([[0.0], [1.0], [2.0]]))
    assert ens.next() == pytest.approx([0.0])
    ens.add(np.array([[10.0], [11.0], [12.0]]))
    # tick 1: chunk 0 (age 1, weight 1/2) says 1.0, chunk 1 (age 0, weight 1) says 10.0
    assert ens.next() == pytest.approx([(0.5 * 1.0 + 10.0) / 1.5])
    assert ens.next() == pytest.approx([(0.25 * 2.0 + 0.5 * 11.0) / 0.75])
    assert ens.next() == pytest.approx([12.0])  # chunk 0 has run out
    with pytest.raises(RuntimeError, match="no chunk covers"):
        ens.next()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"tracking_tolerance": 0.02}, r"tracking_tolerance must be in \(0, max_step"),
        ({"tracking_timeout_s": 0.0}, r"tracking_timeout_s must be in \(0, 60\]"),
        ({"untracked": ("gripper",)}, r"untracked \['gripper'\] are not action names"),
        ({"state_names": ("j1", "j2", "j3", "x")}, r"action names \['j4'\] are not state_names"),
    ],
)
def test_profile_tracking_settings_are_validated(change, match):
    values = {k: getattr(PROFILE, k) for k in ("name", "state_names", "action_names")}
    values.update(lower=PROFILE.lower, upper=PROFILE.upper, max_step=0.02)
    with pytest.raises(ConfigError, match=match):
        RobotProfile(**{**values, **change})
    assert RobotProfile(**values).tracking_tolerance == pytest.approx(0.015)  # 0.75 max_step


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
    position = np.zeros(4)
    for k in range(8):
        _feed(traj, rng, 1 + 0.1 * k, position.astype(np.float32))
        results.append(traj.tick(1 + 0.1 * k))
        if results[-1].trajectory is not None:
            points = list(results[-1].trajectory)
        position = points.pop(0)  # the arm follows the trajectory, a point per tick
    assert [r.trajectory is not None for r in results] == [True, False, False, False] * 2
    assert results[0].trajectory.shape == (4, 4)
    # The first point within max_step of the measured joints, each next one of the one before.
    steps = np.diff(np.vstack([np.zeros(4), results[0].trajectory]), axis=0)
    assert np.all(np.abs(steps) <= 0.02 + 1e-9)
    assert traj.fault is None and all(r.state == control.RUNNING for r in results)


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
    """A cloud is placed by its own transform, then cropped.

    tf gives each cloud its own pose (a wrist camera moves): the crop box of the base frame
    must see the transformed points, not the sensor-frame ones.
    """
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


def test_a_state_only_policy_acts_on_joint_states_alone(tmp_path):
    """A state-only policy acts on joint states alone.

    A checkpoint trained on data/state + data/action only needs no camera: joint states
    drive it, and the command's observation stamp is the joint state's.
    """
    from sdm_policy_core.cli import main as sdm
    from test.conftest import TINY, write_dataset

    rng = np.random.default_rng(0)
    state = rng.uniform(-0.2, 0.2, (24, 4)).astype(np.float32)
    data = write_dataset(tmp_path / "s.zarr", state=state, action=np.roll(state, -1, axis=0))
    out = tmp_path / "run"
    assert sdm(["train", "--dataset", str(data), "--out", str(out), "--no-progress", *TINY]) == 0
    runtime = PolicyRuntime(out / "checkpoints" / "latest", threads=1, seed=0)
    ctrl = control.PolicyController(runtime, PROFILE, DeploymentConfig())
    assert not ctrl.uses_cloud and not ctrl.uses_image
    ctrl.set_enabled(True)
    assert ctrl.tick(1.0).state == control.WAITING_FOR_DATA
    ctrl.update_state(np.zeros(4, np.float32), 1.0)
    result = ctrl.tick(1.01)
    assert result.state == control.RUNNING and result.command.shape == (4,)
    assert result.obs_stamp == 1.0
    assert np.abs(result.command).max() <= PROFILE.max_step + 1e-6  # from the measured zeros
    assert ctrl.tick(5.0).state == control.HOLDING  # the joint state went stale
