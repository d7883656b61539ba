"""ros2 launch sdm_policy_ros sim_eval.launch.py sim:=mujoco|gazebo|isaac checkpoint:=... [...]

sim:=mujoco starts the embedded MetaWorld sim bridge (`sim_bridge_node`, lockstep), the policy
node on sim time, and with episodes:=N the evaluation driver (`sim_eval_driver`), which runs
N episodes per seed, writes result:=FILE.json and ends the launch. sim:=gazebo / sim:=isaac
start the policy node against a running simulator, with the topic remappings, robot profile and
parameters of config/gazebo or config/isaac. Thin over sdm_policy_ros.launch_spec, which the
tests start as real processes where `launch` is not installed
(`python -m sdm_policy_ros.launch_runner sim_eval ...`).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from sdm_policy_ros.launch_spec import PACKAGE, SIM_EVAL_ARGUMENTS, sim_eval_nodes


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in SIM_EVAL_ARGUMENTS}
    actions = []
    for spec in sim_eval_nodes(values):
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
        if spec.executable == "sim_eval_driver":  # the evaluation is over: stop everything
            actions.append(
                RegisterEventHandler(
                    OnProcessExit(target_action=node, on_exit=[EmitEvent(event=Shutdown())])
                )
            )
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [
            DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
            for a in SIM_EVAL_ARGUMENTS
        ]
        + [OpaqueFunction(function=_nodes)]
    )
