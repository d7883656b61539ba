"""Frozen behaviour of the deployed controller: fixed-seed checkpoints, fixed sensor messages
-> the exact states and commands committed in `reference/controller_commands.json`.

The messages are what a robot sends to policy_node (sensor_msgs/PointCloud2 and JointState, built
with the rosbags typestore: no ROS needed), in a fixed episode that exercises every branch the
node's control path takes: disabled, waiting for data, running while the arm follows, malformed
messages (counted, never acted on), stale joint states (holding), a fresh plan after they return,
a stuck arm (tracking fault), re-enabling, disabling. Three deployments: SDM one-step receding
horizon, a teacher's DDIM-2 trajectories, SDM with temporal ensembling. Refactors of the
controller, the state assembly or the decoding must leave these records unchanged
(numbers to 1e-6, single thread; states, messages and counters exactly).

Regenerate only for an intended change of behaviour, and say so in the commit:
`SDM_REGENERATE_REFERENCE=1 python -m pytest test/training/test_controller_reference.py`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from rosbags.typesys import Stores, get_typestore

from sdm_policy_core import control
from sdm_policy_core.config import DeploymentConfig
from sdm_policy_core.conversions import (
    ConversionError,
    array_to_pointcloud2_fields,
    joint_state_to_array,
    pointcloud2_to_array,
    stamp_to_seconds,
)
from sdm_policy_core.robot import RobotProfile, StateAssembler
from sdm_policy_core.runtime import PolicyRuntime
from test.training.test_policy_reference import REFERENCE, REGENERATE, build_checkpoints

COMMANDS = REFERENCE / "controller_commands.json"
TYPES = get_typestore(Stores.ROS2_KILTED).types
PROFILE = RobotProfile(
    name="reference_arm",
    state_names=("j1", "j2", "j3", "j4"),
    action_names=("j1", "j2", "j3"),
    lower=(-0.3, -0.3, -0.3),
    upper=(0.3, 0.3, 0.3),
    max_step=0.05,
    tracking_tolerance=0.03,
    tracking_timeout_s=0.5,
)
# The joint state message's order (and a joint the profile does not use).
MESSAGE_JOINTS = ("gripper", "j3", "j1", "j4", "j2")
# name -> (checkpoint, sampler, steps, deployment settings)
DEPLOYMENTS = {
    "sdm_receding": ("sdm", "one-step", 1, {}),
    "teacher_ddim2_trajectory": ("teacher", "ddim", 2, {"execution": "trajectory"}),
    "sdm_ensembling": ("sdm", "one-step", 1, {"temporal_ensembling": True}),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _header(t: float, frame: str = "base_link"):
    ns = round(t * 1e9)
    stamp = TYPES["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
    return TYPES["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)


def _cloud_msg(rng: np.random.Generator, t: float, finite: bool = True):
    points = rng.uniform(-0.5, 0.5, (40, 3)).astype(np.float32)
    if not finite:
        points[:] = np.nan
    fields = array_to_pointcloud2_fields(points)
    point_field = TYPES["sensor_msgs/msg/PointField"]
    fields["fields"] = [
        point_field(name=n, offset=o, datatype=d, count=c) for n, o, d, c in fields["fields"]
    ]
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    return TYPES["sensor_msgs/msg/PointCloud2"](header=_header(t), **fields)


def _joint_msg(position: np.ndarray, t: float, drop: str = ""):
    by_name = dict(zip(PROFILE.state_names, position, strict=True), gripper=0.01)
    names = [n for n in MESSAGE_JOINTS if n != drop]
    values = np.array([by_name[n] for n in names], np.float64)
    empty = np.zeros(0, np.float64)
    return TYPES["sensor_msgs/msg/JointState"](
        header=_header(t), name=names, position=values, velocity=empty, effort=empty
    )


class _NodePath:
    """What policy_node does with the messages: decode (a malformed one is counted and
    dropped), assemble agent_pos, hand over to the PolicyController, tick."""

    def __init__(self, runtime: PolicyRuntime, cfg: DeploymentConfig) -> None:
        self.assembler = StateAssembler(PROFILE)
        self.controller = control.PolicyController(runtime, PROFILE, cfg)

    def _decoded(self, msg, what: str, decode):
        try:
            stamp = stamp_to_seconds(msg.header.stamp)
            if stamp <= 0:
                raise ConversionError("header.stamp is zero")
            return decode(msg), stamp
        except (ConversionError, ValueError) as err:
            self.controller.reject(what, str(err))
            return None

    def cloud(self, msg) -> None:
        def decode(msg):
            points = pointcloud2_to_array(msg, channels=self.controller.channels)
            points = points[np.isfinite(points).all(axis=1)]
            if len(points) == 0:
                raise ConversionError("no finite points")
            return points

        if (got := self._decoded(msg, "cloud", decode)) is not None:
            self.controller.update_cloud(*got)

    def joint_state(self, msg) -> None:
        def decode(msg):
            return joint_state_to_array(msg, self.assembler.joint_names)

        if (got := self._decoded(msg, "state", decode)) is not None:
            self.assembler.update_joints(*got)
            if (assembled := self.assembler.assemble()) is not None:
                self.controller.update_state(*assembled)

    def enable(self, on: bool) -> None:
        self.controller.set_enabled(on)

    def tick(self, now: float) -> control.TickResult:
        return self.controller.tick(now)

    def counters(self) -> dict:
        c = self.controller.counters
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


def _episode(path: _NodePath) -> dict:
    """The fixed episode; the arm (j1-j3) moves to each command unless it is stuck."""
    rng = np.random.default_rng(17)
    position = np.array([0.1, -0.1, 0.2, 0.05])
    ticks: list[dict] = []
    t = 1.0

    def tick(follow: bool = True) -> None:
        ticks.append(_record(result := path.tick(t + 0.01)))
        if follow and result.command is not None:
            position[:3] = result.command

    def observe(follow: bool = True, joints: bool = True) -> None:
        nonlocal t
        path.cloud(_cloud_msg(rng, t))
        if joints:
            path.joint_state(_joint_msg(position, t))
        tick(follow)
        t += 0.1

    tick()  # disabled
    path.enable(True)
    tick()  # waiting for data
    for _ in range(6):
        observe()
    # Malformed: a cloud of NaN only, a joint state without j2 (counted, never acted on).
    path.cloud(_cloud_msg(rng, t, finite=False))
    path.joint_state(_joint_msg(position, t, drop="j2"))
    tick()
    t += 0.1
    for _ in range(7):  # the joint states stop: stale after stale_age_s
        observe(joints=False)
    for _ in range(3):  # they return: a fresh plan
        observe()
    for _ in range(8):  # the arm is stuck: a tracking fault
        observe(follow=False)
    path.enable(True)  # re-enabled after the operator checked the arm
    for _ in range(3):
        observe()
    path.enable(False)
    observe()
    return {"ticks": ticks, "counters": path.counters()}


def _run(checkpoints: dict[str, Path], name: str) -> dict:
    kind, sampler, steps, settings = DEPLOYMENTS[name]
    runtime = PolicyRuntime(
        checkpoints[kind], sampler=sampler, steps=steps, seed=7, warmup=False, threads=1
    )
    return _episode(_NodePath(runtime, DeploymentConfig(stale_age_s=0.25, **settings)))


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
