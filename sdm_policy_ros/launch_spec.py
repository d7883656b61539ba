# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""Declarative launch specs: what `launch/*.launch.py` start, as plain data.

The `launch` package is not installable everywhere (not on PyPI); the launch files stay thin over
these specs, and `python -m sdm_policy_ros.launch_runner policy checkpoint:=... robot:=...`
starts the very same processes without it (the tests do).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sdm_policy_core.keys import (
    CONTRACT_INPUTS,
    CONTRACT_OUTPUTS,
    TOPIC_EPISODE_STATUS,
    TOPIC_IMAGE,
    TOPIC_JOINT_COMMANDS,
    TOPIC_JOINT_STATES,
    TOPIC_POINTS,
)

PACKAGE = "sdm_policy_ros"


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str


@dataclass
class NodeSpec:
    """One process: an executable of this package with its ROS arguments."""

    executable: str
    name: str
    namespace: str = ""
    params_files: list[str] = field(default_factory=list)
    parameters: dict[str, object] = field(default_factory=dict)  # applied after the files
    remappings: list[tuple[str, str]] = field(default_factory=list)

    def ros_arguments(self) -> list[str]:
        """`--ros-args ...` in the precedence order documented in config/policy.yaml."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            args += ["-r", f"__ns:={_absolute(self.namespace)}"]
        for path in self.params_files:
            args += ["--params-file", path]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={_param_text(value)}"]
        for src, dst in self.remappings:
            args += ["-r", f"{src}:={dst}"]
        return args


def _absolute(ns: str) -> str:
    return ns if ns.startswith("/") else "/" + ns


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return "''"  # `-p name:=` alone is not an empty string
    return str(value)


POLICY_ARGUMENTS = (
    LaunchArgument(
        "checkpoint",
        "",
        "checkpoint directory (config.json + model.safetensors) "
        "of a teacher or SDM policy; with backend onnxruntime an exported .onnx (+ .onnx.json) "
        "or a directory holding one; empty: load later with ~/load_checkpoint",
    ),
    LaunchArgument(
        "backend",
        "",
        "torch or onnxruntime (an exported model, no torch in the node); empty: the params "
        "file's (torch)",
    ),
    LaunchArgument(
        "robot",
        "generic_7dof",
        "robot profile: a name in config/robots "
        "(generic_7dof, franka, ur5e, metaworld_sim) or a path to a profile YAML",
    ),
    LaunchArgument(
        "params_file", "", "deployment parameters (default: the package's config/policy.yaml)"
    ),
    LaunchArgument(
        "autostart",
        "auto",
        "lifecycle state the policy node reaches on its own: auto (inactive when a checkpoint "
        "is given, else unconfigured), unconfigured, inactive or active (commands at once)",
    ),
    LaunchArgument("namespace", "", "namespace of the policy node and its topics"),
    LaunchArgument("use_sim_time", "false", "follow /clock (simulators)"),
    LaunchArgument(
        "remappings",
        "",
        "extra topic remappings 'from:=to,from2:=to2', e.g. "
        "points:=/camera/depth/points,joint_states:=/arm/joint_states",
    ),
)


def share_directory() -> Path:
    """Return the package's share directory (installed), else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # not installed by colcon: the source tree has the same layout
        return Path(__file__).resolve().parent.parent


def parse_remappings(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        if ":=" not in item:
            raise ValueError(f"remapping {item!r} must look like from:=to")
        src, dst = item.split(":=", 1)
        pairs.append((src, dst))
    return pairs


def _with_defaults(arguments: Sequence[LaunchArgument], args: dict[str, str]) -> dict[str, str]:
    """Every declared argument's value: `args` over the defaults; unknown names are errors."""
    values = {a.name: a.default for a in arguments}
    unknown = sorted(set(args) - set(values))
    if unknown:
        raise ValueError(f"unknown launch arguments {unknown}; valid: {sorted(values)}")
    return {**values, **args}


def policy_nodes(args: dict[str, str]) -> list[NodeSpec]:
    """Return the processes of policy.launch.py for arguments `args` (defaults filled in)."""
    values = _with_defaults(POLICY_ARGUMENTS, args)
    params_file = values["params_file"] or str(share_directory() / "config" / "policy.yaml")
    parameters: dict[str, object] = {
        "robot": values["robot"],
        "autostart": values["autostart"],
        "use_sim_time": values["use_sim_time"].lower() == "true",
    }
    if values["checkpoint"]:
        parameters["checkpoint"] = os.path.abspath(values["checkpoint"])
    if values["backend"]:
        parameters["backend"] = values["backend"]
    return [
        NodeSpec(
            executable="policy_node",
            name="sdm_policy_node",
            namespace=values["namespace"],
            params_files=[params_file],
            parameters=parameters,
            remappings=parse_remappings(values["remappings"]),
        )
    ]


# -- sim_eval.launch.py ---------------------------------------------------------------------------

SIMS = ("mujoco", "gazebo", "isaac")
SIM_EVAL_ARGUMENTS = (
    LaunchArgument(
        "sim",
        "mujoco",
        "simulator: mujoco (the embedded sim bridge, started here: MetaWorld on MuJoCo, or "
        "obstacle-2d(-cue), a point mass with agent_pos only), gazebo (gz sim + "
        "ros_gz_bridge with config/gazebo) or isaac (Isaac Sim's ROS 2 bridge, config/isaac); "
        "gazebo and isaac run on their own, this starts the policy node against them",
    ),
    LaunchArgument(
        "checkpoint",
        "",
        "checkpoint directory of a teacher or SDM policy; its point count and image size also "
        "configure the mujoco bridge",
    ),
    LaunchArgument(
        "sampler",
        "",
        "one-step, ddim or ddpm; empty: the checkpoint's own (SDM: one-step, teacher: its "
        "configured sampler, as sdm eval)",
    ),
    LaunchArgument("steps", "0", "denoising steps for ddim/ddpm; 0: the checkpoint's default"),
    LaunchArgument(
        "task", "button-press-v3", "mujoco: task of the episodes (MetaWorld v3, obstacle-2d(-cue))"
    ),
    LaunchArgument(
        "episodes",
        "0",
        "mujoco: episodes per seed run by sim_eval_driver, which then exits (ending the "
        "launch); 0: no driver, the bridge starts one episode and waits for ~/reset_episode",
    ),
    LaunchArgument(
        "seeds", "0", "mujoco: evaluation seeds, comma separated (sdm eval's seeds: 0,1,2)"
    ),
    LaunchArgument("result", "", "mujoco: path of the driver's result JSON (sdm eval keys)"),
    LaunchArgument(
        "max_episode_steps",
        "0",
        "mujoco: steps before an episode fails; 0: the task's own (MetaWorld 200, obstacle-2d 60)",
    ),
    LaunchArgument("control_rate_hz", "10.0", "[Hz] control rate (sim time per step = 1/rate)"),
    LaunchArgument(
        "step_mode",
        "lockstep",
        "mujoco: lockstep (one simulation step per command; reproduces sdm eval) or realtime "
        "(a wall-clock timer; late commands become hold steps)",
    ),
    LaunchArgument(
        "command_timeout_s", "5.0", "[s] mujoco lockstep: wait this long for a command, then hold"
    ),
    LaunchArgument("threads", "2", "CPU threads of the policy's inference (torch or onnxruntime)"),
    LaunchArgument(
        "backend",
        "",
        "policy runtime: torch, or onnxruntime (the .onnx that sdm export wrote into the "
        "checkpoint directory; no torch in the node); empty: the params file's (torch)",
    ),
    LaunchArgument(
        "noise",
        "",
        "torch backend's initial noise: torch or numpy (the stream onnxruntime draws from: "
        "then both backends run the same episodes); empty: the params file's (torch)",
    ),
    LaunchArgument(
        "robot",
        "",
        "robot profile; empty: the simulator profile's (metaworld_sim, gazebo_arm, isaac_franka; "
        "obstacle_2d / obstacle_2d_cue for those tasks)",
    ),
    LaunchArgument(
        "params_file", "", "policy node parameters (default: the package's config/policy.yaml)"
    ),
    LaunchArgument("namespace", "", "namespace of every node and topic"),
    LaunchArgument(
        "remappings",
        "",
        "extra remappings of the policy node 'from:=to,...', applied after the simulator "
        "profile's",
    ),
)


# Robot profiles (config/robots) of the sim bridge's tasks that are not MetaWorld's.
SIM_ROBOTS = {"obstacle-2d": "obstacle_2d", "obstacle-2d-cue": "obstacle_2d_cue"}


def sim_profile(sim: str) -> dict:
    """config/<sim>/sim_profile.yaml of gazebo or isaac: robot, parameters, remappings."""
    import yaml

    path = share_directory() / "config" / sim / "sim_profile.yaml"
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - {"robot", "parameters", "remappings", "description"})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    contract = {**CONTRACT_INPUTS, **CONTRACT_OUTPUTS}
    for src in data.get("remappings", {}):
        if src not in contract:
            raise ValueError(
                f"{path}: remapping of {src!r}, which is not a contract topic {list(contract)}"
            )
    return data


def checkpoint_settings(checkpoint: str, sampler: str, steps: int) -> dict[str, object]:
    """Return the sampler, steps and observation sizes a checkpoint's config.json implies.

    What a checkpoint's config.json implies for the nodes: sampler and steps as `sdm eval`
    picks them (empty sampler / steps 0: the checkpoint's defaults, DiffusionConfig.sampler_for),
    and the observation sizes.
    """
    import json

    from sdm_policy_core.config import DiffusionConfig, from_dict

    path = Path(checkpoint) / "config.json"
    try:
        config = json.loads(path.read_text())
        diffusion, obs = from_dict(DiffusionConfig, config.get("diffusion", {})), config["obs"]
    except (OSError, ValueError, KeyError) as err:  # ConfigError is a ValueError
        raise ValueError(f"checkpoint {checkpoint}: cannot read {path} ({err})") from None
    sampler, steps = diffusion.sampler_for(str(config.get("kind", "")), sampler, steps)
    cloud = obs.get("point_cloud_shape") or [512, 3]
    image = obs.get("image_shape")
    return {
        "sampler": sampler,
        "steps": int(steps),
        "num_points": int(cloud[0]),
        "cloud_channels": int(cloud[1]),
        "image_size": int(image[1]) if image else 0,
    }


def sim_eval_nodes(args: dict[str, str]) -> list[NodeSpec]:
    """Return the processes of sim_eval.launch.py for launch arguments `args` (defaults filled in).

    mujoco: sim_bridge_node (lockstep), policy_node (robot metaworld_sim, or the task's profile
    in SIM_ROBOTS; sim time, one action per observation, waiting for the state of the same
    step), and with episodes > 0
    sim_eval_driver. gazebo / isaac: the policy node only, with the profile's robot,
    parameters and topic remappings (config/<sim>/sim_profile.yaml); the simulator and its
    bridge are started by the user.
    """
    values = _with_defaults(SIM_EVAL_ARGUMENTS, args)
    sim = values["sim"]
    if sim not in SIMS:
        raise ValueError(f"sim must be one of {list(SIMS)}, got {sim!r}")
    params_file = values["params_file"] or str(share_directory() / "config" / "policy.yaml")
    ns = values["namespace"]
    policy = NodeSpec(
        executable="policy_node",
        name="sdm_policy_node",
        namespace=ns,
        params_files=[params_file],
        parameters={"use_sim_time": True},
    )
    if values["checkpoint"]:
        policy.parameters["checkpoint"] = os.path.abspath(values["checkpoint"])
    if values["backend"]:
        policy.parameters["backend"] = values["backend"]
    if values["noise"]:
        policy.parameters["sampler_noise"] = values["noise"]
    if sim != "mujoco":
        profile = sim_profile(sim)
        policy.parameters["robot"] = values["robot"] or profile["robot"]
        policy.parameters.update(profile.get("parameters", {}))
        policy.parameters["torch_threads"] = int(values["threads"])
        if values["sampler"]:
            policy.parameters["sampler"] = values["sampler"]
        if int(values["steps"]):
            policy.parameters["ddim_steps"] = int(values["steps"])
        policy.remappings = list(profile.get("remappings", {}).items())
        policy.remappings += parse_remappings(values["remappings"])
        return [policy]

    rate = float(values["control_rate_hz"])
    bridge = NodeSpec(
        executable="sim_bridge_node",
        name="sim_bridge",
        namespace=ns,
        parameters={
            "task": values["task"],
            "start_episode": int(values["episodes"]) == 0,
            "max_episode_steps": int(values["max_episode_steps"]),
            "control_rate_hz": rate,
            "step_mode": values["step_mode"],
            "command_timeout_s": float(values["command_timeout_s"]),
            "stop_on_success": 1,  # sdm eval: an episode succeeds at the first success flag
            "publish_expert_observation": False,
        },
    )
    policy.parameters.update(
        {
            "robot": values["robot"] or SIM_ROBOTS.get(values["task"], "metaworld_sim"),
            # One action per observation: each simulation step gives one cloud, and every
            # predicted action of a chunk is executed before re-planning, as sdm eval does.
            "trigger": "observation",
            "observation_sync_s": 1.0,
            # Lockstep: a lost cloud would stall the loop, so no best-effort sensor QoS.
            "sensor_qos": "reliable",
            "control_rate_hz": rate,
            "torch_threads": int(values["threads"]),
        }
    )
    if values["checkpoint"]:
        ckpt = checkpoint_settings(values["checkpoint"], values["sampler"], int(values["steps"]))
        policy.parameters["sampler"] = ckpt["sampler"]
        if ckpt["sampler"] != "one-step":
            policy.parameters["ddim_steps"] = ckpt["steps"]
        for key in ("num_points", "cloud_channels", "image_size"):
            bridge.parameters[key] = ckpt[key]
    elif values["sampler"]:
        policy.parameters["sampler"] = values["sampler"]
    policy.remappings = parse_remappings(values["remappings"])
    nodes = [bridge, policy]
    if int(values["episodes"]) > 0:
        seeds = [int(s) for s in values["seeds"].replace(" ", "").split(",") if s]
        nodes.append(
            NodeSpec(
                executable="sim_eval_driver",
                name="sim_eval_driver",
                namespace=ns,
                parameters={
                    "task": values["task"],
                    "episodes": int(values["episodes"]),
                    "seeds": seeds,
                    "result": os.path.abspath(values["result"]) if values["result"] else "",
                    "checkpoint": policy.parameters.get("checkpoint", ""),
                    "step_mode": values["step_mode"],
                    "control_rate_hz": rate,
                    "max_episode_steps": int(values["max_episode_steps"]),
                    "threads": int(values["threads"]),
                },
            )
        )
    return nodes


# -- sim_record.launch.py -------------------------------------------------------------------------

SIM_RECORD_ARGUMENTS = (
    LaunchArgument("bag", "", "rosbag2 bag directory to create (required; must not exist)"),
    LaunchArgument("task", "button-press-v3", "MetaWorld v3 task to demonstrate"),
    LaunchArgument("episodes", "10", "successful demonstrations to record (sdm demos' rule)"),
    LaunchArgument("seed", "0", "demonstration seed (placements as sdm demos --seed)"),
    LaunchArgument(
        "stop_on_success",
        "0",
        "0: full max_episode_steps episodes, kept when the task succeeded on 5 steps (DP3, "
        "sdm demos); 5: end each demo 5 success steps in (sdm demos --stop-on-success)",
    ),
    LaunchArgument("max_episode_steps", "200", "steps per demonstration episode (DP3: 200)"),
    LaunchArgument("num_points", "512", "points per recorded cloud"),
    LaunchArgument("image_size", "0", "[px] also record RGB images of this side; 0: none"),
    LaunchArgument("control_rate_hz", "10.0", "[Hz] control rate (sim time per step = 1/rate)"),
    LaunchArgument("noise_std", "0.0", "Gaussian noise on the expert's actions (0: clean)"),
    LaunchArgument("storage", "mcap", "bag storage: mcap or sqlite3"),
    LaunchArgument("result", "", "JSON summary of the kept / discarded episodes"),
    LaunchArgument("namespace", "", "namespace of every node and topic"),
)


def sim_record_nodes(args: dict[str, str]) -> list[NodeSpec]:
    """Return the processes of sim_record.launch.py, which record demonstrations into a bag.

    The processes of sim_record.launch.py: sim bridge (lockstep), expert teleoperator,
    bag_recorder and the driver in demos mode, which resets one placement after the other
    (sdm demos' seeds) until `episodes` demonstrations succeeded, then ends the launch (the
    recorder closes the bag on the shutdown).
    """
    values = _with_defaults(SIM_RECORD_ARGUMENTS, args)
    if not values["bag"]:
        raise ValueError("bag:=DIR is required (the rosbag2 bag to create)")
    if values["task"] in SIM_ROBOTS:
        raise ValueError(
            f"sim_record drives MetaWorld's scripted experts; record {values['task']} "
            f"demonstrations with `sdm demos --task {values['task']}` (no bag needed)"
        )
    ns = values["namespace"]
    stop_on_success = int(values["stop_on_success"])
    image_size = int(values["image_size"])
    topics = [TOPIC_POINTS, TOPIC_JOINT_STATES, TOPIC_JOINT_COMMANDS, TOPIC_EPISODE_STATUS]
    topics += [TOPIC_IMAGE] if image_size else []
    return [
        NodeSpec(
            executable="sim_bridge_node",
            name="sim_bridge",
            namespace=ns,
            parameters={
                "task": values["task"],
                "start_episode": False,
                "max_episode_steps": int(values["max_episode_steps"]),
                "stop_on_success": stop_on_success,
                "control_rate_hz": float(values["control_rate_hz"]),
                "step_mode": "lockstep",
                "command_timeout_s": 5.0,
                # The teleoperator acts on the expert observation, which is never resent;
                # resent clouds would only put duplicates into the bag.
                "observation_resend_s": 0.0,
                "num_points": int(values["num_points"]),
                "image_size": image_size,
            },
        ),
        NodeSpec(
            executable="expert_teleop_node",
            name="expert_teleop",
            namespace=ns,
            parameters={"noise_std": float(values["noise_std"]), "seed": int(values["seed"])},
        ),
        NodeSpec(
            executable="bag_recorder",
            name="bag_recorder",
            namespace=ns,
            parameters={
                "output": os.path.abspath(values["bag"]),
                "topics": topics,
                "storage": values["storage"],
            },
        ),
        NodeSpec(
            executable="sim_eval_driver",
            name="sim_eval_driver",
            namespace=ns,
            parameters={
                "mode": "demos",
                "task": values["task"],
                "episodes": int(values["episodes"]),
                "seeds": [int(values["seed"])],
                "min_success_steps": stop_on_success or 5,
                "result": os.path.abspath(values["result"]) if values["result"] else "",
                "episode_timeout_s": 600.0,
            },
        ),
    ]


LAUNCH_FILES = {
    "policy": (POLICY_ARGUMENTS, policy_nodes),
    "sim_eval": (SIM_EVAL_ARGUMENTS, sim_eval_nodes),
    "sim_record": (SIM_RECORD_ARGUMENTS, sim_record_nodes),
}
