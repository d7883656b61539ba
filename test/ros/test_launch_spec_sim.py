# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""sim_eval.launch.py and the Gazebo / Isaac Sim profiles, checked statically.

sim_eval.launch.py and the Gazebo / Isaac Sim profiles, checked statically (neither simulator
runs here): files parse, every executable the specs start is installed by setup.py, every
parameter file and robot profile exists, and every remapped topic lands on a contract topic of
the right type on the simulator's side (ros_gz_bridge YAML / the Isaac Sim bridge topic list).
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from sdm_policy_core.config import DeploymentConfig, from_dict
from sdm_policy_core.keys import CONTRACT_INPUTS, CONTRACT_OUTPUTS
from sdm_policy_core.robot import load_robot_profile
from sdm_policy_ros.executables import MODULES
from sdm_policy_ros.launch_spec import (
    LAUNCH_FILES,
    SIM_EVAL_ARGUMENTS,
    SIM_RECORD_ARGUMENTS,
    SIM_ROBOTS,
    SIMS,
    policy_nodes,
    sim_eval_nodes,
    sim_profile,
    sim_record_nodes,
)
from test.conftest import REPO

CONTRACT = {**CONTRACT_INPUTS, **CONTRACT_OUTPUTS}
# ros_gz_bridge type pairs (ros_gz_bridge README) of the messages our contract uses.
GZ_TYPES = {
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
    "sensor_msgs/msg/PointCloud2": "gz.msgs.PointCloudPacked",
    "sensor_msgs/msg/Image": "gz.msgs.Image",
    "sensor_msgs/msg/JointState": "gz.msgs.Model",
    "trajectory_msgs/msg/JointTrajectory": "gz.msgs.JointTrajectory",
}


def setup_value(name: str):
    """Read the literal value of setup.py's keyword or constant `name` without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == name:
            return ast.literal_eval(node.value)
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            name
        ]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"setup.py has no {name}")


@pytest.fixture
def teacher_config(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(
        json.dumps(
            {
                "kind": "teacher",
                "obs": {"point_cloud_shape": [128, 3], "image_shape": None},
                "diffusion": {"sampler": "ddim", "num_inference_steps": 7},
            }
        )
    )
    return ckpt


def test_launch_files_parse_and_stay_thin_over_their_specs():
    for name in ("policy", "sim_eval", "sim_record"):
        source = (REPO / "launch" / f"{name}.launch.py").read_text()
        tree = ast.parse(source)
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "sdm_policy_ros.launch_spec"
            for alias in node.names
        }
        assert f"{name}_nodes" in imported, name
        assert "generate_launch_description" in source
    assert set(LAUNCH_FILES) == {"policy", "sim_eval", "sim_record"}
    assert all(len(a.description) > 20 for a in SIM_EVAL_ARGUMENTS + SIM_RECORD_ARGUMENTS)


def test_every_executable_is_a_launcher_of_its_module():
    assert setup_value("entry_points") == {"console_scripts": ["sdm = sdm_policy_core.cli:main"]}
    # Each node is a script bin/<name> (no console-script wrapper: test/ros/test_process.py)
    # that starts through sdm_policy_ros.executables (signal handlers before the heavy imports),
    # which runs the node module's main.
    names = setup_value("EXECUTABLES")
    assert set(names) == set(MODULES)
    for name in names:
        launcher = REPO / "bin" / name
        assert launcher.stat().st_mode & 0o111, f"{launcher} is not executable"
        assert f"from sdm_policy_ros.executables import {name}\n" in launcher.read_text()
    for module in MODULES.values():
        assert importlib.util.find_spec(module) is not None, module
    started = {spec.executable for spec in policy_nodes({})}
    for sim in SIMS:
        started |= {spec.executable for spec in sim_eval_nodes({"sim": sim, "episodes": "1"})}
    started |= {spec.executable for spec in sim_record_nodes({"bag": "b"})}
    assert started == set(names)  # every node is started by some launch file


def test_mujoco_spec_configures_bridge_policy_and_driver_from_the_checkpoint(teacher_config):
    bridge, policy, driver = sim_eval_nodes(
        {"checkpoint": str(teacher_config), "episodes": "3", "seeds": "0,2", "threads": "1"}
    )
    assert (bridge.executable, policy.executable, driver.executable) == (
        "sim_bridge_node",
        "policy_node",
        "sim_eval_driver",
    )
    assert bridge.parameters["num_points"] == 128 and bridge.parameters["step_mode"] == "lockstep"
    assert bridge.parameters["start_episode"] is False  # the driver resets every episode
    p = policy.parameters
    assert (p["robot"], p["trigger"], p["use_sim_time"]) == ("metaworld_sim", "observation", True)
    assert (p["sampler"], p["ddim_steps"], p["torch_threads"]) == ("ddim", 7, 1)
    assert driver.parameters["seeds"] == [0, 2] and driver.parameters["episodes"] == 3
    args = driver.ros_arguments()
    assert "seeds:=[0, 2]" in args and "result:=''" in args  # YAML: a list, an empty string
    # episodes:=0 (default): bridge + policy only, the bridge starts an episode itself.
    nodes = sim_eval_nodes({"checkpoint": str(teacher_config), "sampler": "one-step"})
    assert [n.executable for n in nodes] == ["sim_bridge_node", "policy_node"]
    assert nodes[0].parameters["start_episode"] is True
    assert nodes[1].parameters["sampler"] == "one-step" and "ddim_steps" not in nodes[1].parameters
    assert not {"backend", "sampler_noise"} & set(nodes[1].parameters)  # the params file's
    # sdm sim-eval --backend / --noise reach the policy node's parameters
    policy = sim_eval_nodes({"backend": "onnxruntime", "noise": "numpy"})[1]
    assert (policy.parameters["backend"], policy.parameters["sampler_noise"]) == (
        "onnxruntime",
        "numpy",
    )
    # obstacle-2d: the bridge serves it, the policy node gets its profile (which exists)
    bridge, policy = sim_eval_nodes({"task": "obstacle-2d", "sampler": "one-step"})
    assert bridge.parameters["task"] == "obstacle-2d"
    assert policy.parameters["robot"] == "obstacle_2d" == load_robot_profile("obstacle_2d").name
    assert load_robot_profile(SIM_ROBOTS["obstacle-2d-cue"]).state_names == ("x", "y", "side")
    with pytest.raises(ValueError, match="sim must be one of"):
        sim_eval_nodes({"sim": "webots"})
    with pytest.raises(ValueError, match="unknown launch arguments"):
        sim_eval_nodes({"simm": "mujoco"})
    with pytest.raises(ValueError, match="cannot read"):
        sim_eval_nodes({"checkpoint": str(teacher_config.parent / "missing")})


def test_sim_record_spec_records_what_bag2zarr_reads(tmp_path):
    with pytest.raises(ValueError, match="sdm demos --task obstacle-2d"):
        sim_record_nodes({"bag": str(tmp_path / "bag"), "task": "obstacle-2d"})
    bridge, teleop, recorder, driver = sim_record_nodes(
        {"bag": str(tmp_path / "bag"), "episodes": "4", "stop_on_success": "5", "seed": "3"}
    )
    assert (
        bridge.parameters["stop_on_success"] == 5 and bridge.parameters["step_mode"] == "lockstep"
    )
    assert teleop.executable == "expert_teleop_node"
    config = yaml.safe_load((REPO / "config" / "bag2zarr" / "metaworld_sim.yaml").read_text())
    read = {config[k]["topic"] for k in ("point_cloud", "state", "action")}
    read.add(config["episodes"]["marker_topic"])
    assert read <= set(recorder.parameters["topics"])
    assert recorder.parameters["output"] == str(tmp_path / "bag")
    p = driver.parameters
    assert (p["mode"], p["episodes"], p["seeds"], p["min_success_steps"]) == ("demos", 4, [3], 5)
    with pytest.raises(ValueError, match="bag:=DIR is required"):
        sim_record_nodes({})


@pytest.mark.parametrize("sim", ["gazebo", "isaac"])
def test_simulator_profile_maps_onto_the_contract(sim):
    profile = sim_profile(sim)
    (policy,) = sim_eval_nodes({"sim": sim})
    assert policy.executable == "policy_node" and policy.parameters["use_sim_time"] is True
    assert policy.params_files and all(Path(f).is_file() for f in policy.params_files)
    robot = load_robot_profile(policy.parameters["robot"])  # the robot profile exists
    from_dict(DeploymentConfig, profile["parameters"])  # valid node parameters
    remap = dict(policy.remappings)
    assert remap == profile["remappings"]
    # The policy is connected: its inputs and the robot's command output are all mapped.
    assert {"points", "joint_states", robot.output} <= set(remap)
    if sim == "gazebo":
        entries = yaml.safe_load((REPO / "config" / "gazebo" / "ros_gz_bridge.yaml").read_text())
        keys = {"ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name", "direction"}
        assert all(set(e) == keys for e in entries), entries
        sim_side = {
            e["ros_topic_name"]: (
                e["ros_type_name"],
                "in" if e["direction"] == "GZ_TO_ROS" else "out",
            )
            for e in entries
        }
        for e in entries:
            assert GZ_TYPES[e["ros_type_name"]] == e["gz_type_name"], e
            assert e["direction"] in ("GZ_TO_ROS", "ROS_TO_GZ")
    else:
        entries = yaml.safe_load(
            (REPO / "config" / "isaac" / "ros2_bridge_topics.yaml").read_text()
        )
        sim_side = {
            e["topic"]: (e["type"], "in" if e["direction"] == "to_ros" else "out") for e in entries
        }
    assert sim_side["/clock"] == ("rosgraph_msgs/msg/Clock", "in")  # sim time for use_sim_time
    for contract_topic, target in remap.items():
        direction = "in" if contract_topic in CONTRACT_INPUTS else "out"
        assert sim_side[target] == (CONTRACT[contract_topic], direction), (contract_topic, target)


@pytest.mark.skipif(
    importlib.util.find_spec("launch_testing") is None,
    reason="launch / launch_testing are not installable here (no PyPI wheel)",
)
def test_sim_eval_launch_file_with_launch():  # runs on machines with a ROS 2 install
    import launch
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    include = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(REPO / "launch" / "sim_eval.launch.py")),
        launch_arguments={"sim": "mujoco", "max_episode_steps": "20"}.items(),
    )
    service = launch.LaunchService()
    service.include_launch_description(
        launch.LaunchDescription(
            [include, launch.actions.TimerAction(period=8.0, actions=[launch.actions.Shutdown()])]
        )
    )
    assert service.run() == 0
