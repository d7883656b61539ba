# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""policy.launch.py and its declarative spec: the processes it starts, started for real."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from sdm_policy_ros.launch_spec import POLICY_ARGUMENTS, policy_nodes
from test.conftest import PYTHON, REPO, wait_for

PEERS = str(REPO / "test" / "ros" / "peers.py")


def test_spec_declares_every_argument_with_a_description():
    names = [a.name for a in POLICY_ARGUMENTS]
    assert names == [
        "checkpoint",
        "backend",
        "robot",
        "params_file",
        "autostart",
        "namespace",
        "use_sim_time",
        "remappings",
    ]
    assert all(len(a.description) > 20 for a in POLICY_ARGUMENTS)
    spec = policy_nodes(
        {
            "robot": "ur5e",
            "namespace": "arm",
            "use_sim_time": "true",
            "autostart": "inactive",
            "remappings": "points:=/cam/points,joint_states:=/arm/js",
        }
    )[0]
    args = spec.ros_arguments()
    assert args[:3] == ["--ros-args", "-r", "__node:=sdm_policy_node"]
    assert "__ns:=/arm" in args and "use_sim_time:=true" in args and "robot:=ur5e" in args
    assert "autostart:=inactive" in args
    assert args.index("--params-file") < args.index("-p")  # overrides come after the file
    assert ("points", "/cam/points") in spec.remappings
    assert not any(a.startswith("backend:=") for a in args)  # the params file's (torch)
    onnx = policy_nodes({"backend": "onnxruntime", "checkpoint": "model/policy.onnx"})[0]
    args = onnx.ros_arguments()
    assert "backend:=onnxruntime" in args
    assert f"checkpoint:={os.path.abspath('model/policy.onnx')}" in args
    with pytest.raises(ValueError, match="unknown launch arguments"):
        policy_nodes({"robto": "x"})


@pytest.fixture
def arm4_yaml(tmp_path) -> str:
    """Write a 4-D raw robot profile fitting the tiny reaching checkpoints (state 4, action 4)."""
    path = tmp_path / "arm4.yaml"
    path.write_text(
        "state_names: [a, b, c, d]\naction_names: [a, b, c, d]\naction_kind: raw\n"
        "output: joint_commands\nlower: [-1, -1, -1, -1]\nupper: [1, 1, 1, 1]\n"
    )
    return str(path)


def test_launch_runner_starts_the_policy_node_as_the_launch_file_would(
    processes, sdm_ckpt, arm4_yaml
):
    runner = processes.start(
        [
            PYTHON,
            "-m",
            "sdm_policy_ros.launch_runner",
            "policy",
            f"checkpoint:={sdm_ckpt}",
            f"robot:={arm4_yaml}",
            "namespace:=arm",
            "remappings:=points:=/cam/points",
        ],
        "launch",
    )
    wait_for(lambda: "started disabled" in processes.log(runner), 60, what="the policy node")
    query = processes.start(
        [PYTHON, PEERS, "params", "/arm/sdm_policy_node", "robot", "checkpoint", "sampler"],
        "params",
    )
    query.wait(30)
    result = [ln for ln in processes.log(query).splitlines() if ln.startswith("RESULT ")]
    values = json.loads(result[-1][7:])
    assert values["robot"] == arm4_yaml and values["checkpoint"] == str(sdm_ckpt)
    assert values["sampler"] == "one-step"  # from config/policy.yaml
    assert processes.stop(runner) == 0, processes.log(runner)


@pytest.mark.skipif(
    importlib.util.find_spec("launch_testing") is None,
    reason="launch / launch_testing are not installable here (no PyPI wheel)",
)
def test_policy_launch_file_with_launch(sdm_ckpt, arm4_yaml):  # machines with a ROS 2 install
    import launch
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    include = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "policy.launch.py")),
        launch_arguments={"checkpoint": str(sdm_ckpt), "robot": arm4_yaml}.items(),
    )
    service = launch.LaunchService()
    service.include_launch_description(
        launch.LaunchDescription(
            [include, launch.actions.TimerAction(period=8.0, actions=[launch.actions.Shutdown()])]
        )
    )
    assert service.run() == 0
