# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""ControlSession and ControlLoop without ROS, as policy_node uses them.

ControlSession and ControlLoop without ROS: the enable / hold / fault state machine, the stale
watch, the decoding of sensor messages and the control thread, as policy_node uses them.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sdm_policy_core import control
from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.deploy.loop import ControlLoop
from sdm_policy_core.deploy.session import ControlSession
from sdm_policy_core.deploy.timing import STAGES
from sdm_policy_core.runtime import PolicyRuntime
from test.conftest import wait_for
from test.core.reference_checkpoints import build_checkpoints
from test.core.reference_messages import PROFILE, cloud_msg, joint_msg

LOG = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def sdm_path(tmp_path_factory) -> Path:
    return build_checkpoints(tmp_path_factory.mktemp("session"))["sdm"]


@pytest.fixture
def make(sdm_path):
    def factory(**settings) -> ControlSession:
        session = ControlSession(PROFILE, DeploymentConfig(**settings), LOG)
        session.install(PolicyRuntime(sdm_path, seed=0, warmup=False, threads=1), str(sdm_path))
        return session

    return factory


def _observe(session: ControlSession, rng, t: float, position=(0.0, 0.0, 0.0, 0.0)) -> None:
    session.receive("points", cloud_msg(rng, t))
    session.receive("joint_states", joint_msg(np.asarray(position), t))


def test_states_from_loading_to_commanding_and_back(make, sdm_path):
    session = ControlSession(PROFILE, DeploymentConfig(), LOG)
    assert session.step(1.0) is None  # no model: no step
    assert session.status("unconfigured", False)[0] == control.NO_CHECKPOINT
    session.install(PolicyRuntime(sdm_path, seed=0, warmup=False, threads=1), str(sdm_path))
    state, message, _ = session.status("inactive", False)
    assert state == control.DISABLED and "call ~/enable" in message
    assert session.step(1.0).command is None  # loaded, not enabled
    session.activate()
    assert session.status("active", False)[:2] == (control.WAITING_FOR_DATA, "activated")
    rng = np.random.default_rng(0)
    _observe(session, rng, 1.0)
    result = session.step(1.01)
    assert result.state == control.RUNNING and result.command.shape == (3,)
    session.commanded()
    assert session.status("active", False)[2] == pytest.approx(0.5)  # 1 command in 2 s
    session.deactivate()
    assert session.step(1.02).command is None
    assert session.status("active", False)[:2] == (
        control.DISABLED,
        "disabled: call ~/enable to start commanding",
    )
    session.unload("unloaded (cleanup)")
    assert session.controller is None and session.policy_id == ""
    assert session.status("unconfigured", False)[:2] == (
        control.NO_CHECKPOINT,
        "unloaded (cleanup)",
    )


def test_a_policy_that_outputs_nan_faults_until_re_enabled(make):
    session, rng = make(), np.random.default_rng(1)
    session.activate()
    _observe(session, rng, 1.0)
    assert session.step(1.01).command is not None
    weights = {k: v.clone() for k, v in session.controller.runtime.policy.state_dict().items()}
    with torch.no_grad():
        for p in session.controller.runtime.policy.parameters():
            p.fill_(float("nan"))
    session.reset()  # the next step plans anew, with the broken weights
    _observe(session, rng, 1.1)
    assert session.step(1.11) is None
    assert session.status("active", False)[0] == control.FAULT
    assert "non-finite" in session.message
    _observe(session, rng, 1.2)
    assert session.step(1.21).state == control.FAULT  # nothing until re-enabled
    session.controller.runtime.policy.load_state_dict(weights)
    session.rearm()
    _observe(session, rng, 1.3)
    assert session.step(1.31).command is not None


def test_a_step_that_raises_is_a_fault_reported_by_the_status(make):
    session = make()
    session.activate()
    session.fail(RuntimeError("publisher gone"))
    state, message, _ = session.status("active", False)
    assert state == control.FAULT and message == "control step: publisher gone"
    # An inactive node reports the fault too (not "disabled").
    assert session.status("inactive", False)[0] == control.FAULT


def test_malformed_messages_are_counted_and_never_reach_the_controller(make):
    session, rng = make(), np.random.default_rng(2)
    session.activate()
    session.receive("points", cloud_msg(rng, 1.0, finite=False))
    session.receive("joint_states", joint_msg(np.zeros(4), 1.0, drop="j3"))
    session.receive("joint_states", joint_msg(np.zeros(4), 0.0))  # stamp zero
    counters = session.controller.counters
    assert (counters.rejected_point_clouds, counters.rejected_states) == (1, 2)
    assert session.step(1.01).state == control.WAITING_FOR_DATA
    assert session.controller.observation_age(1.01) == -1.0
    session.receive("image", object())  # a cloud policy needs no image: ignored
    assert counters.rejected_images == 0


def test_joint_states_are_assembled_in_the_profile_order(make):
    session = make()
    session.receive("joint_states", joint_msg(np.array([0.1, 0.2, 0.3, 0.4]), 1.0))
    # The message lists gripper, j3, j1, j4, j2: agent_pos is j1..j4.
    assert session.controller.measured_action() == pytest.approx([0.1, 0.2, 0.3])


def test_the_stale_watch_holds_when_observations_stop_with_observation_triggers(make):
    session, rng = make(trigger="observation", stale_age_s=0.05), np.random.default_rng(3)
    session.activate()
    _observe(session, rng, 1.0)
    assert session.step(1.01).state == control.RUNNING
    assert session.status("active", False)[0] == control.RUNNING
    time.sleep(0.1)  # no observation for longer than stale_age_s of wall time
    state, message, _ = session.status("active", False)
    assert state == control.HOLDING and message.startswith("no observation for")
    timer = make(stale_age_s=0.05)  # timer steps report staleness themselves
    timer.activate()
    _observe(timer, rng, 1.0)
    timer.step(1.01)
    time.sleep(0.1)
    assert timer.status("active", False)[0] == control.RUNNING
    assert timer.status("active", True)[0] == control.HOLDING  # sim time: /clock may stop


def test_the_loop_acts_once_per_new_observation(make):
    """The loop acts once per new observation.

    trigger: observation: a step per new cloud; a resent cloud (same stamp) is not acted on
    twice; stopping the loop ends the thread.
    """
    session, rng = make(trigger="observation"), np.random.default_rng(4)
    published: list[control.TickResult] = []
    done = threading.Event()

    def send(results):
        published.extend(results)
        done.set()

    loop = ControlLoop(session, now=lambda: 1.05, build=lambda result: [result], send=send)
    session.activate()
    loop.start()
    try:
        cloud = cloud_msg(rng, 1.0)
        session.receive("joint_states", joint_msg(np.zeros(4), 1.0))
        session.receive("points", cloud)
        wait_for(done.is_set, 10.0, what="a step")
        session.receive("points", cloud)  # the same observation again
        time.sleep(0.3)
        assert len(published) == 1 and published[0].command is not None
        session.receive("points", cloud_msg(rng, 1.02))
        wait_for(lambda: len(published) == 2, 10.0, what="a second step")
    finally:
        loop.stop()
    assert not loop._thread.is_alive()


def test_each_planned_step_reports_where_its_latency_went(make):
    """Each planned step reports where its latency went.

    The loop's breakdown (deploy.timing) of a planned step: every stage, none negative, and
    together its cloud stamp -> command latency: no less than the stamp -> the send call, no
    more than the stamp -> the step seen recorded (one clock, the wall's, as a robot's).
    """
    session, rng = make(trigger="observation"), np.random.default_rng(5)
    sent: list[float] = []
    loop = ControlLoop(
        session,
        now=time.time,
        build=lambda result: [result],
        send=lambda _: sent.append(time.time()),
    )
    session.activate()
    loop.start()
    try:
        for _ in range(2):
            session.reset()  # a fresh plan: the next cloud is planned from
            stamp = time.time()
            session.receive("joint_states", joint_msg(np.zeros(4), stamp))
            session.receive("points", cloud_msg(rng, stamp))
            wait_for(lambda: session.timing.summary()["steps"] == 1, 10.0, what="a planned step")
            seen = time.time()
            timing = session.timing.summary()
            stages = timing["stages_ms"]
            assert set(stages) == set(STAGES)
            assert all(stages[name]["p50"] >= 0 for name in STAGES if name != "transport")
            total = timing["total_ms"]["mean"]
            assert sum(stages[name]["mean"] for name in STAGES) == pytest.approx(total)
            assert (sent[-1] - stamp) * 1e3 <= total <= (seen - stamp) * 1e3
            assert stages["inference"]["p50"] == pytest.approx(
                session.controller.counters.last_inference_time * 1e3
            )
            session.timing.clear()
    finally:
        loop.stop()
