"""ros2 launch sdm_policy_ros policy.launch.py checkpoint:=... robot:=...

Starts the policy node (`sdm_policy_node`). Thin over sdm_policy_ros.launch_spec, which the
tests start as real processes where `launch` is not installed
(`python -m sdm_policy_ros.launch_runner policy ...`).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sdm_policy_ros.launch_spec import PACKAGE, POLICY_ARGUMENTS, policy_nodes


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in POLICY_ARGUMENTS}
    return [
        Node(
            package=PACKAGE,
            executable=spec.executable,
            name=spec.name,
            namespace=spec.namespace or None,
            parameters=[*spec.params_files, spec.parameters],
            remappings=spec.remappings,
            output="screen",
            emulate_tty=True,
        )
        for spec in policy_nodes(values)
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
            for a in POLICY_ARGUMENTS
        ]
        + [OpaqueFunction(function=_nodes)]
    )
