# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The policy node relative to the arm, with real processes and DDS.

The policy node relative to the arm, with real processes and DDS: targets bounded by the
measured joints of an arm that lags, a tracking fault when the arm is stuck (reported on status
and /diagnostics, nothing more until re-enabled), and stale joint states stopping commands.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from test.conftest import PYTHON, wait_for
from test.ros.conftest import (
    JOINTS,
    LIMIT,
    MAX_STEP,
    ROBOT_PEER,
    enable_node,
    recorded,
    start_node,
    start_recorder,
)

FAULT, HOLDING = 5, 4


def _arm_yaml(directory: Path, tolerance: float, timeout_s: float) -> Path:
    path = directory / "arm.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state_names": JOINTS,
                "action_names": JOINTS,
                "lower": [-LIMIT] * 4,
                "upper": [LIMIT] * 4,
                "max_step": MAX_STEP,
                "tracking_tolerance": tolerance,
                "tracking_timeout_s": timeout_s,
                "camera": {"frame_id": "camera"},
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def strict_robot_yaml(tmp_path_factory) -> Path:
    """Write the test arm with a tight tracking watch: 0.005 rad for 1 s."""
    return _arm_yaml(tmp_path_factory.mktemp("strict"), 0.005, 1.0)


@pytest.fixture(scope="module")
def patient_robot_yaml(tmp_path_factory) -> Path:
    """Write the test arm with the default tracking tolerance (0.75 max_step) for 3 s.

    The default tolerance (0.75 max_step) for 3 s: a 0.3 s lag plus the delivery delays of
    a loaded 2-core machine stay well inside it.
    """
    return _arm_yaml(tmp_path_factory.mktemp("patient"), 0.75 * MAX_STEP, 3.0)


def _recorder_matched(processes):
    """Return the recorder, once it receives the node's status (its subscriptions are matched)."""
    recorder = start_recorder(processes)
    wait_for(lambda: recorded(processes, recorder, "STATUS"), 30, what="the recorder matched")
    return recorder


def _states(processes, stream) -> list[tuple[float, np.ndarray]]:
    """(publish time, positions) of every joint state a lag/stuck arm published."""
    out = []
    for line in processes.log(stream).splitlines():
        if line.startswith("STATE "):
            _, t, positions = line.split(" ", 2)
            out.append((float(t), np.array(json.loads(positions))))
    return out


def test_targets_stay_within_max_step_of_a_lagging_arm(processes, patient_robot_yaml, sdm_ckpt):
    """Targets stay within max_step of a lagging arm.

    The arm reports the target it got 0.3 s ago (6 ticks at 20 Hz): clamped against the
    previous target, the targets ran ahead of it by up to 6 x max_step; against the measured
    joints each stays within max_step of a state the arm published, and it is no fault.
    """
    node = start_node(processes, patient_robot_yaml, sdm_ckpt, "control_rate_hz:=20.0")
    recorder = _recorder_matched(processes)
    arm = ["--arm", "lag", "--lag", "0.3", "--start", "0.1"]
    stream = processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30", *arm], "stream")
    enable_node(processes)
    wait_for(lambda: len(recorded(processes, recorder, "CMD")) >= 60, 60, what="60 commands")
    processes.stop(stream)
    commands = recorded(processes, recorder, "CMD")
    states = _states(processes, stream)
    for c in commands:
        target = np.array(c["points"][0])
        assert np.all(np.abs(target) <= LIMIT + 1e-9)
        recent = [s for t, s in states if c["t"] - 1.0 <= t <= c["t"]]
        nearest = min(np.max(np.abs(target - s)) for s in recent)
        assert nearest <= MAX_STEP + 1e-6, f"target {target} is {nearest:.3f} from the arm"
    moved = np.max(np.abs(np.array(commands[-1]["points"][0]) - 0.1))
    assert moved > 2 * MAX_STEP  # the policy did drive the arm somewhere
    statuses = recorded(processes, recorder, "STATUS")
    assert not any(s["state"] == FAULT for s in statuses), statuses[-1]
    assert processes.stop(node) == 0, processes.log(node)


def test_a_stuck_arm_faults_reports_it_and_gets_nothing_until_re_enabled(
    processes, strict_robot_yaml, sdm_ckpt
):
    """A stuck arm faults, reports it and gets nothing until re-enabled.

    Autostart active: commands without ~/enable. The arm never leaves -0.25 rad: every
    target is within max_step of it, then the tracking watch faults (status and /diagnostics
    say why) and no target follows until ~/enable is called again.
    """
    node = start_node(
        processes, strict_robot_yaml, sdm_ckpt, "control_rate_hz:=20.0", "autostart:=active"
    )
    assert "started enabled (lifecycle active)" in processes.log(node)
    recorder = _recorder_matched(processes)
    arm = ["--arm", "stuck", "--start", "-0.25"]
    stream = processes.start([PYTHON, ROBOT_PEER, "stream", "--rate", "30", *arm], "stream")
    faulted = wait_for(
        lambda: [s for s in recorded(processes, recorder, "STATUS") if s["state"] == FAULT],
        60,
        what="a tracking fault",
    )[0]
    assert "tracking fault" in faulted["message"] and faulted["enabled"]
    time.sleep(1.5)
    commands = recorded(processes, recorder, "CMD")
    assert commands, "no command before the fault"
    for c in commands:
        assert np.all(np.abs(np.array(c["points"][0]) + 0.25) <= MAX_STEP + 1e-6)
    # Nothing after the fault (status at 10 Hz: the fault is at most 0.1 s older than seen).
    late = [c for c in commands if c["t"] > faulted["t"] + 0.1]
    assert late == [], f"{len(late)} commands after the fault"
    statuses = recorded(processes, recorder, "STATUS")
    assert all(s["state"] == FAULT for s in statuses if s["t"] > faulted["t"])
    # /diagnostics: an ERROR entry (level 2) that names it.
    diagnostics = [d for d in recorded(processes, recorder, "DIAG") if d["t"] > faulted["t"]]
    assert diagnostics and all(d["level"] == 2 for d in diagnostics), diagnostics[:3]
    assert "fault: tracking fault" in diagnostics[0]["message"]
    t_enable = time.time()
    enable_node(processes)  # the operator checked the arm
    wait_for(
        lambda: [c for c in recorded(processes, recorder, "CMD") if c["t"] > t_enable],
        30,
        what="commands after re-enabling",
    )
    processes.stop(stream)
    assert processes.stop(node) == 0, processes.log(node)


def test_stale_joint_states_stop_commands(processes, robot_yaml, sdm_ckpt):
    """Stale joint states stop commands.

    The joint states stop after 3 s while the clouds go on: commands stop within
    stale_age_s, the status says the joint state is stale.
    """
    node = start_node(processes, robot_yaml, sdm_ckpt, "control_rate_hz:=20.0", "stale_age_s:=0.3")
    recorder = start_recorder(processes)
    enable_node(processes)
    stream = processes.start(
        [PYTHON, ROBOT_PEER, "stream", "--rate", "30", "--joints-for", "3.0"], "stream"
    )
    wait_for(
        lambda: any(
            s["state"] == HOLDING and "joint state" in s["message"]
            for s in recorded(processes, recorder, "STATUS")
        ),
        30,
        what="holding on stale joint states",
    )
    stopped = wait_for(
        lambda: [ln for ln in processes.log(stream).splitlines() if ln.startswith("JOINTS_")],
        10,
        what="the joint states' end",
    )
    last_state = float(stopped[0].split()[1])
    time.sleep(1.0)
    processes.stop(stream)
    commands = recorded(processes, recorder, "CMD")
    holding = next(
        s
        for s in recorded(processes, recorder, "STATUS")
        if s["state"] == HOLDING and "joint state" in s["message"]
    )
    assert "point cloud" not in holding["message"]  # the clouds were fresh
    assert [c for c in commands if c["t"] < last_state]  # commands while the joints came
    assert [c for c in commands if c["t"] > last_state + 0.3 + 0.4] == []  # stale_age + margin
    assert processes.stop(node) == 0, processes.log(node)
