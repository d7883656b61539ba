# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Frozen behaviour of the deployed controller.

Frozen behaviour of the deployed controller: fixed-seed checkpoints, fixed sensor messages
-> the exact states and commands committed in `test/core/reference/controller_commands.json`.

The messages are what a robot sends to policy_node (sensor_msgs/PointCloud2 and JointState, built
with the rosbags typestore: no ROS needed), handed to `deploy.session.ControlSession` as the node
hands them (decoding, state assembly, the state machine, the controller's step), in a fixed
episode that exercises every branch of that path: disabled, waiting for data, running while the
arm follows, malformed messages (counted, never acted on), stale joint states (holding), a fresh
plan after they return, a stuck arm (tracking fault), re-enabling, disabling. Three deployments:
SDM one-step receding horizon, a teacher's DDIM-2 trajectories, SDM with temporal ensembling.
Refactors of the controller, the session, the state assembly or the decoding must leave these
records unchanged (numbers to 1e-6, single thread; states, messages and counters exactly).

Regenerate only for an intended change of behaviour, and say so in the commit:
`SDM_REGENERATE_REFERENCE=1 python -m pytest test/core/test_control_reference.py`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sdm_policy_core import control
from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.deploy.session import ControlSession
from sdm_policy_core.runtime import PolicyRuntime
from test.core.reference_checkpoints import REFERENCE, REGENERATE, build_checkpoints
from test.core.reference_messages import PROFILE, cloud_msg, joint_msg

COMMANDS = REFERENCE / "controller_commands.json"
LOG = logging.getLogger(__name__)
# name -> (checkpoint, sampler, steps, deployment settings)
DEPLOYMENTS = {
    "sdm_receding": ("sdm", "one-step", 1, {}),
    "teacher_ddim2_trajectory": ("teacher", "ddim", 2, {"execution": "trajectory"}),
    "sdm_ensembling": ("sdm", "one-step", 1, {"temporal_ensembling": True}),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _counters(session: ControlSession) -> dict:
    c = session.controller.counters
    return {
        "rejected_point_clouds": c.rejected_point_clouds,
        "rejected_states": c.rejected_states,
        "skipped_ticks": c.skipped_ticks,
        "inferences": c.inferences,
        "commands": c.commands,
        "faults": c.faults,
        "reasons": dict(sorted(c.reasons.items())),
        "seams": [c.seams.count, c.seams.last, c.seams.max],
    }


def _record(result: control.TickResult) -> dict:
    def listed(array):
        return None if array is None else np.asarray(array, np.float64).tolist()

    return {
        "state": result.state,
        "message": result.message,
        "command": listed(result.command),
        "trajectory": listed(result.trajectory),
        "chunk": None if result.chunk is None else listed(result.chunk.actions),
        "halt": result.halt,
        "skipped": result.skipped,
        "obs_stamp": result.obs_stamp,
    }


def _episode(session: ControlSession) -> dict:
    """Run the fixed episode; the arm (j1-j3) moves to each command unless it is stuck."""
    rng = np.random.default_rng(17)
    position = np.array([0.1, -0.1, 0.2, 0.05])
    ticks: list[dict] = []
    t = 1.0

    def tick(follow: bool = True) -> None:
        ticks.append(_record(result := session.step(t + 0.01)))
        if follow and result.command is not None:
            position[:3] = result.command

    def observe(follow: bool = True, joints: bool = True) -> None:
        nonlocal t
        session.receive("points", cloud_msg(rng, t))
        if joints:
            session.receive("joint_states", joint_msg(position, t))
        tick(follow)
        t += 0.1

    tick()  # disabled
    session.activate()
    tick()  # waiting for data
    for _ in range(6):
        observe()
    # Malformed: a cloud of NaN only, a joint state without j2 (counted, never acted on).
    session.receive("points", cloud_msg(rng, t, finite=False))
    session.receive("joint_states", joint_msg(position, t, drop="j2"))
    tick()
    t += 0.1
    for _ in range(7):  # the joint states stop: stale after stale_age_s
        observe(joints=False)
    for _ in range(3):  # they return: a fresh plan
        observe()
    for _ in range(8):  # the arm is stuck: a tracking fault
        observe(follow=False)
    session.rearm()  # re-enabled after the operator checked the arm
    for _ in range(3):
        observe()
    session.deactivate()
    observe()
    return {"ticks": ticks, "counters": _counters(session)}


def _run(checkpoints: dict[str, Path], name: str) -> dict:
    kind, sampler, steps, settings = DEPLOYMENTS[name]
    runtime = PolicyRuntime(
        checkpoints[kind], sampler=sampler, steps=steps, seed=7, warmup=False, threads=1
    )
    session = ControlSession(PROFILE, DeploymentConfig(stale_age_s=0.25, **settings), LOG)
    session.install(runtime)
    return _episode(session)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    return build_checkpoints(tmp_path_factory.mktemp("controller_reference"))


def _assert_same(got, want, where: str) -> None:
    if isinstance(want, float) or isinstance(got, float):
        assert got == pytest.approx(want, abs=1e-6), where
    elif isinstance(want, list) and isinstance(got, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, dict) and isinstance(got, dict):
        assert sorted(got) == sorted(want), where
        for key in want:
            _assert_same(got[key], want[key], f"{where}.{key}")
    else:
        assert got == want, where


def test_the_controller_reproduces_the_reference_commands(checkpoints) -> None:
    records = {name: _run(checkpoints, name) for name in DEPLOYMENTS}
    if REGENERATE:
        COMMANDS.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    reference = json.loads(COMMANDS.read_text())
    assert sorted(reference) == sorted(records)
    for name, record in records.items():
        _assert_same(json.loads(json.dumps(record)), reference[name], name)
    # The episode reaches every state it is meant to, in each deployment.
    for name, record in records.items():
        states = [tick["state"] for tick in record["ticks"]]
        for state in (control.DISABLED, control.WAITING_FOR_DATA, control.RUNNING):
            assert state in states, (name, states)
        assert control.HOLDING in states and control.FAULT in states, (name, states)
        assert record["counters"]["rejected_point_clouds"] == 1
        assert record["counters"]["rejected_states"] == 1
        assert record["counters"]["faults"] == 1
        for tick in record["ticks"]:
            if tick["command"] is not None:
                assert np.all(np.abs(tick["command"]) <= 0.3 + 1e-9), name
    # Different deployments, different commands (not one record three times).
    first = [t["command"] for t in records["sdm_receding"]["ticks"]]
    assert first != [t["command"] for t in records["teacher_ddim2_trajectory"]["ticks"]]
    assert first != [t["command"] for t in records["sdm_ensembling"]["ticks"]]
