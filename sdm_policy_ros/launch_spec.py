"""Declarative launch specs: what `launch/*.launch.py` start, as plain data.

The `launch` package is not installable everywhere (not on PyPI); the launch files stay thin over
these specs, and `python -m sdm_policy_ros.launch_runner policy checkpoint:=... robot:=...`
starts the very same processes without it (the tests do).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "sdm_policy_ros"


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str


@dataclass
class NodeSpec:
    """One process: a console script of this package with its ROS arguments."""

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
    return str(value)


POLICY_ARGUMENTS = (
    LaunchArgument(
        "checkpoint",
        "",
        "checkpoint directory (config.json + model.safetensors) "
        "of a teacher or SDM policy; empty: load later with ~/load_checkpoint",
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
    """The package's share directory (installed), else the source tree."""
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


def policy_nodes(args: dict[str, str]) -> list[NodeSpec]:
    """The processes of policy.launch.py for launch arguments `args` (defaults filled in)."""
    values = {a.name: a.default for a in POLICY_ARGUMENTS}
    unknown = sorted(set(args) - set(values))
    if unknown:
        raise ValueError(f"unknown launch arguments {unknown}; valid: {sorted(values)}")
    values.update(args)
    params_file = values["params_file"] or str(share_directory() / "config" / "policy.yaml")
    parameters: dict[str, object] = {
        "robot": values["robot"],
        "use_sim_time": values["use_sim_time"].lower() == "true",
    }
    if values["checkpoint"]:
        parameters["checkpoint"] = os.path.abspath(values["checkpoint"])
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


LAUNCH_FILES = {"policy": (POLICY_ARGUMENTS, policy_nodes)}
