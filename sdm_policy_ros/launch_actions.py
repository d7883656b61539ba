# Copyright 2026 sdm-policy-ros maintainers
# SPDX-License-Identifier: MIT
"""The body of every launch file: a spec's arguments and processes as launch_ros Nodes.

The body of every launch file: a spec's declared arguments and its processes as launch_ros
Nodes (launch/*.launch.py stay one call each). Needs the `launch` and `launch_ros` packages of a
ROS 2 install; `sdm_policy_ros.launch_runner` starts the same specs without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sdm_policy_ros.launch_spec import PACKAGE, LaunchArgument, NodeSpec

# A process whose exit ends the launch: the evaluation / recording driver has finished.
ENDS_LAUNCH = "sim_eval_driver"


def launch_description(
    arguments: Sequence[LaunchArgument], nodes: Callable[[dict[str, str]], list[NodeSpec]]
) -> LaunchDescription:
    """Declare `arguments`; at launch time start `nodes(argument values)`."""

    def _nodes(context, *args, **kwargs):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in arguments}
        actions = []
        for spec in nodes(values):
            node = Node(
                package=PACKAGE,
                executable=spec.executable,
                name=spec.name,
                namespace=spec.namespace or None,
                parameters=[*spec.params_files, spec.parameters],
                remappings=spec.remappings,
                output="screen",
                emulate_tty=True,
            )
            actions.append(node)
            if spec.executable == ENDS_LAUNCH:
                actions.append(
                    RegisterEventHandler(
                        OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown())])
                    )
                )
        return actions

    declared = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
        for a in arguments
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
